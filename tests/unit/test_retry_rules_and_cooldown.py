import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import load_config
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.retry_rules import (
    Failure,
    FailureKind,
    Verdict,
    failure_from_status,
    verdict,
)

DEPLOYMENTS = load_config().deployments
ANTHROPIC = DEPLOYMENTS["claude-sonnet-4"]
OPENAI = DEPLOYMENTS["gpt-4o"]
OLLAMA = DEPLOYMENTS["qwen-32b-local"]


def test_529_from_anthropic_moves_to_the_next_deployment() -> None:
    assert verdict(failure_from_status(529), ANTHROPIC) is Verdict.NEXT_DEPLOYMENT


def test_529_is_not_retryable_where_the_provider_does_not_list_it() -> None:
    assert verdict(failure_from_status(529), OPENAI) is Verdict.RETURN_TO_CALLER


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_returned_as_they_are(status: int) -> None:
    assert verdict(failure_from_status(status, "bad request"), OPENAI) is Verdict.RETURN_TO_CALLER


def test_context_window_errors_look_for_a_larger_window() -> None:
    failure = failure_from_status(400, "This model's maximum context length is 128000 tokens")
    assert failure.kind is FailureKind.CONTEXT_WINDOW
    assert verdict(failure, OPENAI) is Verdict.NEXT_WITH_LARGER_CONTEXT


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory",
        "model requires more system memory (21.5 GiB) than is available (15.2 GiB)",
        "llama runner process has terminated: cudaMalloc failed: out of memory",
    ],
)
def test_ollama_out_of_memory_is_retryable(message: str) -> None:
    assert verdict(failure_from_status(500, message), OLLAMA) is Verdict.NEXT_DEPLOYMENT


def test_a_plain_500_from_ollama_is_not_retryable() -> None:
    assert verdict(failure_from_status(500, "boom"), OLLAMA) is Verdict.RETURN_TO_CALLER
    assert verdict(Failure(FailureKind.TIMEOUT), OLLAMA) is Verdict.NEXT_DEPLOYMENT


@given(st.integers(500, 599).filter(lambda s: s != 529))
def test_every_5xx_is_retryable_for_openai(status: int) -> None:
    assert verdict(failure_from_status(status), OPENAI) is Verdict.NEXT_DEPLOYMENT


def test_429_keeps_its_retry_after() -> None:
    assert failure_from_status(429, retry_after_s=7.0).retry_after_s == 7.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_puts_a_deployment_in_cooldown_for_that_long() -> None:
    clock = FakeClock()
    tracker = CooldownTracker(failures_to_trip=3, cooldown_s=30, clock=clock)
    tracker.record_failure("kimi", retry_after_s=5)
    assert not tracker.available("kimi") and tracker.available("gpt")
    clock.now += 4.9
    assert not tracker.available("kimi")
    clock.now += 0.2
    assert tracker.available("kimi")


def test_repeated_failures_trip_a_cooldown_and_success_resets_the_count() -> None:
    clock = FakeClock()
    tracker = CooldownTracker(failures_to_trip=3, cooldown_s=30, clock=clock)
    tracker.record_failure("kimi")
    tracker.record_failure("kimi")
    tracker.record_success("kimi")
    tracker.record_failure("kimi")
    assert tracker.available("kimi")  # the count restarted after the success
    tracker.record_failure("kimi")
    tracker.record_failure("kimi")
    assert not tracker.available("kimi")
    assert tracker.remaining_s("kimi") == pytest.approx(30)
    clock.now += 30
    assert tracker.available("kimi")


@given(st.lists(st.one_of(st.none(), st.floats(0, 100)), max_size=20))
def test_cooldown_never_ends_before_the_longest_retry_after(retry_afters: list) -> None:
    clock = FakeClock()
    tracker = CooldownTracker(failures_to_trip=1000, cooldown_s=30, clock=clock)
    for value in retry_afters:
        tracker.record_failure("d", retry_after_s=value)
    longest = max([v for v in retry_afters if v], default=0.0)
    assert tracker.remaining_s("d") == pytest.approx(longest)
