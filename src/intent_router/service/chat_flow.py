"""The use cases behind /v1/route and /v1/chat/completions, one function each: ``route_prompt``
and ``serve_chat`` (an answer, or a stream handed to service/streaming.py). Around a chat request
with a client key, the key's budget is held by ``budget_hold`` and settled when it exits. The
handlers (service/app.py) only turn HTTP into a ``RequestContext`` and call these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Response
from litestar.response import Stream

from intent_router.exceptions import (
    AllProvidersFailed,
    InvalidRequestError,
    LocalOnlyFailed,
    RouterError,
)
from intent_router.governance.client_keys import ClientKey
from intent_router.governance.limits import BudgetHold, Limits, hold_budget
from intent_router.router import Router, Turn
from intent_router.routing.overrides import NO_OVERRIDE, EffectiveOverride
from intent_router.service.recording import RequestContext
from intent_router.service.schemas import (
    ChatRequest,
    RouteMetadata,
    RouteRequest,
    RouteResponse,
    user_turns,
)
from intent_router.service.services import Services
from intent_router.service.sessions import note, note_plan, session_body, session_headers
from intent_router.service.streaming import stream_response
from intent_router.types import ChatOutcome, Plan, RouteDecision


@dataclass
class HeldBudget:
    """A chat request's hold on its key's budgets: the plan it holds for (a cheaper one when the
    budget downgraded it) and what the request is charged when the hold is settled."""

    plan: Plan
    hold: BudgetHold | None  # None: no client key, nothing held
    downgraded: bool = False
    spent_usd: float = 0.0  # until an answer's cost is known, the LLM classifier's

    @property
    def estimate_usd(self) -> float:
        """What was held: the most the request may cost along its chain."""
        return self.hold.estimate_usd if self.hold is not None else 0.0


@asynccontextmanager
async def budget_hold(
    limits: Limits,
    router: Router,
    key: ClientKey | None,
    plan: Plan,
    body: dict[str, Any],
    prompt: str,
    sensitive: bool = False,
    override: EffectiveOverride = NO_OVERRIDE,
) -> AsyncIterator[HeldBudget]:
    """Hold the request's estimate against ``key``'s budgets (downgrading the plan, or raising
    BudgetExceededError, when they cannot cover it), and settle the hold at ``spent_usd`` on exit,
    whether an answer came or not. Without a key nothing is held."""
    if key is None:
        yield HeldBudget(plan, None)
        return
    plan, hold, downgraded = await hold_budget(
        limits, router, key, plan, body, prompt, sensitive, override
    )
    held = HeldBudget(plan, hold, downgraded, spent_usd=escalation_cost(plan.decision))
    try:
        yield held
    finally:
        await limits.settle(hold, held.spent_usd)


def route_input(data: RouteRequest) -> tuple[str, list[str], list[int]]:
    """A /v1/route body as (the prompt, the earlier user turns, the position of each among the
    user turns sent)."""
    if data.prompt is not None:
        context = list(data.context or ())
        return data.prompt, context, list(range(len(context) + 1))
    if data.messages:
        positions, turns = user_turns(data.messages)
        return turns[-1], turns[:-1], positions
    raise InvalidRequestError("send 'messages' (OpenAI format) or 'prompt'")


async def route_prompt(
    ctx: RequestContext,
    data: RouteRequest,
    context: list[str],
    positions: list[int],
    key: ClientKey | None,
    services: Services,
) -> Response[RouteResponse]:
    """/v1/route: which intent and which chain; calls no provider but the LLM classifier."""
    if key is not None:
        await services.limits.admit(key)  # requests per minute; /v1/route sends no tokens anywhere
    sensitive = sensitivity(ctx, data.metadata)
    decision, session = await services.router.route_turn(
        Turn(ctx.prompt, data.model, bool(sensitive), ctx.override, context, ctx.session_name)
    )
    note(ctx, session, services.metrics)
    services.metrics.record_latency("route", 200, ctx.elapsed_ms() / 1000)
    services.metrics.record_route("route", decision.intent, decision.source)
    services.recorder.route(ctx, decision)
    body = RouteResponse(
        intent=decision.intent,
        confidence=decision.confidence,
        probabilities=decision.probabilities,
        source=decision.source,
        chain=list(decision.chain),
        estimated_cost_usd=decision.estimated_cost_usd,
        escalation_cost_usd=decision.escalation_cost_usd,
        threshold=decision.threshold,
        model_version=decision.model_version,
        escalation_error=decision.escalation_error,
        request_id=ctx.request_id,
        sensitive=bool(sensitive),
        secrets_found=list(ctx.secret_kinds),
        override=list(decision.override_applied),
        routed_as=decision.routed_as,
        turns_used=[positions[i] for i in decision.turns_used],
        session=session_body(session),
    )
    return Response(body, headers={"x-request-id": ctx.request_id, **session_headers(session)})


async def serve_chat(
    ctx: RequestContext,
    data: ChatRequest,
    body: dict[str, Any],
    key: ClientKey | None,
    services: Services,
) -> Response[Any] | Stream:
    """/v1/chat/completions: admit, plan, hold the budget, call the chain (or open a stream),
    settle, record, count. A failure is recorded in the decision log and raised to be answered."""
    sensitive = sensitivity(ctx, data.metadata)
    local_only, router = bool(sensitive), services.router
    async with _failures_recorded(ctx, services, sensitive), AsyncExitStack() as exits:
        if key is not None:
            await services.limits.admit(key, router.request_tokens(body, ctx.prompt))
        earlier_turns = user_turns(data.messages)[1][:-1]
        ctx.plan = await router.plan(
            Turn(ctx.prompt, data.model, local_only, ctx.override, earlier_turns, ctx.session_name)
        )
        note_plan(ctx, ctx.plan)
        hold = budget_hold(
            services.limits, router, key, ctx.plan, body, ctx.prompt, local_only, ctx.override
        )
        budget = await exits.enter_async_context(hold)
        ctx.plan = budget.plan
        if budget.downgraded:
            note_plan(ctx, budget.plan)  # the downgraded turn is a switch of its own
            ctx.budget = "downgraded"
            services.metrics.governance.labels("downgraded").inc()
        chain = (router.config.deployments[name] for name in budget.plan.chain)
        await services.clients.load_for(chain)  # in case litellm is still loading
        if data.stream:
            opened = await router.chat_stream(body, ctx.prompt, plan=budget.plan)
            # The stream takes the hold over from ``exits``: it is settled when the stream ends.
            return stream_response(ctx, budget.plan, opened, body, services, budget, exits)
        outcome = await router.chat(body, ctx.prompt, data.model, local_only, plan=budget.plan)
        budget.spent_usd = outcome.cost_usd
    return _answer(ctx, outcome, budget.downgraded, services)


def _answer(
    ctx: RequestContext, outcome: ChatOutcome, downgraded: bool, services: Services
) -> Response[Any]:
    """A chat answer counted, recorded, and sent with the router's headers."""
    metrics, result = services.metrics, outcome.result
    metrics.record_latency("chat", 200, ctx.elapsed_ms() / 1000)
    metrics.record_route("chat", outcome.intent, decision_source(outcome.decision))
    metrics.record_attempts(result.attempts)
    metrics.cost.labels(result.deployment).inc(outcome.cost_usd)
    cached = metrics.record_input_tokens(result.deployment, outcome.response.get("usage"))
    assert ctx.plan is not None  # planned before any answer
    note(ctx, outcome.session, services.metrics)
    services.recorder.chat(ctx, ctx.plan, outcome)
    headers = {
        "x-request-id": ctx.request_id,
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": result.deployment,
        "x-intent-router-attempts": str(len(result.attempts)),
        "x-intent-router-cost-usd": f"{outcome.cost_usd:.8f}",
        "x-intent-router-cached-tokens": str(cached),
        **session_headers(outcome.session),
    }
    if downgraded:
        headers["x-intent-router-budget"] = "downgraded"
    return Response(outcome.response, headers=headers)


