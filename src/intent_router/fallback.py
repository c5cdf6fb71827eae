"""Walk a chain of deployments under one deadline: retry rules, cooldowns, context windows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from intent_router.config import Deployment
from intent_router.exceptions import (
    AllProvidersFailed,
    FatalProviderError,
    MissingKeyError,
    ProviderError,
)
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.retry_rules import (
    Failure,
    FailureKind,
    Verdict,
    failure_from_error,
    verdict,
)
from intent_router.text import clean_text
from intent_router.types import Attempt, AttemptOutcome, ChainResult

T = TypeVar("T")


Call = Callable[[Deployment, float], Awaitable[T]]


async def walk_chain(
    chain: Sequence[str],
    deployments: Mapping[str, Deployment],
    call: Call[T],
    cooldowns: CooldownTracker,
    deadline_s: float,
    prompt_tokens: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> ChainResult[T]:
    """Try ``call`` on each deployment in turn until one answers.

    Raises FatalProviderError for upstream answers that go back to the caller as they are, and
    AllProvidersFailed (with every attempt) when the chain or the deadline runs out, or a
    failure with no answer to return (no HTTP status) is not retryable there.
    """
    start = clock()
    attempts: list[Attempt] = []
    min_context = prompt_tokens
    deadline_spent = False
    for name in chain:
        deployment = deployments[name]
        remaining = 0.0 if deadline_spent else deadline_s - (clock() - start)
        skip = _skip_reason(deployment, cooldowns, min_context, remaining)
        if skip:
            attempts.append(Attempt(name, skip))
            continue
        began = clock()
        budget_s = min(deployment.timeout_s, remaining)
        try:
            value = await asyncio.wait_for(call(deployment, budget_s), timeout=budget_s)
        except MissingKeyError as exc:  # not the provider's fault: no cooldown, next one
            attempts.append(Attempt(name, "skipped_no_key", error=str(exc)))
            continue
        except (TimeoutError, ProviderError) as exc:
            failure = _failure(exc)
            # An attempt the deadline cut short spent the deadline, even when its timer fired a
            # little early by this clock (an event loop's timers may: libuv's run on the time
            # cached at the start of a loop iteration): the next deployment is not given the
            # few milliseconds left, in which it could not answer.
            if failure.kind is FailureKind.TIMEOUT and remaining < deployment.timeout_s:
                deadline_spent = True
            latency = (clock() - began) * 1000
            attempts.append(
                Attempt(name, "failed", failure.status, _describe(exc, failure), latency)
            )
            decision = verdict(failure, deployment)
            if decision is Verdict.RETURN_TO_CALLER and failure.status is None:
                # Not retried here (a reset or a timeout outside ``retry_on``), but there is no
                # upstream answer to hand back either: the walk ends, every attempt told (503).
                raise AllProvidersFailed(tuple(attempts)) from exc
            if decision is Verdict.RETURN_TO_CALLER:
                raise FatalProviderError(clean_text(str(exc)) or "", status=failure.status) from exc
            if decision is Verdict.NEXT_WITH_LARGER_CONTEXT:
                min_context = max(min_context, deployment.context_window + 1)
            else:
                cooldowns.record_failure(name, failure.retry_after_s)
            continue
        cooldowns.record_success(name)
        attempts.append(Attempt(name, "ok", latency_ms=(clock() - began) * 1000))
        return ChainResult(value, name, tuple(attempts))
    raise AllProvidersFailed(
        tuple(attempts), deadline_exceeded=deadline_spent or clock() - start >= deadline_s
    )


def _skip_reason(
    deployment: Deployment, cooldowns: CooldownTracker, min_context: int, remaining: float
) -> AttemptOutcome | None:
    if remaining <= 0:
        return "skipped_deadline"
    if not cooldowns.available(deployment.name):
        return "skipped_cooldown"
    if deployment.context_window < min_context:
        return "skipped_context"
    return None


def _failure(exc: Exception) -> Failure:
    if isinstance(exc, ProviderError):
        return failure_from_error(exc)
    return Failure(FailureKind.TIMEOUT)


def _describe(exc: Exception, failure: Failure) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    # A provider's text (litellm's message of an upstream's error) may hold a lone surrogate
    # or NUL: the attempt is sent to the client as JSON and stored, so it is cleaned here.
    return clean_text(f"{failure.kind.value}: {exc}", 300) or ""
