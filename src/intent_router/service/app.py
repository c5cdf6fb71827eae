"""create_app(): the Litestar application. Lifespan builds the router and the provider pools."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.logging.config import LoggingConfig
from litestar.response import Stream

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import DEFAULT_CONFIG, load_config
from intent_router.db import storage_outage_as_unavailable
from intent_router.decisions import DecisionStore, DecisionWriter, Feedback
from intent_router.text import clean_text
from intent_router.exceptions import (
    AllProvidersFailed,
    InvalidRequestError,
    LocalOnlyFailed,
    ProviderClientBug,
    ProviderError,
    RouterError,
    UnknownRequestError,
)
from intent_router.governance.client_keys import ClientKey, ClientKeyCache, ClientKeyStore
from intent_router.governance.counters import make_counters
from intent_router.governance.limits import BudgetHold, Limits, hold_budget
from intent_router.governance.override_store import OverrideCache, OverrideStore
from intent_router.providers.dispatch import ProviderClients, needs_litellm
from intent_router.providers.upstream_validation import chunk_usage
from intent_router.router import ChatOutcome, Plan, Router, StreamOutcome, usage_cost
from intent_router.routing.overrides import resolve
from intent_router.routing.session_store import make_session_store
from intent_router.routing.shared_usage import SharedUsage
from intent_router.service.admin import ADMIN_HANDLERS
from intent_router.service.client_auth import require_client_key
from intent_router.service.errors import EXCEPTION_HANDLERS, log_client_bug
from intent_router.service.metrics import RouterMetrics
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
from intent_router.service.readiness import KeylessProbe, readiness
from intent_router.service.recording import DecisionRecorder, RequestContext, clean_id
from intent_router.service.schema_page import openapi_config
from intent_router.service.sessions import note, session_body, session_headers, session_of
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
from intent_router.tracking import ServingTracker

MAX_BODY_BYTES = 1024 * 1024  # the default of router.max_body_bytes
logger = logging.getLogger(__name__)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str | int]:
    """Alive; ``worker`` is the answering process's id (several with ``--workers N``)."""
    return {"status": "ok", "worker": os.getpid()}


@get("/readyz", responses={503: READYZ_WARMING})
async def readyz(state: State) -> Response[Readiness]:
    """Model loaded and config valid (both checked at start), litellm loaded when a deployment
    needs it (it loads in the background for a few seconds after start: ``warming``, 503), and
    some deployment able to answer (else ``degraded`` with the reasons: 200, or 503 under
    ``router.strict_readiness``)."""
    router: Router = state.router
    report = readiness(router.config, state.needs_litellm and not state.clients.warm, router.cooldowns.available,
                       await state.keyless_probe.unreachable())
    body = Readiness(report.status, router.classifier.version, list(report.reasons),  # type: ignore[arg-type]
                     list(report.usable))
    return Response(body, status_code=report.http_status(router.config.strict_readiness))


@get("/metrics", sync_to_thread=False, media_type="text/plain; version=0.0.4")
def metrics(state: State) -> bytes:
    """Prometheus exposition of this process's metrics."""
    return state.metrics.render()


async def _context(endpoint: str, prompt: str, request: Request, state: State,
                   metadata: RouteMetadata | None, user_field: str | None = None) -> RequestContext:
    """Who the request is for (X-Repo / X-User headers, else metadata, else OpenAI's ``user``)
    and which secrets it carries (every string of the body is scanned)."""
    key: ClientKey | None = request.state.get("client_key")
    # With client keys on, the key's team is the organisation: a client cannot claim another's.
    org = key.team if key is not None else clean_id(_utf8_header(request, "x-org") or (metadata.org if metadata else None))
    repo = clean_id(_utf8_header(request, "x-repo") or (metadata.repo if metadata else None))
    user = clean_id(_utf8_header(request, "x-user") or (metadata.user if metadata else None) or user_field)
    kinds = state.router.secret_kinds(strings_in(await request.json()))
    override = resolve(state.override_cache.table, org, repo, user)
    ctx = RequestContext(endpoint, prompt, repo, user, tuple(kinds), override=override, org=org,
                         client_key_id=key.id if key is not None else None)
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


def _sensitivity(ctx: RequestContext, metadata: RouteMetadata | None) -> tuple[str, ...]:
    """Why a request may only go to the local tier (empty: it may go anywhere)."""
    reasons = [f"contains a secret: {kind}" for kind in ctx.secret_kinds]
    if ctx.override.sensitive:
        reasons.insert(0, f"sensitive subject ({', '.join(ctx.override.applied)})")
    if metadata is not None and metadata.sensitive:
        reasons.insert(0, "marked sensitive")
    return tuple(reasons)


