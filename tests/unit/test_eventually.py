import itertools

import pytest

from tests.eventually import eventually, eventually_async


def test_returns_the_first_value_the_condition_accepts() -> None:
    counter = itertools.count()
    assert eventually(lambda: next(counter), lambda n: n >= 3, interval_s=0) == 3


def test_a_timeout_reports_what_was_awaited_and_the_last_value_seen() -> None:
    counter = itertools.count()
    with pytest.raises(
        AssertionError, match=r"rows landed did not hold within 0.05 s; last value: \d+"
    ):
        eventually(
            lambda: next(counter),
            lambda n: n < 0,
            timeout_s=0.05,
            interval_s=0.01,
            what="rows landed",
        )


def test_tolerated_errors_are_not_yet_and_the_last_one_is_reported() -> None:
    def refused() -> bool:
        raise ConnectionError("port closed")

    with pytest.raises(AssertionError, match="last error: ConnectionError: port closed"):
        eventually(refused, timeout_s=0.05, interval_s=0.01, ignoring=(ConnectionError,))


def test_other_errors_end_the_wait_at_once() -> None:
    calls = itertools.count()

    def exited() -> bool:
        next(calls)
        raise RuntimeError("child exited")

    with pytest.raises(RuntimeError, match="child exited"):
        eventually(exited, timeout_s=5, ignoring=(ConnectionError,))
    assert next(calls) == 1


async def test_the_async_form_polls_a_coroutine_on_the_loop() -> None:
    counter = itertools.count()

    async def probe() -> int:
        return next(counter)

    assert await eventually_async(probe, lambda n: n == 2, interval_s=0) == 2
    with pytest.raises(AssertionError, match="last value: "):
        await eventually_async(probe, lambda n: n < 0, timeout_s=0.05, interval_s=0.01)
