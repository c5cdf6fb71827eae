"""The routing facade: prompt -> intent (local model, LLM escalation below the threshold) ->
chain of deployments with an estimated cost. The service calls this; it knows no HTTP."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from intent_router.classifier import IntentClassifier
from intent_router.config import Deployment, RouterConfig
from intent_router.costs import InputTokens, cached_cost_usd, cost_usd
from intent_router.exceptions import InvalidRequestError, ProviderClientBug, ProviderError
from intent_router.fallback import walk_chain
from intent_router.providers.upstream_validation import usage_input_split, usage_tokens
from intent_router.routing import regret
from intent_router.routing.conversation import TurnSelection, mix_predictions, select_turns
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.escalation import EscalationCache, build_messages, parse_label
from intent_router.routing.groups import GroupStats, expand_chain, order_members
from intent_router.routing.headroom import MinuteUsage, headroom
from intent_router.routing.overrides import NO_OVERRIDE, EffectiveOverride
from intent_router.routing.policy import AUTO_MODELS, choose_chain, downgrade_chain
from intent_router.routing.secrets import SecretDetector
from intent_router.routing.session_store import InProcessSessions, SessionStore
from intent_router.routing.sessions import decide, settle
from intent_router.tokens import count_message_tokens, count_tokens, default_counter
from intent_router.types import (
    ChainResult,
    ChatOutcome,
    Plan,
    Prediction,
    Proposal,
    RouteDecision,
    RouteSource,
    SessionId,
    SessionReport,
    SessionState,
    SessionTurn,
    StreamOutcome,
)

log = logging.getLogger("intent_router.router")
T = TypeVar("T")

#: Completion call: (deployment, OpenAI-style request, timeout in s) -> OpenAI-style response.
Complete = Callable[[Deployment, dict[str, Any], float], Awaitable[dict[str, Any]]]
#: Streaming call: (deployment, request, timeout in s) -> SSE lines.
OpenStream = Callable[[Deployment, dict[str, Any], float], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Turn:
    """One request's routing inputs: its latest user prompt and what shapes the route."""

    prompt: str
    model: str = "auto"
    """``auto`` (or an alias) is classified; a deployment's name pins the chain."""
    sensitive: bool = False
    """Only the ``local`` tier may answer (a secret in it, or the caller said so)."""
    override: EffectiveOverride = NO_OVERRIDE
    context: Sequence[str] = ()
    """The earlier user turns, oldest first: a short follow-up is classified with them."""
    session: SessionId | None = None


CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stopped, "
    "without repeating anything and without any preamble."
)