@post("/v1/route", status_code=200, responses=BODY_ERRORS, operation_class=RouteOperation,
      before_request=require_client_key)
async def route(data: RouteRequest, request: Request, state: State) -> Response[RouteResponse]:
    """Which intent and which chain of deployments; calls no provider but the LLM classifier."""
    system = ""
    if data.prompt is not None:
        context, prompt = list(data.context or ()), data.prompt
        positions = list(range(len(context) + 1))
    elif data.messages:
        positions, turns = user_turns(data.messages)
        context, prompt, system = turns[:-1], turns[-1], system_text(data.messages)
    else:
        raise InvalidRequestError("send 'messages' (OpenAI format) or 'prompt'")
    ctx = await _context("route", prompt, request, state, data.metadata)
    key: ClientKey | None = request.state.client_key
    if key is not None:
        await state.limits.admit(key)  # requests per minute; /v1/route sends no tokens anywhere
    sensitive = _sensitivity(ctx, data.metadata)
    decision, session = await state.router.route_turn(
        prompt, data.model, bool(sensitive), ctx.override, context,
        session_of(request, data.metadata, ctx, system, [*context, prompt]))
    note(ctx, session)
    state.metrics.record_latency("route", 200, ctx.elapsed_ms() / 1000)
    state.metrics.record_route("route", decision.intent, decision.source)
    state.recorder.route(ctx, decision)
    body = RouteResponse(
        intent=decision.intent, confidence=decision.confidence,
        probabilities=decision.probabilities, source=decision.source, chain=list(decision.chain),
        estimated_cost_usd=decision.estimated_cost_usd,
        escalation_cost_usd=decision.escalation_cost_usd, threshold=decision.threshold,
        model_version=decision.model_version, escalation_error=decision.escalation_error,
        request_id=ctx.request_id, sensitive=bool(sensitive), secrets_found=list(ctx.secret_kinds),
        override=list(decision.override_applied), routed_as=decision.routed_as,
        turns_used=[positions[i] for i in decision.turns_used], session=session_body(session),
    )
    return Response(body, headers={"x-request-id": ctx.request_id, **session_headers(session)})


@post("/v1/chat/completions", status_code=200, responses=CHAT_ERRORS, operation_class=ChatOperation,
      before_request=require_client_key)
async def chat_completions(data: ChatRequest, request: Request, state: State) -> Response[ChatCompletion]:
    """OpenAI-compatible chat completions, routed by intent with fallbacks, streaming too."""
    body = upstream_body(await request.json())
    prompt = last_user_text(data.messages)
    ctx = await _context("chat_stream" if data.stream else "chat", prompt, request, state,
                         data.metadata, data.user)
    sensitive = _sensitivity(ctx, data.metadata)
    key: ClientKey | None = request.state.client_key
    plan: Plan | None = None
    hold: BudgetHold | None = None
    outcome: ChatOutcome | None = None
    downgraded = False
    try:
        if key is not None:
            await state.limits.admit(key, state.router.request_tokens(body, prompt))
        plan = await state.router.plan(prompt, data.model, bool(sensitive), ctx.override,
                                       user_turns(data.messages)[1][:-1])
        request.state.plan = plan  # an error's metrics name the intent
        if key is not None:
            plan, hold, downgraded = await hold_budget(state.limits, state.router, key, plan, body, prompt,
                                                       bool(sensitive), ctx.override)
            if downgraded:
                ctx.budget = "downgraded"
                state.metrics.governance.labels("downgraded").inc()
        deployments = state.router.config.deployments
        await state.clients.load_for(deployments[name] for name in plan.chain)  # in case it is still loading
        if data.stream:
            stream = await _stream_chat(ctx, plan, body, state, hold, downgraded)
            hold = None  # the stream settles it when it ends
            return stream  # type: ignore[return-value]
        outcome = await state.router.chat(body, prompt, data.model, bool(sensitive), plan=plan)
    except AllProvidersFailed as exc:
        if sensitive:  # fail closed, and say why
            exc = LocalOnlyFailed(exc.attempts, sensitive, exc.deadline_exceeded)
        state.recorder.failed(ctx, plan, exc)
        raise exc from None
    except RouterError as exc:
        state.recorder.failed(ctx, plan, exc)
        raise
    finally:
        if hold is not None:  # the answer's real cost, or only the LLM classifier's if none came
            spent = outcome.cost_usd if outcome is not None else _escalation_cost(plan)
            await state.limits.settle(hold, spent)
    state.metrics.record_latency("chat", 200, ctx.elapsed_ms() / 1000)
    state.metrics.record_route("chat", outcome.intent, _source(outcome.decision))
    state.metrics.record_attempts(outcome.result.attempts)
    state.metrics.cost.labels(outcome.result.deployment).inc(outcome.cost_usd)
    cached = state.metrics.record_input_tokens(outcome.result.deployment, outcome.response.get("usage"))
    state.recorder.chat(ctx, plan, outcome)
    headers = {
        "x-request-id": ctx.request_id,
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": outcome.result.deployment,
        "x-intent-router-attempts": str(len(outcome.result.attempts)),
        "x-intent-router-cost-usd": f"{outcome.cost_usd:.8f}",
        "x-intent-router-cached-tokens": str(cached),
    }
    if downgraded:
        headers["x-intent-router-budget"] = "downgraded"
    return Response(outcome.response, headers=headers)  # type: ignore[arg-type]


