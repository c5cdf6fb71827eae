"""Our exceptions and Litestar's, mapped once to HTTP responses in OpenAI's error format."""

from __future__ import annotations

import logging
import math
import re

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
    UnknownModelError,
    UnknownRequestError,
)
from intent_router.service.schemas import AttemptInfo, ErrorBody, ErrorDetail

logger = logging.getLogger(__name__)


def error_response(
    status: int, message: str, kind: str, attempts: list[AttemptInfo] | None = None,
    code: str | None = None, param: str | None = None, request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    detail = ErrorDetail(message=message, type=kind, code=code, param=param, attempts=attempts)
    headers = dict(headers or {})
    if request_id:
        headers["x-request-id"] = request_id
    return Response(ErrorBody(detail), headers=headers or None,
                    status_code=status, media_type=MediaType.JSON)


def router_error_handler(request: Request, exc: Exception) -> Response[ErrorBody]:
    response = _router_error_response(request, exc)
    if response.status_code >= 500:
        _log_server_error(request, response.status_code, exc)
    return response


def _log_server_error(request: Request, status: int, exc: Exception) -> None:
    """One line per 5xx: the request id, the status and the exception's type, never its text
    (it may carry request data or secrets)."""
    rid = request.state.get("request_id") or "-"
    level = logging.ERROR if status == 500 else logging.WARNING
    # A provider client's bug names the exception behind it (its type, a missing module).
    kind = f"{type(exc).__name__}: {exc.bug}" if isinstance(exc, ProviderClientBug) else type(exc).__name__
    logger.log(level, "request %s: %s %s %s", rid, status, request.url.path, kind)


def _router_error_response(request: Request, exc: Exception) -> Response[ErrorBody]:
    rid = request.state.get("request_id")
    if isinstance(exc, AuthenticationError):
        request.app.state.metrics.governance.labels("unauthenticated").inc()
        return error_response(401, str(exc), "invalid_request_error", code="invalid_api_key",
                              request_id=rid, headers={"www-authenticate": "Bearer"})
    if isinstance(exc, RateLimitedError):
        request.app.state.metrics.governance.labels(exc.code).inc()
        retry_after = str(max(1, math.ceil(exc.retry_after_s)))
        return error_response(429, str(exc), "rate_limit_error", code=exc.code, request_id=rid,
                              headers={"retry-after": retry_after})
    if isinstance(exc, CountersUnavailable):
        return error_response(503, "rate limits and budgets cannot be checked right now (the shared "
                              "counters did not answer); the request was not sent", "server_error",
                              code="counters_unavailable", request_id=rid, headers={"retry-after": "1"})
    if isinstance(exc, UnknownModelError):  # OpenAI answers an unknown model this way
        return error_response(404, str(exc), "invalid_request_error", code="model_not_found", request_id=rid)
    if isinstance(exc, ForbiddenDeploymentError):
        return error_response(403, str(exc), "permission_error", code="deployment_forbidden", request_id=rid)
    if isinstance(exc, UnknownRequestError):
        return error_response(404, str(exc), "invalid_request_error", code="request_not_found", request_id=rid)
    if isinstance(exc, InvalidRequestError):
        return error_response(400, str(exc), "invalid_request_error", request_id=rid)
    if isinstance(exc, FatalProviderError):
        status = exc.status if exc.status and 400 <= exc.status < 600 else 502
        return error_response(status, _redacted(request, str(exc)), "provider_error", request_id=rid)
    if isinstance(exc, ProviderClientBug):  # logged as every 5xx is
        return error_response(500, str(exc), "server_error", code="internal_error", request_id=rid)
    if isinstance(exc, AllProvidersFailed):
        request.app.state.metrics.record_attempts(exc.attempts)
        attempts = [
            AttemptInfo(a.deployment, a.outcome, _redacted(request, a.error), a.status)  # type: ignore[attr-defined]
            for a in exc.attempts
        ]
        message = "every deployment failed: " + "; ".join(
            f"{a.deployment}: {a.error or a.outcome}" for a in attempts
        )
        if isinstance(exc, LocalOnlyFailed):
            message = (f"sensitive request ({', '.join(exc.reasons)}): only the local tier may answer it, "
                       f"and it was not sent to any cloud provider; {message}")
        return error_response(503, message, "all_providers_failed", attempts, request_id=rid)
    return error_response(500, "internal error", "server_error", request_id=rid)


def log_client_bug(request_id: str | None, exc: ProviderClientBug) -> None:
    """The log line of a stream cut by a provider client's bug (its message holds no request
    data); before a stream starts, the bug is a 500 and logged as every 5xx is."""
    logger.error("request %s: %s", request_id or "-", exc)


def http_error_handler(_: Request, exc: Exception) -> Response[ErrorBody]:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ValidationException):
        problems = [e for e in (exc.extra or []) if isinstance(e, dict)]
        body_key = _body_key(exc)
        if body_key is not None and len(problems) == 1 and problems[0].get("source") == "body":
            problems = [{**problems[0], "key": body_key}]
        detail = "; ".join(_problem(e) for e in problems)
        param = next((str(e["key"]) for e in problems if e.get("key") not in (None, "", "data")), None)
        return error_response(400, f"invalid request body: {detail or exc.detail}",
                              "invalid_request_error", param=param)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return error_response(exc.status_code, str(exc.detail), kind)


def _redacted(request: Request, text: str | None) -> str | None:
    """An upstream's error without the secrets it may echo from the request (as the decision
    log stores it)."""
    return request.app.state.router.redact(text) if text else text


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


def undecodable_body_handler(_: Request, exc: Exception) -> Response[ErrorBody]:
    return error_response(400, "request body is not valid UTF-8", "invalid_request_error")


def too_deep_body_handler(_: Request, exc: Exception) -> Response[ErrorBody]:
    # msgspec raises RecursionError for JSON nested deeper than the interpreter's limit (~1,000)
    return error_response(400, "request body is nested too deeply", "invalid_request_error")


def unexpected_error_handler(request: Request, exc: Exception) -> Response[ErrorBody]:
    # Never echo the exception: it may carry request data or secrets.
    _log_server_error(request, 500, exc)
    return error_response(500, "internal error", "server_error", request_id=request.state.get("request_id"))


EXCEPTION_HANDLERS = {
    RouterError: router_error_handler,
    HTTPException: http_error_handler,
    UnicodeDecodeError: undecodable_body_handler,
    RecursionError: too_deep_body_handler,
    Exception: unexpected_error_handler,
}