class Router:
    """Classify, escalate when unsure, choose the chain, and walk it for chat requests."""

    def __init__(
        self,
        config: RouterConfig,
        classifier: IntentClassifier,
        complete: Complete,
        open_stream: OpenStream | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions or InProcessSessions(
            config.sessions.max_sessions, config.sessions.ttl_s
        )
        self.classifier = classifier
        self._complete = complete
        self._open_stream = open_stream
        self._cache = EscalationCache()
        default_counter()  # cl100k_base loads with the router (0.3 s), not on its first request
        self.cooldowns = CooldownTracker(
            config.cooldown_failures,
            config.cooldown_s,
            max_retry_after_s=config.upstream.max_retry_after_s,
        )
        self.secrets = (
            SecretDetector(dict(config.sensitive.patterns))
            if config.sensitive.detect_secrets
            else None
        )
        self._regret_matrix = config.routing.regret_matrix()
        self.group_stats = GroupStats()
        self.usage = (
            MinuteUsage()
        )  # requests and tokens to each rate-limited deployment this minute
        self._limits = {
            n: (d.rpm, d.tpm)
            for n, d in config.deployments.items()
            if d.group is not None and (d.rpm or d.tpm)
        }
        self._rng = random.Random()
        self._group_of = {n: d.group for n, d in config.deployments.items() if d.group is not None}
        self._weights = {n: d.weight for n, d in config.deployments.items()}
        self.threshold = (
            config.confidence_threshold
            if config.confidence_threshold is not None
            else classifier.threshold
        )

    def secret_kinds(self, texts: Iterable[str]) -> list[str]:
        """The kinds of secret in any of ``texts`` (none when detection is off)."""
        return self.secrets.kinds(texts) if self.secrets is not None else []

    def redact(self, text: str) -> str:
        return self.secrets.redact(text) if self.secrets is not None else text

    async def route(
        self,
        prompt: str,
        requested_model: str = "auto",
        sensitive: bool = False,
        override: EffectiveOverride = NO_OVERRIDE,
        context: Sequence[str] = (),
        escalate: bool = True,
    ) -> RouteDecision:
        """Classify ``prompt`` (with the earlier user turns ``context``, oldest first, when it
        is a short follow-up: routing/conversation.py), escalate when unsure (unless not
        ``escalate``) and choose the chain: the most probable intent's (``argmax``) or the
        least expected regret's."""
        started = time.perf_counter()
        selection = select_turns([*context, prompt], self.config.conversation)
        prediction = self._classify(selection)
        classified = time.perf_counter()
        source: RouteSource = "model"
        intent, spent, error = prediction.intent, 0.0, None
        sensitive = sensitive or override.sensitive
        may_ask = escalate and requested_model in AUTO_MODELS and not sensitive
        text = _joined(selection)
        if self.config.routing.mode == "regret" and requested_model in AUTO_MODELS:
            routed_as, ask = self._regret_choice(text, prediction, sensitive, override)
            if ask and may_ask:
                intent, source, spent, error = await self._escalate(text, prediction.intent)
                routed_as = intent if source == "llm" else routed_as
        else:
            if may_ask and prediction.confidence < self.threshold:
                intent, source, spent, error = await self._escalate(text, prediction.intent)
            routed_as = intent
        escalated = time.perf_counter()
        choice = choose_chain(self.config, routed_as, requested_model, sensitive, override)
        first = self.config.deployments[choice.chain[0]]
        estimate = cost_usd(first, count_tokens(prompt), self.config.output_tokens[intent])
        return RouteDecision(
            intent=intent,
            confidence=prediction.confidence,
            probabilities=prediction.probabilities,
            source=source,
            chain=choice.chain,
            estimated_cost_usd=estimate + spent,
            escalation_cost_usd=spent,
            threshold=self.threshold,
            model_version=self.classifier.version,
            escalation_error=error,
            local_intent=prediction.intent,
            override_applied=override.applied,
            classify_ms=(classified - started) * 1000,
            escalate_ms=(escalated - classified) * 1000,
            routed_as=routed_as,
            turns_used=selection.turns,
            routing_mode=self.config.routing.mode,
        )

    def _classify(self, selection: TurnSelection) -> Prediction:
        """The latest turn's prediction, mixed with the earlier turns' when there are some."""
        if not selection.earlier:
            return self.classifier.predict(selection.latest)
        latest, earlier = self.classifier.predict_batch([selection.latest, selection.earlier])
        return mix_predictions(latest, earlier, self.config.conversation.latest_weight)

    def _regret_choice(
        self, text: str, prediction: Prediction, sensitive: bool, override: EffectiveOverride
    ) -> tuple[str, bool]:
        """The intent regret routing chooses, and whether asking the LLM classifier is worth it."""
        settings = self.config.routing
        costs = self._intent_costs(text, prediction.probabilities, sensitive, override)
        if prediction.intent not in costs:  # its chain is refused: let choose_chain say why
            return prediction.intent, False
        classifier = self.config.deployments[self.config.llm_classifier]
        asking = (
            cost_usd(classifier, _classifier_tokens(text), 10)
            + settings.escalation_latency_s * settings.latency_usd_per_s
        )
        choice = regret.choose(
            {i: p for i, p in prediction.probabilities.items() if i in costs},
            self._regret_matrix,
            costs,
            settings.weight,
            llm_accuracy=settings.llm_accuracy,
            escalation_cost_usd=asking,
        )
        return choice.routed_as, choice.escalate

    def _intent_costs(
        self,
        text: str,
        probabilities: dict[str, float],
        sensitive: bool,
        override: EffectiveOverride,
    ) -> dict[str, float]:
        """What the request would cost on each intent's chain (its first deployment, the
        expected answer length); intents whose chain is refused are left out."""
        tokens_in = count_tokens(text)
        tokens_out = round(sum(p * self.config.output_tokens[i] for i, p in probabilities.items()))
        costs = {}
        for intent in probabilities:
            try:
                chain = choose_chain(self.config, intent, "auto", sensitive, override).chain
            except InvalidRequestError:
                continue
            costs[intent] = cost_usd(self.config.deployments[chain[0]], tokens_in, tokens_out)
        return costs

    async def plan(self, turn: Turn) -> Plan:
        """Classify (for ``auto``) and choose the chain, the turn's session's when it sticks;
        calls no provider but the LLM classifier."""
        if turn.model in AUTO_MODELS:
            if turn.session is not None and self.config.sessions.enabled:
                return await self._session_plan(turn, turn.session)
            decision = await self._route(turn)
            return Plan(decision, decision.chain)
        chain = choose_chain(self.config, "general", turn.model, turn.sensitive, turn.override)
        return Plan(None, chain.chain)

    async def _session_plan(self, turn: Turn, session: SessionId) -> Plan:
        """The plan of a session's turn. A live session's turn does not ask the LLM classifier:
        only an upgrade could follow its answer, and an upgrade needs the local model sure."""
        state = None if session.opening else self._usable(await self.sessions.get(session.key))
        now = time.time()
        live = state is not None and now < state.expires_at
        decision = await self._route(turn, escalate=not live)
        choice = decide(
            state,
            Proposal(
                decision.intent,
                decision.confidence,
                decision.chain,
                _binding(state, turn.sensitive, turn.override, self.config),
            ),
            now,
            self.config.sessions,
            self._blocked,
        )
        chain = _prefer_first(choice.chain, choice.prefer)
        if chain != decision.chain:
            first = self.config.deployments[chain[0]]
            estimate = cost_usd(
                first, count_tokens(turn.prompt), self.config.output_tokens[decision.intent]
            )
            decision = replace(
                decision, chain=chain, estimated_cost_usd=estimate + decision.escalation_cost_usd
            )
        return Plan(decision, choice.chain, choice.prefer, SessionTurn(session, choice))

    async def route_turn(self, turn: Turn) -> tuple[RouteDecision, SessionReport | None]:
        """``route``, within the turn's session when there is one (for ``auto``, sessions on):
        the session is stored at once, since no answer will tell which deployment answered."""
        session = turn.session
        if turn.model not in AUTO_MODELS or session is None or not self.config.sessions.enabled:
            return await self._route(turn), None
        plan = await self._session_plan(turn, session)
        assert plan.decision is not None  # a session's plan always classifies
        return plan.decision, await self.remember(plan)

    async def _route(self, turn: Turn, escalate: bool = True) -> RouteDecision:
        return await self.route(
            turn.prompt, turn.model, turn.sensitive, turn.override, turn.context, escalate
        )

    def _usable(self, state: SessionState | None) -> SessionState | None:
        """``state`` unless it names a deployment this config does not have (a new config)."""
        if state is None or state.deployment not in self.config.deployments:
            return None
        return state if all(n in self.config.deployments for n in state.chain) else None

    def _blocked(self, deployment: str) -> str | None:
        return None if self.cooldowns.available(deployment) else "is cooling down"

    async def remember(self, plan: Plan, answered: str | None = None) -> SessionReport | None:
        """Store the plan's session as it stands once ``answered`` (a deployment; None: nothing
        was called, as for /v1/route) answered the turn, and say what the turn did."""
        if plan.session is None:
            return None
        choice = plan.session.choice
        state, outcome, reason = settle(choice, answered or choice.state.deployment)
        await self.sessions.put(plan.session.id.key, state)
        return SessionReport(plan.session.id.key, outcome, reason)

    def walk_order(self, plan: Plan) -> tuple[str, ...]:
        """The deployments a plan tries, in order: its chain with model groups expanded, and
        the deployment its session prefers first."""
        chain = self.expand_groups(plan.chain)
        return _prefer_first(chain, plan.prefer) if plan.prefer in chain else chain

    async def chat(
        self,
        request: dict[str, Any],
        prompt: str,
        model: str = "auto",
        sensitive: bool = False,
        plan: Plan | None = None,
    ) -> ChatOutcome:
        """Answer an OpenAI chat request through the chain, falling back on retryable errors."""
        plan = plan or await self.plan(Turn(prompt, model, sensitive))
        decision, chain = plan.decision, self.walk_order(plan)
        result = await walk_chain(
            chain,
            self.config.deployments,
            self._counted(
                lambda deployment, timeout: self._complete(deployment, request, timeout),
                _request_tokens(request, prompt),
            ),
            self.cooldowns,
            self.config.request_deadline_s,
            prompt_tokens=_request_tokens(request, prompt),
        )
        cost = _usage_cost(self.config.deployments[result.deployment], result.value)
        if decision is not None:
            cost += decision.escalation_cost_usd
        return ChatOutcome(
            result.value, decision, result, cost, await self.remember(plan, result.deployment)
        )

    async def chat_stream(
        self,
        request: dict[str, Any],
        prompt: str,
        model: str = "auto",
        sensitive: bool = False,
        plan: Plan | None = None,
    ) -> StreamOutcome:
        """Open a stream along the chain. Falling back is allowed until the first line arrives:
        the result holds that line and the rest of the stream of the deployment that sent it."""
        plan = plan or await self.plan(Turn(prompt, model, sensitive))
        decision, chain = plan.decision, self.walk_order(plan)
        result = await self._walk_stream(chain, request, prompt)
        return StreamOutcome(decision, result, await self.remember(plan, result.deployment))

    async def resume_stream(
        self,
        request: dict[str, Any],
        prompt: str,
        plan: Plan,
        partial: str,
        tried: Collection[str],
    ) -> ChainResult[tuple[bytes, AsyncIterator[bytes]]]:
        """Continue a stream that broke after ``partial`` was sent: the chain's deployments not
        ``tried`` yet, in order (cooling down or keyless ones skipped), get the request with the
        partial answer as an assistant message and an instruction to go on from there."""
        chain = tuple(name for name in self.expand_groups(plan.chain) if name not in tried)
        messages = [
            *request.get("messages", []),
            {"role": "assistant", "content": partial},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ]
        continuation = {**request, "messages": messages}
        return await self._walk_stream(chain, continuation, prompt + partial)

    async def _walk_stream(
        self, chain: Sequence[str], request: dict[str, Any], prompt: str
    ) -> ChainResult[tuple[bytes, AsyncIterator[bytes]]]:
        if self._open_stream is None:
            raise RuntimeError("this Router was built without a streaming client")
        open_stream = self._open_stream

        async def first_line(
            deployment: Deployment, timeout: float
        ) -> tuple[bytes, AsyncIterator[bytes]]:
            lines = open_stream(deployment, {**request, "stream": True}, timeout)
            try:
                return await lines.__anext__(), lines
            except StopAsyncIteration as exc:
                raise ProviderError(
                    "upstream sent an empty stream", kind="malformed_response"
                ) from exc

        tokens = _request_tokens(request, prompt)
        return await walk_chain(
            chain,
            self.config.deployments,
            self._counted(first_line, tokens),
            self.cooldowns,
            self.config.request_deadline_s,
            tokens,
        )

    def expand_groups(self, chain: Sequence[str]) -> tuple[str, ...]:
        """``chain`` with each model group's members in this request's order (its strategy's;
        members cooling down last, so the walk skips them)."""
        if not self._group_of:
            return tuple(chain)

        def order(group: str) -> tuple[str, ...]:
            spec = self.config.groups[group]
            members = self.group_stats.members(
                spec.members, self._weights, self.cooldowns.available, self.headroom
            )
            return order_members(members, spec.strategy, self._rng)

        return expand_chain(chain, self._group_of, order)

    def headroom(self, name: str) -> float | None:
        """The share of ``name``'s rpm/tpm left this minute (every worker's, with Redis); None
        when it has no limit."""
        limits = self._limits.get(name)
        return None if limits is None else headroom(*self.usage.used(name), *limits)

    def count_answer(self, name: str, usage: Any, estimate: int) -> None:
        """An answer's tokens beyond the ``estimate`` of its input counted when it was sent, in
        ``name``'s usage this minute (headroom); a stream calls it with its usage chunk."""
        if name in self._limits and isinstance(usage, dict):
            prompt, completion = usage_tokens(usage)
            self.usage.add(name, tokens=prompt + completion - estimate)

    def _counted(
        self, call: Callable[[Deployment, float], Awaitable[T]], tokens: int
    ) -> Callable[[Deployment, float], Awaitable[T]]:
        """``call`` counted in the group statistics: in flight while it runs (for a stream,
        until its first line), and its latency when it answers; for a rate-limited deployment,
        a request and ``tokens`` (estimated input) in this minute's usage, plus the answer's
        tokens beyond the estimate when it reports usage."""
        if not self._group_of:
            return call
        stats, usage, limited = self.group_stats, self.usage, self._limits

        async def counted(deployment: Deployment, timeout: float) -> T:
            name = deployment.name
            stats.started(name)
            if name in limited:
                usage.add(name, requests=1, tokens=tokens)
            began = time.monotonic()
            latency: float | None = None
            try:
                value = await call(deployment, timeout)
                latency = (time.monotonic() - began) * 1000
                if isinstance(value, dict):
                    self.count_answer(name, value.get("usage"), tokens)
                return value
            finally:
                stats.finished(name, latency)

        return counted

    def request_tokens(self, request: dict[str, Any], prompt: str) -> int:
        """The tokens a chat request sends (its whole conversation, estimated)."""
        return _request_tokens(request, prompt)

    def estimate_cost(
        self, chain: Iterable[str], request: dict[str, Any], prompt: str, intent: str | None
    ) -> float:
        """What a chat request may cost at most along ``chain``: its whole conversation in, and
        its ``max_tokens`` (else the intent's assumed answer length) out, at the dearest
        deployment of the chain (a fallback may answer). Budgets hold this until the answer's
        real usage is known."""
        tokens_in = _request_tokens(request, prompt)
        tokens_out = _max_tokens(request) or self.config.output_tokens[intent or "general"]
        return max(
            (cost_usd(self.config.deployments[n], tokens_in, tokens_out) for n in chain),
            default=0.0,
        )

    def downgraded(
        self, plan: Plan, sensitive: bool = False, override: EffectiveOverride = NO_OVERRIDE
    ) -> Plan | None:
        """The plan on the config's downgrade tier (``governance.downgrade_tier``); None when
        that tier has no allowed deployment."""
        chain = downgrade_chain(
            self.config, self.config.governance.downgrade_tier, sensitive, override
        )
        if not chain:
            return None
        session = plan.session
        if session is not None:  # a turn of its own: the session keeps its chain
            session = replace(
                session,
                choice=replace(
                    session.choice,
                    chain=chain,
                    prefer=None,
                    outcome="switched",
                    reason="over budget: downgraded, this turn only",
                    sticks=False,
                ),
            )
        return Plan(plan.decision, chain, None, session)

    async def _escalate(
        self, prompt: str, local_intent: str
    ) -> tuple[str, RouteSource, float, str | None]:
        cached = self._cache.get(prompt)
        if cached is not None:
            return cached, "llm", 0.0, None
        deployment = self.config.deployments[self.config.llm_classifier]
        request = {"messages": build_messages(prompt), "temperature": 0, "max_tokens": 20}
        timeout = self.config.llm_classifier_timeout_s
        try:
            response = await asyncio.wait_for(self._complete(deployment, request, timeout), timeout)
        except (TimeoutError, ProviderError) as exc:
            return local_intent, "default", 0.0, f"llm classifier failed: {type(exc).__name__}"
        except ProviderClientBug as exc:  # the local prediction stands, but the bug is told
            log.error("llm classifier: %s", exc)
            return (
                local_intent,
                "default",
                0.0,
                f"llm classifier failed: ProviderClientBug: {exc.bug}",
            )
        spent = _usage_cost(deployment, response)
        label = parse_label(_answer_text(response))
        if label is None:
            return local_intent, "default", spent, "llm classifier answer was not one label"
        self._cache.put(prompt, label)
        return label, "llm", spent, None


def _prefer_first(chain: tuple[str, ...], prefer: str | None) -> tuple[str, ...]:
    return chain if prefer is None else (prefer, *(n for n in chain if n != prefer))


def _binding(
    state: SessionState | None, sensitive: bool, override: EffectiveOverride, config: RouterConfig
) -> str | None:
    """Why a turn must take its own chain whatever its session's: local tier only, a pin, or
    an override forbidding part of the session's chain."""
    if sensitive or override.sensitive:
        return "sensitive: local tier only"
    if override.pin is not None:
        return f"pinned to {override.pin}"
    if (
        state is not None
        and override.applied
        and any(
            override.forbids(n, config.deployments[n].provider)
            for n in (*state.chain, state.deployment)
        )
    ):
        return f"the session's chain is forbidden by {', '.join(override.applied)}"
    return None


def _joined(selection: TurnSelection) -> str:
    """The selected turns as one text, for the LLM classifier (and its cache)."""
    return f"{selection.earlier}\n{selection.latest}" if selection.earlier else selection.latest


def _classifier_tokens(text: str) -> int:
    """Input tokens of the LLM-classifier request built around ``text``."""
    return sum(count_tokens(m["content"]) for m in build_messages(text))


def _request_tokens(request: dict[str, Any], prompt: str) -> int:
    """The context a request needs: its whole conversation, at least the classified prompt."""
    messages = request.get("messages")
    whole = count_message_tokens(messages) if isinstance(messages, list) else 0
    return max(whole, count_tokens(prompt))


def _max_tokens(request: dict[str, Any]) -> int | None:
    """The answer length the client capped, if it did (``max_completion_tokens`` or ``max_tokens``)."""
    for field in ("max_completion_tokens", "max_tokens"):
        value = request.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _answer_text(response: dict[str, Any]) -> str | None:
    try:
        return str(response["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        return None


def usage_cost(deployment: Deployment, usage: Any) -> float:
    """USD for an OpenAI ``usage`` object at the deployment's prices; a count that is not a
    valid token count (an upstream's "many", -500, NaN) counts as 0: never a negative cost."""
    uncached, cached, cache_write, completion_tokens = usage_input_split(usage)
    return max(
        0.0,
        cached_cost_usd(deployment, InputTokens(uncached, cached, cache_write), completion_tokens),
    )


def _usage_cost(deployment: Deployment, response: dict[str, Any]) -> float:
    usage = response.get("usage")
    return usage_cost(deployment, usage if isinstance(usage, dict) else None)