@post("/v1/feedback", status_code=200, sync_to_thread=True, responses=FEEDBACK_ERRORS,
      operation_class=FeedbackOperation, before_request=require_client_key)
def feedback(data: FeedbackRequest, state: State) -> FeedbackResponse:
    """Correct a decision's intent and/or rate it; attached to its MLflow trace when traced."""
    if data.correct_intent is None and data.rating is None:
        raise InvalidRequestError("send 'correct_intent' and/or 'rating'")
    store: DecisionStore | None = state.decisions
    if store is None:
        raise UnknownRequestError("the decision log is off (storage.decision_log: false)")
    with storage_outage_as_unavailable():
        row = store.get(data.request_id)
        if row is None and state.decision_writer.flush(timeout_s=2.0):  # maybe still queued
            row = store.get(data.request_id)
        if row is None:
            raise UnknownRequestError(f"no decision with request_id {data.request_id!r}")
        comment = state.router.redact(data.comment) if data.comment else data.comment  # like prompts
        store.add_feedback(Feedback(data.request_id, data.correct_intent, data.rating, clean_text(comment)))
    return FeedbackResponse(data.request_id, stored=True, trace="pending" if row["traced"] else "untraced")


def _escalation_cost(plan: Plan | None) -> float:
    return plan.decision.escalation_cost_usd if plan is not None and plan.decision else 0.0


def _source(decision: object) -> str:
    return getattr(decision, "source", "requested")