@asynccontextmanager
async def _failures_recorded(
    ctx: RequestContext, services: Services, sensitive: tuple[str, ...]
) -> AsyncIterator[None]:
    """A chat request that fails with a RouterError leaves a decision row; a sensitive one whose
    chain failed fails closed, saying why."""
    try:
        yield
    except AllProvidersFailed as exc:
        if sensitive:
            exc = LocalOnlyFailed(exc.attempts, sensitive, exc.deadline_exceeded)
        services.recorder.failed(ctx, ctx.plan, exc)
        raise exc from None
    except RouterError as exc:
        services.recorder.failed(ctx, ctx.plan, exc)
        raise


def sensitivity(ctx: RequestContext, metadata: RouteMetadata | None) -> tuple[str, ...]:
    """Why a request may only go to the local tier (empty: it may go anywhere)."""
    reasons = [f"contains a secret: {kind}" for kind in ctx.secret_kinds]
    if ctx.override.sensitive:
        reasons.insert(0, f"sensitive subject ({', '.join(ctx.override.applied)})")
    if metadata is not None and metadata.sensitive:
        reasons.insert(0, "marked sensitive")
    return tuple(reasons)


def escalation_cost(decision: RouteDecision | None) -> float:
    """What the LLM classifier cost (0 without a decision: the caller named a deployment)."""
    return decision.escalation_cost_usd if decision is not None else 0.0


def decision_source(decision: RouteDecision | None) -> str:
    """How the chain was chosen: the decision's source, or ``requested`` (a deployment named)."""
    return decision.source if decision is not None else "requested"
