"""Turn each request's routing into a Decision for the decision log. The request path only
hands over what the decision is made of: the DecisionWriter's thread builds the row (redaction,
digest, costs) and writes it. Knows the service's request context; the core knows nothing of it."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from intent_router.config import RouterConfig
from intent_router.costs import InputTokens, cost_usd, input_parts_usd
from intent_router.decisions import Decision, DecisionWriter, prompt_digest
from intent_router.exceptions import AllProvidersFailed, RouterError
from intent_router.providers.upstream_validation import usage_input_split, usage_tokens
from intent_router.routing.overrides import NO_OVERRIDE, EffectiveOverride
from intent_router.tokens import count_tokens
from intent_router.types import (
    Attempt,
    BudgetEffect,
    ChatOutcome,
    DecisionStatus,
    Endpoint,
    Plan,
    RouteDecision,
    SessionId,
)

MAX_ID_CHARS = 256


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_id(value: str | None) -> str | None:
    """A repo or user id as stored: printable, at most 256 characters, None when empty."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in str(value) if ch.isprintable())[:MAX_ID_CHARS].strip()
    return cleaned or None


@dataclass
class RequestContext:
    """Who asked what, when; filled in by the handler."""

    endpoint: Endpoint
    prompt: str
    repo: str | None = None
    user: str | None = None
    secret_kinds: tuple[str, ...] = ()
    override: EffectiveOverride = NO_OVERRIDE
    org: str | None = None
    client_key_id: str | None = None
    budget: BudgetEffect | None = None  # set when a budget moved the request to a cheaper tier
    plan: Plan | None = None  # set once planned: a failure's decision row and metrics name it
    session_name: SessionId | None = None  # the sticky session the request belongs to, if any
    session_id: str | None = None  # a SHA-256 of the sticky session's scoped id
    session: str | None = (
        None  # the turn's session outcome: new, stuck, switched, upgraded, expired
    )
    request_id: str = field(default_factory=new_request_id)
    created_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class DecisionRecorder:
    """Hands decisions to the writer, built on its thread; never raises into a request."""

    def __init__(
        self,
        config: RouterConfig,
        model_version: str,
        writer: DecisionWriter | None,
        sample: Callable[[], float] | None = None,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.config = config
        self._redact = redact
        self.model_version = model_version
        self.writer = writer
        # Its own generator, as the router's: the trace sampling shares no state with whatever
        # else in the process draws from (or seeds) the global ``random``.
        self._sample = sample or random.Random().random

    def route(self, ctx: RequestContext, decision: RouteDecision) -> None:
        tokens = count_tokens(ctx.prompt)
        output = self.config.output_tokens[decision.intent]
        self._submit(
            ctx,
            decision,
            status="ok",
            deployment=None,
            attempts=(),
            prompt_tokens=tokens,
            completion_tokens=output,
            cost=decision.estimated_cost_usd,
        )

    def chat(self, ctx: RequestContext, plan: Plan, outcome: ChatOutcome) -> None:
        usage = outcome.response.get("usage") if isinstance(outcome.response, dict) else None
        prompt_tokens, completion_tokens = _tokens(usage, ctx.prompt)
        self._submit(
            ctx,
            plan.decision,
            status="ok",
            deployment=outcome.result.deployment,
            attempts=outcome.result.attempts,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=outcome.cost_usd,
            chain=plan.chain,
            usage=usage,
        )

    def stream(
        self,
        ctx: RequestContext,
        plan: Plan,
        deployment: str,
        attempts: Iterable[Attempt],
        usage: dict[str, Any] | None,
        cost: float,
        error: str | None,
    ) -> None:
        prompt_tokens, completion_tokens = _tokens(usage, ctx.prompt)
        self._submit(
            ctx,
            plan.decision,
            status="failed" if error else "ok",
            deployment=deployment,
            attempts=attempts,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            chain=plan.chain,
            error=error,
            usage=usage,
        )

    def failed(self, ctx: RequestContext, plan: Plan | None, exc: RouterError) -> None:
        attempts = exc.attempts if isinstance(exc, AllProvidersFailed) else ()
        spent = plan.decision.escalation_cost_usd if plan and plan.decision else 0.0
        self._submit(
            ctx,
            plan.decision if plan else None,
            status="failed",
            deployment=None,
            attempts=attempts,
            prompt_tokens=0,
            completion_tokens=0,
            cost=spent,
            chain=plan.chain if plan else (),
            error=f"{type(exc).__name__}: {exc}"[:500],
        )

    def _submit(
        self,
        ctx: RequestContext,
        decision: RouteDecision | None,
        *,
        status: DecisionStatus,
        deployment: str | None,
        attempts: Iterable[Attempt],
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        chain: tuple[str, ...] | None = None,
        error: str | None = None,
        usage: Any = None,
    ) -> None:
        if self.writer is None:
            return
        # Only the latency is taken here; the writer's thread builds the row from the rest.
        self.writer.submit(
            partial(
                self._decision,
                ctx,
                decision,
                ctx.elapsed_ms(),
                status=status,
                deployment=deployment,
                attempts=tuple(attempts),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
                chain=chain,
                error=error,
                usage=usage,
            )
        )

    def _decision(
        self,
        ctx: RequestContext,
        decision: RouteDecision | None,
        latency_ms: float,
        *,
        status: DecisionStatus,
        deployment: str | None,
        attempts: tuple[Attempt, ...],
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        chain: tuple[str, ...] | None,
        error: str | None,
        usage: Any,
    ) -> Decision:
        premium = self.config.deployments[self.config.premium_deployment]
        split = self._input_split(deployment, usage)
        # A prompt with a secret is stored and hashed redacted: the log never holds the secret.
        prompt = self._redact(ctx.prompt) if ctx.secret_kinds else ctx.prompt
        return Decision(
            request_id=ctx.request_id,
            created_at=ctx.created_at,
            endpoint=ctx.endpoint,
            status=status,
            intent=decision.intent if decision else None,
            confidence=decision.confidence if decision else None,
            source=decision.source if decision else "requested",
            chain=tuple(chain if chain is not None else (decision.chain if decision else ())),
            model_version=self.model_version,
            prompt_sha256=prompt_digest(prompt),
            prompt_text=prompt if self.config.storage.store_prompts else None,
            deployment=deployment,
            attempts=tuple(_attempt(a, self._redact) for a in attempts),
            error=self._redact(error) if error else error,  # an upstream may echo the prompt
            llm_label=decision.intent if decision and decision.source == "llm" else None,
            escalation_error=decision.escalation_error if decision else None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=split.tokens.cached,
            cache_write_tokens=split.tokens.cache_write,
            input_cost_usd=split.cost_usd,
            cached_input_cost_usd=split.cached_cost_usd,
            cost_usd=cost,
            premium_cost_usd=cost_usd(premium, prompt_tokens, completion_tokens),
            latency_ms=latency_ms,
            classify_ms=decision.classify_ms if decision else 0.0,
            escalate_ms=decision.escalate_ms if decision else 0.0,
            repo=ctx.repo,
            user=ctx.user,
            org=ctx.org,
            client_key_id=ctx.client_key_id,
            budget=ctx.budget,
            session_id=ctx.session_id,
            session=ctx.session,
            traced=self._sample() < self.config.tracking.trace_sample_rate,
            probabilities=dict(decision.probabilities) if decision else {},
        )

    def _input_split(self, deployment: str | None, usage: Any) -> _InputSplit:
        """The answer's input by the prompt cache, priced at the deployment that answered;
        nothing when no usage came (a stream without its usage chunk, a route decision)."""
        known = self.config.deployments.get(deployment) if deployment else None
        if known is None or not isinstance(usage, dict):
            return _NO_SPLIT
        uncached, cached, cache_write, _ = usage_input_split(usage)
        tokens = InputTokens(uncached, cached, cache_write)
        parts = input_parts_usd(known, tokens)
        return _InputSplit(tokens, sum(parts), parts[1])


@dataclass(frozen=True)
class _InputSplit:
    tokens: InputTokens
    cost_usd: float
    cached_cost_usd: float


_NO_SPLIT = _InputSplit(InputTokens(0), 0.0, 0.0)


def _attempt(attempt: Attempt, redact: Callable[[str], str]) -> Attempt:
    """An attempt as the log stores it: its error redacted (an upstream may echo the prompt)."""
    error = redact(attempt.error) if attempt.error else attempt.error
    return replace(attempt, error=error, latency_ms=round(float(attempt.latency_ms), 3))


def _tokens(usage: Any, prompt: str) -> tuple[int, int]:
    if isinstance(usage, dict):
        return usage_tokens(usage)
    return count_tokens(prompt), 0