async def _stream_chat(ctx: RequestContext, plan: Plan, body: dict, state: State,
                       hold: BudgetHold | None, downgraded: bool) -> Stream:
    # If opening fails, the caller settles the hold; once the stream is returned, it does.
    outcome: StreamOutcome = await state.router.chat_stream(body, ctx.prompt, plan=plan)
    result = outcome.result
    first, rest = result.value
    state.metrics.record_route("chat_stream", outcome.intent, _source(outcome.decision))
    state.metrics.record_attempts(result.attempts)
    deployment = state.router.config.deployments[result.deployment]
    metrics, recorder, limits = state.metrics, state.recorder, state.limits

    router = state.router
    resume = router.config.stream_resume

    async def events() -> AsyncIterator[bytes]:
        last, cost, usage, error = first, outcome.escalation_cost_usd, None, None
        counted = 0.0  # of ``cost``, in the cost metric already (a resumed stream's first part)
        name, current, attempts, lines = result.deployment, deployment, result.attempts, rest
        sent = _Sent(first) if resume else None
        try:
            yield first + b"\n\n"
            usage = chunk_usage(first) or usage
            while True:
                try:
                    async for line in lines:
                        last = line
                        usage = chunk_usage(line) or usage
                        yield (sent.pass_on(line) if sent is not None else line) + b"\n\n"
                except ProviderError as exc:
                    # After the first chunk there is no falling back: resume, or an error event.
                    error = f"upstream stream failed: {exc}"
                except ProviderClientBug as exc:
                    log_client_bug(ctx.request_id, exc)
                    error = str(exc)
                    yield _error_event(error, "server_error")
                    return
                except Exception as exc:  # never a bare cut: the client learns the stream failed
                    logger.error("request %s: stream from %s failed: %s", ctx.request_id, name,
                                 type(exc).__name__)
                    error = f"upstream stream failed: {type(exc).__name__}"
                else:
                    if last.strip() == b"data: [DONE]":
                        return
                    error = "upstream stream ended before [DONE]"
                if sent is None or not sent.resumable():
                    yield _error_event(error)
                    return
                broken = replace(attempts[-1], outcome="failed",
                                 error=clean_text(f"stream broke: {error}", 300))
                attempts = (*attempts[:-1], broken)
                tried = {a.deployment for a in attempts if a.outcome in ("ok", "failed")}
                try:
                    resumed = await router.resume_stream(body, ctx.prompt, plan, sent.text, tried)
                except RouterError as exc:  # none could continue: the error event, as without resume
                    attempts += exc.attempts if isinstance(exc, AllProvidersFailed) else ()
                    yield _error_event(error)
                    return
                await _close(lines)
                cost += usage_cost(current, usage) if usage else 0.0
                metrics.cost.labels(name).inc(cost - counted)
                counted = cost
                metrics.record_input_tokens(name, usage)
                metrics.record_attempts(resumed.attempts)
                attempts += resumed.attempts
                name, (line, lines), usage, error = resumed.deployment, resumed.value, None, None
                sent.resumed = True
                current = router.config.deployments[name]
                last = line
                usage = chunk_usage(line) or usage
                yield sent.pass_on(line) + b"\n\n"
        finally:
            await _close(lines)  # an upstream left mid-stream (the client went away) is closed now
            cost += usage_cost(current, usage) if usage else 0.0
            if hold is not None:
                # Without a usage chunk the held estimate is charged: it bounds the real cost.
                await limits.settle(hold, cost if usage else max(cost, hold.estimate_usd))
            metrics.cost.labels(name).inc(cost - counted)
            metrics.record_input_tokens(name, usage)
            metrics.record_latency("chat_stream", 200, ctx.elapsed_ms() / 1000)
            recorder.stream(ctx, plan, name, attempts, usage, cost,
                            error or (None if last.strip() == b"data: [DONE]" else "client went away"))

    headers = {
        "x-request-id": ctx.request_id,
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": result.deployment,
        "x-intent-router-attempts": str(len(result.attempts)),
        "cache-control": "no-cache",
    }
    if downgraded:
        headers["x-intent-router-budget"] = "downgraded"
    return Stream(events(), media_type="text/event-stream", headers=headers)


