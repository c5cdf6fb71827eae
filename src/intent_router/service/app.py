"""create_app(): the Litestar application. Lifespan builds the router and the provider pools."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream
from litestar.datastructures import State

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import DEFAULT_CONFIG, load_config
from intent_router.exceptions import InvalidRequestError, ProviderError
from intent_router.providers.dispatch import ProviderClients
from intent_router.router import Router, StreamOutcome, usage_cost
from intent_router.service.errors import EXCEPTION_HANDLERS
from intent_router.service.metrics import RouterMetrics
from intent_router.service.openapi import (
    BODY_ERRORS,
    CHAT_ERRORS,
    READYZ_WARMING,
    ChatOperation,
    RouteOperation,
)
from intent_router.service.schemas import (
    ChatCompletion,
    ChatRequest,
    ModelCard,
    ModelList,
    RouteRequest,
    RouteResponse,
    last_user_text,
    upstream_body,
)

MAX_BODY_BYTES = 1024 * 1024


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str | int]:
    """Alive; ``worker`` is the answering process's id (several with ``--workers N``)."""
    return {"status": "ok", "worker": os.getpid()}


@get("/readyz", sync_to_thread=False, responses={503: READYZ_WARMING})
def readyz(state: State) -> Response[dict[str, str]]:
    """Model loaded and config valid (both checked at start), and litellm loaded when a
    deployment needs it (it loads in the background for a few seconds after start)."""
    version = state.router.classifier.version
    if state.needs_litellm and not state.clients.warm:
        return Response({"status": "warming", "model_version": version}, status_code=503)
    return Response({"status": "ready", "model_version": version})


@get("/v1/models", sync_to_thread=False)
def list_models(state: State) -> ModelList:
    """``auto`` plus every configured deployment."""
    names = ["auto", *state.router.config.deployments]
    return ModelList(data=[ModelCard(id=n) for n in names])


@get("/metrics", sync_to_thread=False, media_type="text/plain; version=0.0.4")
def metrics(state: State) -> bytes:
    """Prometheus exposition of this process's metrics."""
    return state.metrics.render()


@post("/v1/route", status_code=200, responses=BODY_ERRORS, operation_class=RouteOperation)
async def route(data: RouteRequest, state: State) -> RouteResponse:
    """Which intent and which chain of deployments; calls no provider but the LLM classifier."""
    if data.prompt is not None:
        prompt = data.prompt
    elif data.messages:
        prompt = last_user_text(data.messages)
    else:
        raise InvalidRequestError("send 'messages' (OpenAI format) or 'prompt'")
    sensitive = bool(data.metadata and data.metadata.sensitive)
    started = time.perf_counter()
    decision = await state.router.route(prompt, data.model, sensitive)
    state.metrics.latency.labels("route").observe(time.perf_counter() - started)
    state.metrics.record_route("route", decision.intent, decision.source)
    return RouteResponse(
        intent=decision.intent, confidence=decision.confidence,
        probabilities=decision.probabilities, source=decision.source, chain=list(decision.chain),
        estimated_cost_usd=decision.estimated_cost_usd,
        escalation_cost_usd=decision.escalation_cost_usd, threshold=decision.threshold,
        model_version=decision.model_version, escalation_error=decision.escalation_error,
    )


@post("/v1/chat/completions", status_code=200, responses=CHAT_ERRORS, operation_class=ChatOperation)
async def chat_completions(data: ChatRequest, request: Request, state: State) -> Response[ChatCompletion]:
    """OpenAI-compatible chat completions, routed by intent with fallbacks, streaming too."""
    sensitive = bool(data.metadata and data.metadata.sensitive)
    body = upstream_body(await request.json())
    if data.stream:
        return await _stream_chat(data, body, state, sensitive)  # type: ignore[return-value]
    started = time.perf_counter()
    outcome = await state.router.chat(body, last_user_text(data.messages), data.model, sensitive)
    state.metrics.latency.labels("chat").observe(time.perf_counter() - started)
    state.metrics.record_route("chat", outcome.intent, _source(outcome.decision))
    state.metrics.record_attempts(outcome.result.attempts)
    state.metrics.cost.labels(outcome.result.deployment).inc(outcome.cost_usd)
    headers = {
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": outcome.result.deployment,
        "x-intent-router-attempts": str(len(outcome.result.attempts)),
        "x-intent-router-cost-usd": f"{outcome.cost_usd:.8f}",
    }
    return Response(outcome.response, headers=headers)  # type: ignore[arg-type]


def _source(decision: object) -> str:
    return getattr(decision, "source", "requested")


async def _stream_chat(data: ChatRequest, body: dict, state: State, sensitive: bool) -> Stream:
    outcome: StreamOutcome = await state.router.chat_stream(
        body, last_user_text(data.messages), data.model, sensitive
    )
    result = outcome.result
    first, rest = result.value
    state.metrics.record_route("chat_stream", outcome.intent, _source(outcome.decision))
    state.metrics.record_attempts(result.attempts)
    deployment = state.router.config.deployments[result.deployment]
    metrics = state.metrics

    async def events() -> AsyncIterator[bytes]:
        last, cost = first, outcome.escalation_cost_usd
        try:
            yield first + b"\n\n"
            cost += _line_cost(deployment, first)
            try:
                async for line in rest:
                    last = line
                    cost += _line_cost(deployment, line)
                    yield line + b"\n\n"
            except ProviderError as exc:
                # After the first chunk there is no falling back: end with an error event.
                yield _error_event(f"upstream stream failed: {exc}")
                return
            if last.strip() != b"data: [DONE]":
                yield _error_event("upstream stream ended before [DONE]")
        finally:
            metrics.cost.labels(result.deployment).inc(cost)

    headers = {
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": result.deployment,
        "x-intent-router-attempts": str(len(result.attempts)),
        "cache-control": "no-cache",
    }
    return Stream(events(), media_type="text/event-stream", headers=headers)


def _line_cost(deployment: object, line: bytes) -> float:
    """The cost of a stream's usage chunk (sent when the client asked for
    ``stream_options.include_usage``); 0 for any other line."""
    if b'"usage"' not in line or not line.startswith(b"data: {"):
        return 0.0
    try:
        usage = json.loads(line[6:]).get("usage")
    except ValueError:
        return 0.0
    return usage_cost(deployment, usage) if isinstance(usage, dict) else 0.0  # type: ignore[arg-type]


def _error_event(message: str) -> bytes:
    error = {"error": {"message": message, "type": "provider_error"}}
    return b"data: " + json.dumps(error).encode() + b"\n\n"


def create_app(config_path: Path | None = None, models_dir: Path | None = None) -> Litestar:
    """Build the app; a bad config or model fails here, before serving."""
    config = load_config(config_path or os.environ.get("INTENT_ROUTER_CONFIG") or DEFAULT_CONFIG)
    classifier = IntentClassifier.from_dir(models_dir or DEFAULT_MODELS_DIR)
    clients = ProviderClients()

    needs_litellm = any(d.api_style == "litellm" for d in config.deployments.values())

    @asynccontextmanager
    async def providers(app: Litestar) -> AsyncIterator[None]:
        if needs_litellm:
            clients.warm_up()
        try:
            yield
        finally:
            await clients.aclose()

    return Litestar(
        route_handlers=[healthz, readyz, list_models, metrics, route, chat_completions],
        state=State({
            "router": Router(config, classifier, clients.complete, clients.stream),
            "metrics": RouterMetrics(),
            "clients": clients,
            "needs_litellm": needs_litellm,
        }),
        lifespan=[providers],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
    )
