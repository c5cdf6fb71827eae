"""create_app(): the Litestar application, its handlers (thin: the use cases are in
service/chat_flow.py) and its lifespan, which builds the services (service/services.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Request, Response, get, post
from litestar.logging.config import LoggingConfig

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import load_config
from intent_router.db import storage_outage_as_unavailable
from intent_router.decisions import Feedback
from intent_router.exceptions import InvalidRequestError, UnknownRequestError
from intent_router.governance.client_keys import ClientKey
from intent_router.routing.overrides import resolve
from intent_router.service.admin import ADMIN_HANDLERS
from intent_router.service.chat_flow import route_input, route_prompt, serve_chat
from intent_router.service.client_auth import require_client_key
from intent_router.service.errors import EXCEPTION_HANDLERS
from intent_router.service.model_cards import MODEL_HANDLERS
from intent_router.service.openapi import (
    BODY_ERRORS,
    CHAT_ERRORS,
    FEEDBACK_ERRORS,
    READYZ_WARMING,
    ChatOperation,
    FeedbackOperation,
    RouteOperation,
)
from intent_router.service.readiness import readiness
from intent_router.service.recording import RequestContext, clean_id
from intent_router.service.schema_page import openapi_config
from intent_router.service.schemas import (
    ChatCompletion,
    ChatRequest,
    FeedbackRequest,
    FeedbackResponse,
    Readiness,
    RouteMetadata,
    RouteRequest,
    RouteResponse,
    last_user_text,
    strings_in,
    system_text,
    upstream_body,
    user_turns,
)
from intent_router.service.services import (
    DEPENDENCIES,
    STATE_KEY,
    Services,
    open_services,
    services_of,
)
from intent_router.service.sessions import session_of
from intent_router.settings import ServiceSettings
from intent_router.text import clean_text
from intent_router.types import Endpoint

MAX_BODY_BYTES = 1024 * 1024  # the default of router.max_body_bytes


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str | int]:
    """Alive; ``worker`` is the answering process's id (several with ``--workers N``)."""
    return {"status": "ok", "worker": os.getpid()}


@get("/readyz", responses={503: READYZ_WARMING})
async def readyz(services: Services) -> Response[Readiness]:
    """Model loaded and config valid (both checked at start), litellm loaded when a deployment
    needs it (it loads in the background for a few seconds after start: ``warming``, 503), and
    some deployment able to answer (else ``degraded`` with the reasons: 200, or 503 under
    ``router.strict_readiness``)."""
    router = services.router
    report = readiness(
        router.config,
        services.needs_litellm and not services.clients.warm,
        router.cooldowns.available,
        await services.keyless_probe.unreachable(),
    )
    body = Readiness(
        report.status, router.classifier.version, list(report.reasons), list(report.usable)
    )
    return Response(body, status_code=report.http_status(router.config.strict_readiness))


@get("/metrics", sync_to_thread=False, media_type="text/plain; version=0.0.4")
def metrics(services: Services) -> bytes:
    """Prometheus exposition of this process's metrics."""
    return services.metrics.render()


async def _context(
    endpoint: Endpoint,
    prompt: str,
    request: Request,
    services: Services,
    metadata: RouteMetadata | None,
    user_field: str | None = None,
) -> RequestContext:
    """Who the request is for (X-Repo / X-User headers, else metadata, else OpenAI's ``user``)
    and which secrets it carries (every string of the body is scanned)."""
    key: ClientKey | None = request.state.get("client_key")
    # With client keys on, the key's team is the organisation: a client cannot claim another's.
    org = (
        key.team
        if key is not None
        else clean_id(_utf8_header(request, "x-org") or (metadata.org if metadata else None))
    )
    repo = clean_id(_utf8_header(request, "x-repo") or (metadata.repo if metadata else None))
    user = clean_id(
        _utf8_header(request, "x-user") or (metadata.user if metadata else None) or user_field
    )
    kinds = services.router.secret_kinds(strings_in(await request.json()))
    override = resolve(services.override_cache.table, org, repo, user)
    ctx = RequestContext(
        endpoint,
        prompt,
        repo,
        user,
        tuple(kinds),
        override=override,
        org=org,
        client_key_id=key.id if key is not None else None,
    )
    request.state.request_id = ctx.request_id
    request.state.ctx = ctx  # an error answered for this request is counted under its endpoint
    return ctx


def _utf8_header(request: Request, name: str) -> str | None:
    """A header as UTF-8 text (ASGI servers hand headers over as latin-1)."""
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


