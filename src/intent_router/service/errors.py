"""Every error the service answers, in OpenAI's format, through one path: ``describe`` says what
an exception means for the client (an ApiError), ``error_response`` sends it. Each answer has
``error.code`` set and ``x-request-id``; ``x-should-retry: false`` when retrying cannot help;
each 5xx is logged once with the request id and the exception's type (never its text, which
may carry request data or secrets)."""

from __future__ import annotations

import logging
import math
import re
import traceback
from dataclasses import dataclass, field

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from intent_router.exceptions import (
    AllProvidersFailed,
    AuthenticationError,
    CountersUnavailable,
    FatalProviderError,
    ForbiddenDeploymentError,
    InvalidRequestError,
    LocalOnlyFailed,
    ProviderClientBug,
    RateLimitedError,
    RouterError,
    StorageUnavailable,
    UnknownModelError,
    UnknownRequestError,
)
from intent_router.service.recording import new_request_id
from intent_router.service.schemas import AttemptInfo, ErrorBody, ErrorDetail
from intent_router.service.services import maybe_services_of, services_of

log = logging.getLogger("intent_router.service")

#: What a 404 for an unknown path lists.
SUPPORTED_ENDPOINTS = (
    "POST /v1/chat/completions",
    "POST /v1/route",
    "GET /v1/models",
    "GET /v1/models/{model}",
    "POST /v1/feedback",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /schema",
)
#: A chain that failed only for these reasons fails the same way until the config changes.
_CONFIG_OUTCOMES = frozenset({"skipped_no_key", "skipped_context"})
#: The default ``error.code`` of each status, when the cause names none of its own.
_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
}
#: Client errors a retry may get past.
_RETRYABLE_4XX = frozenset({408, 409, 429})
#: The endpoints counted in intent_router_requests_total, by path.
_METERED = {"/v1/chat/completions": "chat", "/v1/route": "route"}


@dataclass(frozen=True)
class ApiError:
    """What the client is told."""

    status: int
    message: str
    type: str
    code: str | None = None  # None: the status's default code
    param: str | None = None
    attempts: list[AttemptInfo] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retryable: bool | None = None  # None: the status decides (4xx but 408, 409, 429: no)

    @property
    def should_retry(self) -> bool:
        if self.retryable is not None:
            return self.retryable
        return self.status >= 500 or self.status in _RETRYABLE_4XX


def request_id(request: Request) -> str:
    """This request's id: the handler's, or a new one for requests refused before it ran."""
    rid = request.state.get("request_id")
    if not rid:
        rid = request.state.request_id = new_request_id()
    return str(rid)


def handle_exception(request: Request, exc: Exception) -> Response[ErrorBody]:
    """Litestar's one exception handler: every error leaves the service here."""
    return error_response(request, describe(request, exc), exc)


def error_response(
    request: Request, error: ApiError, exc: BaseException | None = None
) -> Response[ErrorBody]:
    """The error as OpenAI-format JSON, with its request id; logged when it is a 5xx, counted
    in the request metrics when the endpoint is metered."""
    rid = request_id(request)
    code = (
        error.code
        or _STATUS_CODES.get(error.status)
        or ("internal_error" if error.status >= 500 else "invalid_request")
    )
    headers = {**error.headers, "x-request-id": rid}
    if not error.should_retry:
        headers["x-should-retry"] = "false"
    if error.status >= 500:
        _log(request, rid, error.status, code, exc)
    _count(request, error.status)
    detail = ErrorDetail(
        message=error.message,
        type=error.type,
        code=code,
        param=error.param,
        attempts=error.attempts,
    )
    return Response(
        ErrorBody(detail), headers=headers, status_code=error.status, media_type=MediaType.JSON
    )


def describe(request: Request, exc: Exception) -> ApiError:
    """What ``exc`` means for the client."""
    if isinstance(exc, RouterError):
        return _router_error(request, exc)
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    if isinstance(exc, UnicodeDecodeError):
        return ApiError(
            400, "request body is not valid UTF-8", "invalid_request_error", "invalid_body"
        )
    if isinstance(exc, RecursionError):  # msgspec's answer to JSON nested deeper than ~1,000
        return ApiError(
            400, "request body is nested too deeply", "invalid_request_error", "invalid_body"
        )
    return ApiError(500, "internal error", "server_error", "internal_error")


