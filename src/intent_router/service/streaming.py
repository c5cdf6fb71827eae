"""A chat stream relayed to the client as server-sent events: after its first chunk there is no
falling back, so a broken upstream is continued by the next deployment of the chain (``router.
stream_resume``) or ends with an error event; when it ends, however it ends, it is counted,
recorded and its budget hold settled."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from litestar.response import Stream

from intent_router.exceptions import (
    AllProvidersFailed,
    ProviderClientBug,
    ProviderError,
    RouterError,
)
from intent_router.providers.upstream_validation import chunk_usage
from intent_router.router import usage_cost
from intent_router.service.errors import log_client_bug
from intent_router.service.recording import RequestContext
from intent_router.service.services import Services
from intent_router.service.sessions import note, session_headers
from intent_router.text import clean_text
from intent_router.types import Plan, StreamOutcome

if TYPE_CHECKING:
    from intent_router.service.chat_flow import HeldBudget

logger = logging.getLogger(__name__)


def stream_response(
    ctx: RequestContext,
    plan: Plan,
    outcome: StreamOutcome,
    body: dict[str, Any],
    services: Services,
    budget: HeldBudget,
    exits: AsyncExitStack,
) -> Stream:
    """The opened stream as the client's response. It takes over what ``exits`` holds (the budget
    hold) and closes it when the stream ends."""
    result = outcome.result
    services.metrics.record_route(
        "chat_stream", outcome.intent, outcome.decision.source if outcome.decision else "requested"
    )
    services.metrics.record_attempts(result.attempts)
    headers = {
        "x-request-id": ctx.request_id,
        "x-intent-router-intent": outcome.intent or "-",
        "x-intent-router-deployment": result.deployment,
        "x-intent-router-attempts": str(len(result.attempts)),
        "cache-control": "no-cache",
    }
    if budget.downgraded:
        headers["x-intent-router-budget"] = "downgraded"
    note(ctx, outcome.session, services.metrics)  # before the stream's decision row is built
    headers.update(session_headers(outcome.session))
    events = _events(ctx, plan, outcome, body, services, budget, exits.pop_all())
    return Stream(events, media_type="text/event-stream", headers=headers)


async def _events(
    ctx: RequestContext,
    plan: Plan,
    outcome: StreamOutcome,
    body: dict[str, Any],
    services: Services,
    budget: HeldBudget,
    exits: AsyncExitStack,
) -> AsyncIterator[bytes]:
    relay = _Relay(ctx, plan, outcome, body, services)
    async with exits:  # settles the budget hold once the stream is over
        try:
            async with aclosing(relay.events()) as events:
                async for event in events:
                    yield event
        finally:
            await relay.finish(budget)


class _Relay:
    """One chat stream on its way to the client: the upstream sending it now, what it has cost
    and used so far, its attempts, and how it ended."""

    def __init__(
        self,
        ctx: RequestContext,
        plan: Plan,
        outcome: StreamOutcome,
        body: dict[str, Any],
        services: Services,
    ) -> None:
        self.ctx, self.plan, self.body, self.services = ctx, plan, body, services
        result = outcome.result
        first, self.lines = result.value
        self.first = self.last = first
        self.name, self.attempts = result.deployment, result.attempts
        self.current = services.router.config.deployments[self.name]
        self.cost = outcome.escalation_cost_usd
        # Of ``cost``, what the cost metric has already (a resumed stream's first part).
        self.counted = 0.0
        self.usage: dict[str, Any] | None = None
        self.error: str | None = None  # why the current upstream ended; None: [DONE], or not yet
        self.client_bug = False  # it ended in our provider client's bug: never resumed
        resume = services.router.config.stream_resume
        self.sent = StreamTranscript(first) if resume else None

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The SSE events: the upstream's lines, continued by the next deployment when it breaks
        (``router.stream_resume``), else ended with an error event."""
        yield self.first + b"\n\n"  # the transcript has it already
        self.usage = chunk_usage(self.first)
        while True:
            async with aclosing(self._upstream()) as lines:
                async for event in lines:
                    yield event
            if self.error is None:
                return
            if self.client_bug:
                yield error_event(self.error, "server_error")
                return
            if self.sent is None or not self.sent.resumable():
                yield error_event(self.error)
                return
            line = await self._resume(self.sent)
            if line is None:  # none could continue: the error event, as without resume
                yield error_event(self.error)
                return
            yield self._noted(line)

    async def _upstream(self) -> AsyncGenerator[bytes, None]:
        """The current upstream's lines, until it ends; ``error`` says why it ended, None for
        ``[DONE]``."""
        try:
            async for line in self.lines:
                yield self._noted(line)
        except ProviderError as exc:
            # After the first chunk there is no falling back: resume, or an error event.
            self.error = f"upstream stream failed: {exc}"
        except ProviderClientBug as exc:
            log_client_bug(self.ctx.request_id, exc)
            self.error, self.client_bug = str(exc), True
        except Exception as exc:  # never a bare cut: the client learns the stream failed
            logger.error(
                "request %s: stream from %s failed: %s",
                self.ctx.request_id,
                self.name,
                type(exc).__name__,
            )
            self.error = f"upstream stream failed: {type(exc).__name__}"
        else:
            done = self.last.strip() == b"data: [DONE]"
            self.error = None if done else "upstream stream ended before [DONE]"

    def _noted(self, line: bytes) -> bytes:
        """``line`` as the client gets it, its usage noted."""
        self.last = line
        self.usage = chunk_usage(line) or self.usage
        return (self.sent.pass_on(line) if self.sent is not None else line) + b"\n\n"

    async def _resume(self, sent: StreamTranscript) -> bytes | None:
        """The first line of the chain's next deployment continuing what was sent, or None when
        none could."""
        router, metrics = self.services.router, self.services.metrics
        broken = replace(
            self.attempts[-1],
            outcome="failed",
            error=clean_text(f"stream broke: {self.error}", 300),
        )
        self.attempts = (*self.attempts[:-1], broken)
        tried = {a.deployment for a in self.attempts if a.outcome in ("ok", "failed")}
        try:
            resumed = await router.resume_stream(
                self.body, self.ctx.prompt, self.plan, sent.text, tried
            )
        except RouterError as exc:
            self.attempts += exc.attempts if isinstance(exc, AllProvidersFailed) else ()
            return None
        await _close(self.lines)
        self.cost += usage_cost(self.current, self.usage) if self.usage else 0.0
        metrics.cost.labels(self.name).inc(self.cost - self.counted)
        self.counted = self.cost
        metrics.record_input_tokens(self.name, self.usage)
        metrics.record_attempts(resumed.attempts)
        self.attempts += resumed.attempts
        self.name, (line, self.lines) = resumed.deployment, resumed.value
        self.usage, self.error = None, None
        sent.resumed = True
        self.current = router.config.deployments[self.name]
        # The session sticks to the deployment that finished the stream.
        await router.remember(self.plan, self.name)
        return line

    async def finish(self, budget: HeldBudget) -> None:
        """However the stream ended: the upstream closed, the cost counted and charged, the
        decision recorded."""
        await _close(self.lines)  # an upstream left mid-stream (the client went away) is closed now
        metrics, usage = self.services.metrics, self.usage
        self.cost += usage_cost(self.current, usage) if usage else 0.0
        # Without a usage chunk the held estimate is charged: it bounds the real cost.
        budget.spent_usd = self.cost if usage else max(self.cost, budget.estimate_usd)
        metrics.cost.labels(self.name).inc(self.cost - self.counted)
        metrics.record_input_tokens(self.name, usage)
        router = self.services.router  # headroom groups count the answer against the member
        router.count_answer(self.name, usage, router.request_tokens(self.body, self.ctx.prompt))
        metrics.record_latency("chat_stream", 200, self.ctx.elapsed_ms() / 1000)
        ended = None if self.last.strip() == b"data: [DONE]" else "client went away"
        self.services.recorder.stream(
            self.ctx, self.plan, self.name, self.attempts, usage, self.cost, self.error or ended
        )


async def _close(lines: AsyncIterator[bytes]) -> None:
    aclose = getattr(lines, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # closing a broken upstream may fail too; the answer is given
            logger.debug("closing an upstream stream failed: %s", type(exc).__name__)


class StreamTranscript:
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


def error_event(message: str, kind: str = "provider_error") -> bytes:
    """The SSE event that ends a stream which failed after it began, in OpenAI's error format."""
    code = "internal_error" if kind == "server_error" else "upstream_stream_failed"
    error = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    return b"data: " + json.dumps(error).encode() + b"\n\n"