async def _close(lines: AsyncIterator[bytes]) -> None:
    aclose = getattr(lines, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # closing a broken upstream may fail too; the answer is given
            logger.debug("closing an upstream stream failed: %s", type(exc).__name__)


class _Sent:
    """What a stream has sent so far (its text, whether it carried tool calls), and the id and model
    of its first chunk, which a continuation's chunks are re-written to carry."""

    def __init__(self, first: bytes) -> None:
        self.parts: list[str] = []
        self.tool_calls = False
        self.id: Any = None
        self.model: Any = None
        self.resumed = False  # set once another deployment continues: its chunks are re-written
        self.pass_on(first)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def resumable(self) -> bool:
        return bool(self.text) and not self.tool_calls

    def pass_on(self, line: bytes) -> bytes:
        """``line`` as the client gets it: noted, and carrying the first chunk's id and model."""
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            return line
        try:
            chunk = json.loads(line[6:])
        except ValueError:
            return line
        if not isinstance(chunk, dict):
            return line
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                if delta.get("tool_calls") or delta.get("function_call"):
                    self.tool_calls = True
                if isinstance(delta.get("content"), str):
                    self.parts.append(delta["content"])
        if self.id is None:
            self.id, self.model = chunk.get("id"), chunk.get("model")
        if not self.resumed:
            return line
        chunk["id"], chunk["model"] = self.id, self.model
        for choice in chunk.get("choices") or ():  # the assistant's role was given once already
            if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
                choice["delta"].pop("role", None)
        return b"data: " + json.dumps(chunk).encode()


def _error_event(message: str, kind: str = "provider_error") -> bytes:
    """The SSE event that ends a stream which failed after it began, in OpenAI's error format."""
    code = "internal_error" if kind == "server_error" else "upstream_stream_failed"
    error = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    return b"data: " + json.dumps(error).encode() + b"\n\n"


def create_app(config_path: Path | None = None, models_dir: Path | None = None) -> Litestar:
    """Build the app; a bad config or model fails here, before serving."""
    # httpx (litellm's client) logs every upstream call at INFO: one line per request through
    # the logging queue, about 14% of a worker's CPU under load. The decision log records calls.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = load_config(config_path or os.environ.get("INTENT_ROUTER_CONFIG") or DEFAULT_CONFIG)
    classifier = IntentClassifier.from_dir(models_dir or DEFAULT_MODELS_DIR)
    clients = ProviderClients(config.upstream)
    override_store = OverrideStore(config.storage.resolved_url())
    override_cache = OverrideCache(override_store)
    key_store = ClientKeyStore(config.storage.resolved_url())
    key_cache = ClientKeyCache(key_store)
    redis_url = config.governance.resolved_redis_url()
    counters = make_counters(redis_url, config.governance.redis_prefix)
    store = DecisionStore(config.storage.resolved_url()) if config.storage.decision_log else None
    writer = DecisionWriter(store) if store is not None else None
    sessions = make_session_store(redis_url, config.governance.redis_prefix, config.sessions.max_sessions)
    router = Router(config, classifier, clients.complete, clients.stream, sessions)
    recorder = DecisionRecorder(config, classifier.version, writer, redact=router.redact)
    tracker = (ServingTracker(store, config.tracking.mlflow_tracking_uri, config.tracking.flush_interval_s,
                              max_traces_per_minute=config.tracking.max_traces_per_minute)
               if config.tracking.enabled and store is not None
               and os.environ.get("INTENT_ROUTER_TRACKER") != "process" else None)
    # Under `python -m intent_router.service` the tracker is a process of its own; run directly
    # by uvicorn (--factory), the app tracks from a thread of each worker.
    # litellm (about 130 MB and seconds to import) loads at start, in the background, only where a
    # deployment that may be called needs it; /readyz says ``warming`` meanwhile.
    litellm_needed = needs_litellm(config.deployments.values())

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        if litellm_needed:
            clients.warm_up()
        if redis_url:
            from intent_router.routing.shared_cooldowns import SharedCooldowns  # imports redis
        shared_cooldowns = (SharedCooldowns(router.cooldowns, redis_url, config.deployments,
                                            config.governance.redis_prefix) if redis_url else None)
        if shared_cooldowns is not None:
            shared_cooldowns.start()
        # Headroom groups read every worker's rpm/tpm usage, counted in the governance counters.
        limited = [n for n, d in config.deployments.items() if d.group and (d.rpm or d.tpm)]
        shared_usage = SharedUsage(router.usage, counters, limited) if redis_url and limited else None
        if shared_usage is not None:
            shared_usage.start()
        if tracker is not None:
            tracker.start()
        await anyio.to_thread.run_sync(override_cache.start)  # first load, then polls
        if config.governance.client_keys:
            await anyio.to_thread.run_sync(key_cache.start)
        try:
            yield
        finally:
            await clients.aclose()
            if writer is not None:
                writer.close()  # drain the decision log
            if tracker is not None:
                tracker.stop(timeout_s=10)
            if store is not None:
                store.dispose()
            override_cache.stop()
            override_store.dispose()
            key_cache.stop()
            key_store.dispose()
            if shared_usage is not None:
                await shared_usage.aclose()
            await counters.aclose()
            await sessions.aclose()
            if shared_cooldowns is not None:
                await shared_cooldowns.aclose()

    # Litestar sets the root logger to INFO; under `python -m intent_router.service` it follows
    # --log-level instead (uvicorn's "trace" is Python's DEBUG).
    level = os.environ.get("INTENT_ROUTER_LOG_LEVEL", "info").upper().replace("TRACE", "DEBUG")
    # Errors are logged once, without their text, where they are answered (service/errors.py).
    logging_config = LoggingConfig(root={"handlers": ["queue_listener"], "level": level}, log_exceptions="never")
    return Litestar(
        logging_config=logging_config,
        route_handlers=[healthz, readyz, *MODEL_HANDLERS, metrics, route, chat_completions, feedback,
                        *ADMIN_HANDLERS],
        openapi_config=openapi_config(),
        state=State({
            "router": router,
            "metrics": RouterMetrics(),
            "clients": clients,
            "needs_litellm": litellm_needed,
            "recorder": recorder,
            "decisions": store,
            "decision_writer": writer,
            "override_store": override_store,
            "override_cache": override_cache,
            "key_store": key_store,
            "key_cache": key_cache,
            "limits": Limits(counters),
            "started_at": int(time.time()),  # the "created" of /v1/models
            "keyless_probe": KeylessProbe(config),
        }),
        lifespan=[resources],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=config.max_body_bytes,
    )