def _router_error(request: Request, exc: RouterError) -> ApiError:
    if isinstance(exc, AuthenticationError):
        services_of(request.app).metrics.governance.labels("unauthenticated").inc()
        return ApiError(
            401,
            str(exc),
            "invalid_request_error",
            "invalid_api_key",
            headers={"www-authenticate": "Bearer"},
        )
    if isinstance(exc, RateLimitedError):
        services_of(request.app).metrics.governance.labels(exc.code).inc()
        retry_after = str(max(1, math.ceil(exc.retry_after_s)))
        return ApiError(
            429, str(exc), "rate_limit_error", exc.code, headers={"retry-after": retry_after}
        )
    if isinstance(exc, CountersUnavailable):
        return ApiError(
            503,
            "rate limits and budgets cannot be checked right now (the shared counters "
            "did not answer); the request was not sent",
            "server_error",
            "counters_unavailable",
            headers={"retry-after": "1"},
        )
    if isinstance(exc, StorageUnavailable):
        return ApiError(
            503,
            f"{exc}; retry later",
            "server_error",
            "storage_unavailable",
            headers={"retry-after": "1"},
        )
    if isinstance(exc, UnknownModelError):  # OpenAI answers an unknown model this way
        return ApiError(404, str(exc), "invalid_request_error", "model_not_found")
    if isinstance(exc, ForbiddenDeploymentError):
        return ApiError(403, str(exc), "permission_error", "deployment_forbidden")
    if isinstance(exc, UnknownRequestError):
        return ApiError(404, str(exc), "invalid_request_error", "request_not_found")
    if isinstance(exc, InvalidRequestError):
        return ApiError(400, str(exc), "invalid_request_error", "invalid_request")
    if isinstance(exc, FatalProviderError):
        status = exc.status if exc.status and 400 <= exc.status < 600 else 502
        return ApiError(
            status, _redacted(request, str(exc)) or "", "provider_error", "provider_error"
        )
    if isinstance(
        exc, ProviderClientBug
    ):  # its message names the deployment and the bug's type only
        return ApiError(
            500, str(exc), "server_error", "internal_error", retryable=False
        )  # fails alike again
    if isinstance(exc, AllProvidersFailed):
        return _all_failed(request, exc)
    return ApiError(500, "internal error", "server_error", "internal_error")


def _all_failed(request: Request, exc: AllProvidersFailed) -> ApiError:
    services_of(request.app).metrics.record_attempts(exc.attempts)
    attempts = [
        AttemptInfo(a.deployment, a.outcome, _redacted(request, a.error), a.status)
        for a in exc.attempts
    ]
    message = "every deployment failed: " + "; ".join(
        f"{a.deployment}: {a.error or a.outcome}" for a in attempts
    )
    if isinstance(exc, LocalOnlyFailed):
        message = (
            f"sensitive request ({', '.join(exc.reasons)}): only the local tier may answer it, "
            f"and it was not sent to any cloud provider; {message}"
        )
    # Only missing keys or windows too small: the same request fails the same way until the
    # config changes, and clients that retry 503s (OpenAI's SDK, litellm) would only wait.
    config_only = all(a.outcome in _CONFIG_OUTCOMES for a in attempts)
    return ApiError(
        503,
        message,
        "all_providers_failed",
        "all_providers_failed",
        attempts=attempts,
        retryable=not config_only,
    )


