"""A chat stream relayed to the client as server-sent events: after its first chunk there is no
falling back, so a broken upstream is continued by the next deployment of the chain (``router.
stream_resume``) or ends with an error event; when it ends, however it ends, it is counted,
recorded and its budget hold settled."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
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
from intent_router.router import Plan, StreamOutcome, usage_cost
from intent_router.service.errors import log_client_bug
from intent_router.service.recording import RequestContext
from intent_router.service.services import Services
from intent_router.service.sessions import note, session_headers
from intent_router.text import clean_text

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
    note(ctx, outcome.session)  # before the stream's decision row is built
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
    router, metrics, recorder = services.router, services.metrics, services.recorder
    resume = router.config.stream_resume
    result = outcome.result
    first, rest = result.value
    last, cost, usage, error = first, outcome.escalation_cost_usd, None, None
    counted = 0.0  # of ``cost``, in the cost metric already (a resumed stream's first part)
    name, attempts, lines = result.deployment, result.attempts, rest
    current = router.config.deployments[name]
    sent = StreamTranscript(first) if resume else None
    async with exits:  # settles the budget hold once the stream is over
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
                    yield error_event(error, "server_error")
                    return
                except Exception as exc:  # never a bare cut: the client learns the stream failed
                    logger.error(
                        "request %s: stream from %s failed: %s",
                        ctx.request_id,
                        name,
                        type(exc).__name__,
                    )
                    error = f"upstream stream failed: {type(exc).__name__}"
                else:
                    if last.strip() == b"data: [DONE]":
                        return
                    error = "upstream stream ended before [DONE]"
                if sent is None or not sent.resumable():
                    yield error_event(error)
                    return
                broken = replace(
                    attempts[-1], outcome="failed", error=clean_text(f"stream broke: {error}", 300)
                )
                attempts = (*attempts[:-1], broken)
                tried = {a.deployment for a in attempts if a.outcome in ("ok", "failed")}
                try:
                    resumed = await router.resume_stream(body, ctx.prompt, plan, sent.text, tried)
                except (
                    RouterError
                ) as exc:  # none could continue: the error event, as without resume
                    attempts += exc.attempts if isinstance(exc, AllProvidersFailed) else ()
                    yield error_event(error)
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
                await router.remember(plan, name)  # the session sticks to the one that finished it
                last = line
                usage = chunk_usage(line) or usage
                yield sent.pass_on(line) + b"\n\n"
        finally:
            await _close(lines)  # an upstream left mid-stream (the client went away) is closed now
            cost += usage_cost(current, usage) if usage else 0.0
            # Without a usage chunk the held estimate is charged: it bounds the real cost.
            budget.spent_usd = cost if usage else max(cost, budget.estimate_usd)
            metrics.cost.labels(name).inc(cost - counted)
            metrics.record_input_tokens(name, usage)
            metrics.record_latency("chat_stream", 200, ctx.elapsed_ms() / 1000)
            recorder.stream(
                ctx,
                plan,
                name,
                attempts,
                usage,
                cost,
                error or (None if last.strip() == b"data: [DONE]" else "client went away"),
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
