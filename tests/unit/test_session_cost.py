"""The session replay's cost model: what each turn reads from a deployment's prompt cache."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import Deployment
from intent_router.evaluation.session_cost import (
    MIN_CACHEABLE_TOKENS,
    prompt_sizes,
    session_cost,
    totals,
)


def _deployment(name: str, read: float | None = 0.3, write: float | None = 3.75) -> Deployment:
    return Deployment(
        name=name,
        model=f"anthropic/{name}",
        tier="primary",
        api_base=None,
        api_key_env=None,
        timeout_s=10,
        context_window=200_000,
        input_cost_per_mtok=3.0,
        output_cost_per_mtok=15.0,
        retry_on=frozenset(),
        cache_read_cost_per_mtok=read,
        cache_write_cost_per_mtok=write,
    )


A, B = _deployment("a"), _deployment("b")


def test_a_turns_prompt_is_the_prefix_the_conversation_so_far_and_the_turn() -> None:
    assert prompt_sizes([10, 20, 30], [100, 200, 300], prefix_tokens=3000) == [3010, 3130, 3360]


def test_a_session_that_stays_reads_the_last_prompt_from_the_cache() -> None:
    cost = session_cost([A, A, A], [10, 20, 30], [100, 200, 300], prefix_tokens=3000)
    assert [t.cached_tokens for t in cost.turns] == [0, 3010, 3130]
    assert cost.switches == 0
    second = cost.turns[1]  # 3,010 read at $0.30, 120 written at $3.75; the answer at $15
    assert second.input_cost_usd == pytest.approx((3010 * 0.30 + 120 * 3.75) / 1e6)
    assert second.list_input_cost_usd == pytest.approx(3130 * 3.0 / 1e6)
    assert second.output_cost_usd == pytest.approx(200 * 15.0 / 1e6)
    assert cost.turns[0].input_cost_usd == pytest.approx(3010 * 3.75 / 1e6)  # all written


def test_a_switch_loses_the_cache_and_coming_back_reads_what_was_left() -> None:
    cost = session_cost([A, B, A], [10, 20, 30], [100, 200, 300], prefix_tokens=3000)
    assert [t.cached_tokens for t in cost.turns] == [0, 0, 3010]
    assert cost.switches == 2


def test_prompts_below_the_minimum_are_neither_cached_nor_read() -> None:
    cost = session_cost([A, A], [10, 10], [10, 10], prefix_tokens=MIN_CACHEABLE_TOKENS - 100)
    assert [t.cached_tokens for t in cost.turns] == [0, 0]
    assert cost.input_cost_usd == pytest.approx(cost.list_input_cost_usd)


def test_a_deployment_without_cache_prices_pays_its_input_price() -> None:
    plain = _deployment("plain", read=None, write=None)
    cost = session_cost([plain, plain], [10, 10], [10, 10], prefix_tokens=5000)
    assert cost.turns[1].cached_tokens == 5010
    assert cost.input_cost_usd == pytest.approx(cost.list_input_cost_usd)


def test_totals_count_switches_per_session_and_the_hit_rate() -> None:
    stay = session_cost([A, A], [10, 10], [10, 10], prefix_tokens=2000)
    move = session_cost([A, B], [10, 10], [10, 10], prefix_tokens=2000)
    summed = totals({"stay": stay, "move": move})
    assert summed["switches_per_session"] == 0.5 and summed["sessions_with_a_switch"] == 1
    assert summed["cache_hit_rate"] == pytest.approx(2010 / (2010 + 2030) / 2)


turns = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 2000), st.booleans()), min_size=1, max_size=12
)


@given(turns, st.integers(0, 20_000), st.floats(0, 3.0), st.one_of(st.none(), st.floats(3.0, 10.0)))
def test_switching_between_equal_deployments_never_saves(
    rows, prefix: int, read: float, write: float | None
) -> None:
    a, b = _deployment("a", read, write), _deployment("b", read, write)
    users, replies = [u for u, _, _ in rows], [r for _, r, _ in rows]
    stay = session_cost([a] * len(rows), users, replies, prefix)
    moved = session_cost([a if same else b for _, _, same in rows], users, replies, prefix)
    assert stay.input_cost_usd <= moved.input_cost_usd + 1e-12
    assert stay.cached_tokens >= moved.cached_tokens
    if write is None:  # no write premium: the cache never costs more than no cache
        assert stay.input_cost_usd <= stay.list_input_cost_usd + 1e-12


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        session_cost([A], [1, 2], [1, 2], 0)
    with pytest.raises(ValueError):
        prompt_sizes([1], [1, 2], 0)
    assert dataclasses.is_dataclass(session_cost([A], [1], [1], 0))