def _http_error(request: Request, exc: HTTPException) -> ApiError:
    if isinstance(exc, ValidationException):
        problems = [e for e in (exc.extra or []) if isinstance(e, dict)]
        body_key = _body_key(exc)
        if body_key is not None and len(problems) == 1 and problems[0].get("source") == "body":
            problems = [{**problems[0], "key": body_key}]
        detail = "; ".join(_problem(e) for e in problems)
        param = next(
            (str(e["key"]) for e in problems if e.get("key") not in (None, "", "data")), None
        )
        sources = {e.get("source") for e in problems} - {None}
        where = "request body" if sources <= {"body"} else "request"
        return ApiError(
            400,
            f"invalid {where}: {detail or exc.detail}",
            "invalid_request_error",
            "invalid_request",
            param=param,
        )
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 413:
        limit = services_of(request.app).router.config.max_body_bytes
        return ApiError(
            413,
            f"request body is larger than the limit of {limit:,} bytes (router.max_body_bytes)",
            "invalid_request_error",
            "request_too_large",
        )
    if status == 404 and exc.detail == "Not Found":  # no route: Litestar's own 404
        return ApiError(
            404,
            f"unknown endpoint: {request.method} {request.url.path}; this router serves "
            + ", ".join(SUPPORTED_ENDPOINTS),
            "invalid_request_error",
            "unknown_url",
        )
    if status == 405:
        allowed = headers.get("allow", "")
        return ApiError(
            405,
            f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})",
            "invalid_request_error",
            "method_not_allowed",
            headers=headers,
        )
    kind = "invalid_request_error" if status < 500 else "server_error"
    return ApiError(status, str(exc.detail), kind, headers=headers)


def _redacted(request: Request, text: str | None) -> str | None:
    """An upstream's error without the secrets it may echo from the request (as the decision
    log stores it)."""
    return services_of(request.app).router.redact(text) if text else text


def _body_key(exc: ValidationException) -> str | None:
    """The body field that failed, from msgspec's own error: Litestar's ``key`` drops every
    "data." inside the path (``metadata.repo`` becomes ``metarepo``)."""
    match = re.search(r" - at `\$\.data\.?(.+)`$", str(exc.__cause__ or ""))
    return match.group(1) if match else None


def _problem(problem: dict) -> str:
    key, message = problem.get("key"), str(problem.get("message", problem))
    if not key or key == "data" or str(key) in message:  # "data" is the whole body
        return message
    return f"{key}: {message}"


def _log(request: Request, rid: str, status: int, code: str, exc: BaseException | None) -> None:
    """One line per 5xx: the request id, the route, the exception's type and, for a bug, where
    it was raised. Never the exception's text: it may quote the request or a secret."""
    kind = type(exc).__name__ if exc is not None else "-"
    if isinstance(exc, ProviderClientBug):
        kind = f"{kind} ({exc})"  # its message names the deployment and the bug's type only
    if status == 500:
        where = (
            traceback.extract_tb(exc.__traceback__)[-1]
            if exc is not None and exc.__traceback__
            else None
        )
        at = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
        log.error(
            "request %s: %s %s failed with %s%s (500 %s)",
            rid,
            request.method,
            request.url.path,
            kind,
            at,
            code,
        )
    else:
        log.warning(
            "request %s: %s %s answered %d %s (%s)",
            rid,
            request.method,
            request.url.path,
            status,
            code,
            kind,
        )


def log_client_bug(request_id: str | None, exc: ProviderClientBug) -> None:
    """One log line per request that hit a provider client's bug (its message holds no request
    data), for a stream that can no longer be answered with a status."""
    log.error("request %s: %s", request_id or "-", exc)


def _count(request: Request, status: int) -> None:
    """A failed request of a metered endpoint, in intent_router_requests_total (and its latency
    when the handler had started it)."""
    ctx = request.state.get("ctx")
    endpoint = ctx.endpoint if ctx is not None else _METERED.get(request.url.path)
    services = maybe_services_of(request.app)
    if endpoint is None or services is None:
        return
    metrics = services.metrics
    plan = ctx.plan if ctx is not None else None
    decision = getattr(plan, "decision", None)
    intent = decision.intent if decision is not None else None
    source = decision.source if decision is not None else ("requested" if plan is not None else "-")
    metrics.record_route(endpoint, intent, source, status)
    if ctx is not None:
        metrics.record_latency(endpoint, status, ctx.elapsed_ms() / 1000)


EXCEPTION_HANDLERS = {Exception: handle_exception}