# Handlers receive the ``services`` dependency but for the two hot ones, /v1/route and chat:
# they take the Request anyway, and reading the services from it skips Litestar's dependency
# resolution, which costs CPU on every request (``python -m tests.bench.services_access``).


@post(
    "/v1/route",
    status_code=200,
    responses=BODY_ERRORS,
    operation_class=RouteOperation,
    before_request=require_client_key,
)
async def route(data: RouteRequest, request: Request) -> Response[RouteResponse]:
    """Which intent and which chain of deployments; calls no provider but the LLM classifier."""
    services = services_of(request.app)  # not injected: the hot path (see above)
    prompt, context, positions = route_input(data)
    ctx = await _context("route", prompt, request, services, data.metadata)
    ctx.session_name = session_of(
        request, data.metadata, ctx, system_text(data.messages or []), [*context, prompt]
    )
    return await route_prompt(ctx, data, context, positions, request.state.client_key, services)


@post(
    "/v1/chat/completions",
    status_code=200,
    responses=CHAT_ERRORS,
    operation_class=ChatOperation,
    before_request=require_client_key,
)
async def chat_completions(data: ChatRequest, request: Request) -> Response[ChatCompletion]:
    """OpenAI-compatible chat completions, routed by intent with fallbacks, streaming too."""
    services = services_of(request.app)  # not injected: the hot path (see above)
    body = upstream_body(await request.json())
    ctx = await _context(
        "chat_stream" if data.stream else "chat",
        last_user_text(data.messages),
        request,
        services,
        data.metadata,
        data.user,
    )
    ctx.session_name = session_of(
        request, data.metadata, ctx, system_text(data.messages), user_turns(data.messages)[1]
    )
    return await serve_chat(ctx, data, body, request.state.client_key, services)  # type: ignore[return-value]


@post(
    "/v1/feedback",
    status_code=200,
    sync_to_thread=True,
    responses=FEEDBACK_ERRORS,
    operation_class=FeedbackOperation,
    before_request=require_client_key,
)
def feedback(data: FeedbackRequest, services: Services) -> FeedbackResponse:
    """Correct a decision's intent and/or rate it; attached to its MLflow trace when traced."""
    if data.correct_intent is None and data.rating is None:
        raise InvalidRequestError("send 'correct_intent' and/or 'rating'")
    store, writer = services.decisions, services.decision_writer
    if store is None or writer is None:
        raise UnknownRequestError("the decision log is off (storage.decision_log: false)")
    with storage_outage_as_unavailable():
        row = store.get(data.request_id)
        if row is None and writer.flush(timeout_s=2.0):  # maybe still queued
            row = store.get(data.request_id)
        if row is None:
            raise UnknownRequestError(f"no decision with request_id {data.request_id!r}")
        comment = (
            services.router.redact(data.comment) if data.comment else data.comment
        )  # like prompts
        store.add_feedback(
            Feedback(data.request_id, data.correct_intent, data.rating, clean_text(comment))
        )
    return FeedbackResponse(
        data.request_id, stored=True, trace="pending" if row["traced"] else "untraced"
    )


def create_app(
    config_path: Path | None = None,
    models_dir: Path | None = None,
    settings: ServiceSettings | None = None,
) -> Litestar:
    """Build the app; a bad config or model fails here, before serving. The lifespan builds the
    services (``open_services``) and closes them."""
    # httpx (litellm's client) logs every upstream call at INFO: one line per request through
    # the logging queue, about 14% of a worker's CPU under load. The decision log records calls.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = settings or ServiceSettings.from_env()
    config = load_config(config_path or settings.config_path)
    classifier = IntentClassifier.from_dir(models_dir or DEFAULT_MODELS_DIR)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Run directly by uvicorn (--factory), the app tracks MLflow from a thread of each worker;
        # under `python -m intent_router.service` the tracker is a process of its own.
        async with open_services(config, classifier, settings) as services:
            app.state[STATE_KEY] = services
            yield

    # Litestar sets the root logger to INFO; under `python -m intent_router.service` it follows
    # --log-level instead (uvicorn's "trace" is Python's DEBUG).
    # Errors are logged once, without their text, where they are answered (service/errors.py).
    logging_config = LoggingConfig(
        root={"handlers": ["queue_listener"], "level": settings.python_log_level},
        log_exceptions="never",
    )
    return Litestar(
        logging_config=logging_config,
        route_handlers=[
            healthz,
            readyz,
            *MODEL_HANDLERS,
            metrics,
            route,
            chat_completions,
            feedback,
            *ADMIN_HANDLERS,
        ],
        dependencies=DEPENDENCIES,
        openapi_config=openapi_config(),
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=config.max_body_bytes,
    )
