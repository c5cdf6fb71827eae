"""The chain walk with a scripted in-process provider (no sockets, no patching)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from intent_router.config import Deployment, load_config
from intent_router.exceptions import (
    AllProvidersFailed,
    FatalProviderError,
    MissingKeyError,
    ProviderClientBug,
    ProviderError,
)
from intent_router.fallback import walk_chain
from intent_router.routing.cooldown import CooldownTracker
from tests.loop_lag import LoopLag

CONFIG = load_config()
DEPLOYMENTS = {n: replace(d, timeout_s=1.0) for n, d in CONFIG.deployments.items()}
CHAIN = ("claude-sonnet-4", "gpt-4o", "kimi-k2.6")


class ScriptedProvider:
    """Answers per deployment from a script: an exception to raise, a delay, or a value."""

    def __init__(self, script: dict[str, list[object]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[str] = []

    async def __call__(self, deployment: Deployment, timeout_s: float) -> str:
        self.calls.append(deployment.name)
        step = (
            self.script.get(deployment.name, []).pop(0)
            if self.script.get(deployment.name)
            else "ok"
        )
        if isinstance(step, Exception):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
        return f"answer from {deployment.name}"


def _tracker() -> CooldownTracker:
    return CooldownTracker(failures_to_trip=3, cooldown_s=30)


async def test_529_from_anthropic_falls_back_to_openai() -> None:
    provider = ScriptedProvider({"claude-sonnet-4": [ProviderError("overloaded", status=529)]})
    result = await walk_chain(CHAIN, DEPLOYMENTS, provider, _tracker(), deadline_s=5)
    assert result.deployment == "gpt-4o" and result.value == "answer from gpt-4o"
    assert [(a.deployment, a.outcome, a.status) for a in result.attempts] == [
        ("claude-sonnet-4", "failed", 529),
        ("gpt-4o", "ok", None),
    ]


async def test_a_provider_client_bug_is_neither_retried_elsewhere_nor_cooled_down() -> None:
    tracker = _tracker()
    bug = ProviderClientBug("claude-sonnet-4", "ModuleNotFoundError (module 'mcp')")
    provider = ScriptedProvider({"claude-sonnet-4": [bug] * 3})
    for _ in range(3):  # three "failures" would trip a cooldown if they counted
        with pytest.raises(ProviderClientBug):
            await walk_chain(CHAIN, DEPLOYMENTS, provider, tracker, deadline_s=5)
    assert provider.calls == ["claude-sonnet-4"] * 3
    assert tracker.available("claude-sonnet-4")


async def test_retry_after_cools_a_deployment_down_for_later_requests() -> None:
    tracker = _tracker()
    provider = ScriptedProvider(
        {"claude-sonnet-4": [ProviderError("slow", status=429, retry_after_s=60)]}
    )
    await walk_chain(CHAIN, DEPLOYMENTS, provider, tracker, deadline_s=5)
    second = await walk_chain(CHAIN, DEPLOYMENTS, provider, tracker, deadline_s=5)
    assert second.attempts[0].outcome == "skipped_cooldown"
    assert provider.calls == ["claude-sonnet-4", "gpt-4o", "gpt-4o"]


async def test_client_errors_return_at_once() -> None:
    provider = ScriptedProvider({"claude-sonnet-4": [ProviderError("bad key", status=401)]})
    with pytest.raises(FatalProviderError) as info:
        await walk_chain(CHAIN, DEPLOYMENTS, provider, _tracker(), deadline_s=5)
    assert info.value.status == 401 and provider.calls == ["claude-sonnet-4"]


async def test_context_window_errors_skip_to_a_larger_window() -> None:
    chain = ("gpt-4o", "qwen-32b-local", "claude-sonnet-4")  # 128k, 32k, 200k
    provider = ScriptedProvider(
        {"gpt-4o": [ProviderError("maximum context length exceeded", status=400)]}
    )
    result = await walk_chain(chain, DEPLOYMENTS, provider, _tracker(), deadline_s=5)
    assert [a.outcome for a in result.attempts] == ["failed", "skipped_context", "ok"]
    assert result.deployment == "claude-sonnet-4"


async def test_a_hang_past_the_timeout_moves_on() -> None:
    deployments = {
        **DEPLOYMENTS,
        "claude-sonnet-4": replace(DEPLOYMENTS["claude-sonnet-4"], timeout_s=0.1),
    }
    provider = ScriptedProvider({"claude-sonnet-4": [5.0]})
    result = await walk_chain(CHAIN, deployments, provider, _tracker(), deadline_s=5)
    assert result.attempts[0].error == "timeout" and result.deployment == "gpt-4o"


async def test_every_deployment_failing_lists_each_attempt() -> None:
    errors = {n: [ProviderError("down", status=503)] for n in CHAIN}
    with pytest.raises(AllProvidersFailed) as info:
        await walk_chain(CHAIN, DEPLOYMENTS, ScriptedProvider(errors), _tracker(), deadline_s=5)
    assert [(a.deployment, a.status) for a in info.value.attempts] == [(n, 503) for n in CHAIN]


async def test_the_deadline_bounds_the_whole_walk() -> None:
    provider = ScriptedProvider({n: [5.0] for n in CHAIN})
    async with LoopLag() as lag:
        start = time.monotonic()
        with pytest.raises(AllProvidersFailed) as info:
            await walk_chain(CHAIN, DEPLOYMENTS, provider, _tracker(), deadline_s=0.3)
        took = time.monotonic() - start
    # The deadline, plus however late this loop ran meanwhile (a loaded machine), no more.
    assert took < 0.3 + lag.worst_s + 0.3, (took, lag.worst_s)
    assert info.value.deadline_exceeded
    assert info.value.attempts[-1].outcome == "skipped_deadline"


async def test_an_attempt_the_deadline_cut_short_spends_it_even_if_its_timer_fired_early() -> None:
    """An event loop's timer may fire a few milliseconds before the deadline by the walk's
    clock (libuv's timers run on the time cached at the start of a loop iteration): the next
    deployment must not be called with the milliseconds left."""
    now = [0.0]

    async def timed_out_early(deployment: Deployment, timeout_s: float) -> str:
        provider.calls.append(deployment.name)
        now[0] += timeout_s - 0.004  # the attempt's timer fired 4 ms early by this clock
        raise ProviderError("timed out", kind="timeout")

    provider = ScriptedProvider({})
    with pytest.raises(AllProvidersFailed) as info:
        await walk_chain(
            CHAIN, DEPLOYMENTS, timed_out_early, _tracker(), deadline_s=0.5, clock=lambda: now[0]
        )
    assert provider.calls == ["claude-sonnet-4"]
    assert [a.outcome for a in info.value.attempts] == ["failed", *["skipped_deadline"] * 2]
    assert info.value.deadline_exceeded


async def test_a_timeout_within_the_deadline_moves_on_to_the_next_deployment() -> None:
    """A deployment's own timeout, shorter than what is left of the deadline, spends nothing
    but itself."""
    now = [0.0]

    async def first_times_out(deployment: Deployment, timeout_s: float) -> str:
        now[0] += timeout_s
        if deployment.name == "claude-sonnet-4":
            raise ProviderError("timed out", kind="timeout")
        return f"answer from {deployment.name}"

    result = await walk_chain(
        CHAIN, DEPLOYMENTS, first_times_out, _tracker(), deadline_s=5, clock=lambda: now[0]
    )
    assert result.deployment == "gpt-4o"


async def test_connection_resets_are_retryable() -> None:
    provider = ScriptedProvider({"claude-sonnet-4": [ProviderError("reset", kind="connection")]})
    result = await walk_chain(CHAIN, DEPLOYMENTS, provider, _tracker(), deadline_s=5)
    assert result.deployment == "gpt-4o"


async def test_a_deployment_without_its_key_is_skipped_without_a_cooldown() -> None:
    tracker = CooldownTracker(failures_to_trip=1, cooldown_s=30)
    provider = ScriptedProvider(
        {"claude-sonnet-4": [MissingKeyError("claude-sonnet-4", "ANTHROPIC_API_KEY")]}
    )
    result = await walk_chain(CHAIN, DEPLOYMENTS, provider, tracker, deadline_s=5)
    assert result.deployment == "gpt-4o"
    assert result.attempts[0].outcome == "skipped_no_key"
    assert "$ANTHROPIC_API_KEY" in (result.attempts[0].error or "")
    assert tracker.available("claude-sonnet-4")


async def test_a_failure_without_an_answer_that_is_not_retried_ends_the_walk_with_every_attempt() -> (
    None
):
    """The local tier retries only oom and timeout: a reset there is not retried, and with no
    upstream answer to hand back the caller gets every attempt (a 503), not a bare error."""
    provider = ScriptedProvider(
        {"qwen-32b-local": [ProviderError("connection error: reset", kind="connection")]}
    )
    with pytest.raises(AllProvidersFailed) as info:
        await walk_chain(
            ("qwen-32b-local", "kimi-k2.6"), DEPLOYMENTS, provider, _tracker(), deadline_s=5
        )
    assert [(a.deployment, a.outcome) for a in info.value.attempts] == [
        ("qwen-32b-local", "failed")
    ]
    assert provider.calls == ["qwen-32b-local"]


@pytest.mark.parametrize("kind", ["unreachable", "malformed_response"])
async def test_unreachable_and_malformed_move_on_even_where_retry_on_does_not_list_them(
    kind: str,
) -> None:
    provider = ScriptedProvider({"qwen-32b-local": [ProviderError("x", kind=kind)]})
    result = await walk_chain(
        ("qwen-32b-local", "kimi-k2.6"), DEPLOYMENTS, provider, _tracker(), deadline_s=5
    )
    assert result.deployment == "kimi-k2.6"
    assert result.attempts[0].error.startswith(f"{kind}: ")
