"""Model groups: the pure member ordering, chain expansion, stats and config validation."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intent_router.config import DEFAULT_CONFIG, GROUP_STRATEGIES, parse_config
from intent_router.exceptions import ConfigError
from intent_router.routing.groups import GroupStats, Member, expand_chain, order_members

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

members_st = st.lists(
    st.builds(
        Member,
        name=st.text("abcdefgh", min_size=1, max_size=4),
        weight=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
        available=st.booleans(),
        in_flight=st.integers(0, 20),
        latency_ms=st.none() | st.floats(0, 5000),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda m: m.name,
)


@FAST
@given(members_st, st.sampled_from(GROUP_STRATEGIES), st.integers(0, 2**32))
def test_the_order_is_a_permutation_with_cooling_members_last(
    members: list[Member], strategy: str, seed: int
) -> None:
    order = order_members(members, strategy, random.Random(seed))
    assert sorted(order) == sorted(m.name for m in members)
    available = {m.name for m in members if m.available}
    # every available member comes before every cooling one: one in cooldown is never first
    # while any other can take the request
    flags = [name in available for name in order]
    assert flags == sorted(flags, reverse=True)
    if available:
        assert order[0] in available


@FAST
@given(members_st, st.integers(0, 2**32))
def test_least_in_flight_puts_the_least_loaded_available_member_first(
    members: list[Member], seed: int
) -> None:
    ready = [m for m in members if m.available]
    order = order_members(members, "least_in_flight", random.Random(seed))
    if ready:
        assert next(m for m in members if m.name == order[0]).in_flight == min(
            m.in_flight for m in ready
        )


@FAST
@given(members_st, st.integers(0, 2**32))
def test_lowest_latency_tries_unmeasured_members_then_the_fastest(
    members: list[Member], seed: int
) -> None:
    ready = [m for m in members if m.available]
    first = next(
        (
            m
            for m in members
            if m.name == order_members(members, "lowest_latency", random.Random(seed))[0]
        ),
        None,
    )
    if not ready or first is None:
        return
    if any(m.latency_ms is None for m in ready):
        assert first.latency_ms is None
    else:
        assert first.latency_ms == min(m.latency_ms for m in ready if m.latency_ms is not None)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.sampled_from([1.0, 2.0, 3.0, 5.0]), min_size=2, max_size=4), st.integers(0, 2**32)
)
def test_weighted_first_picks_converge_to_the_weights(weights: list[float], seed: int) -> None:
    members = [Member(f"m{i}", w) for i, w in enumerate(weights)]
    rng = random.Random(seed)
    draws = 4000
    firsts = Counter(order_members(members, "weighted", rng)[0] for _ in range(draws))
    total = sum(weights)
    for i, w in enumerate(weights):
        # 4,000 draws: the standard error of a share is at most 0.8 points; 4 points is > 5 sigma
        assert abs(firsts[f"m{i}"] / draws - w / total) < 0.04


def test_a_zero_weight_member_is_only_a_fallback() -> None:
    members = [Member("a", 0.0), Member("b", 1.0)]
    assert {order_members(members, "weighted", random.Random(s))[0] for s in range(200)} == {"b"}


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError):
        order_members([Member("a")], "round_robin", random.Random(0))


def test_expand_chain_replaces_a_member_with_its_group_in_place_and_dedups() -> None:
    group_of = {"k1": "kimi", "k2": "kimi"}
    chain = ("k2", "claude", "k1", "gpt")
    assert expand_chain(chain, group_of, lambda g: ("k1", "k2")) == ("k1", "k2", "claude", "gpt")
    assert expand_chain(("claude",), group_of, lambda g: ("k1", "k2")) == ("claude",)


def test_stats_count_in_flight_and_average_latency_of_answers_only() -> None:
    stats = GroupStats()
    stats.started("a")
    stats.started("a")
    assert stats.in_flight("a") == 2
    stats.finished("a", 100.0)
    stats.finished("a", None)  # a failure: not in the average
    assert stats.in_flight("a") == 0 and stats.latency_ms("a") == 100.0
    stats.started("a")
    stats.finished("a", 200.0)
    assert stats.latency_ms("a") == pytest.approx(120.0)  # 100 + 0.2 * (200 - 100)
    assert stats.members(["a", "b"], {"a": 2.0}, lambda n: n != "b") == [
        Member("a", 2.0, True, 0, pytest.approx(120.0)),
        Member("b", 1.0, False, 0, None),
    ]


RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())


def _grouped(**router_groups: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    raw["deployments"]["kimi-k2.6"].update(group="kimi", weight=3)
    raw["deployments"]["kimi-k2.6-together"].update(group="kimi", weight=1)
    raw["router"]["groups"] = router_groups
    return raw


def test_deployments_sharing_a_group_make_one_with_its_strategy() -> None:
    config = parse_config(_grouped(kimi={"strategy": "least_in_flight"}))
    group = config.groups["kimi"]
    assert (
        group.members == ("kimi-k2.6", "kimi-k2.6-together") and group.strategy == "least_in_flight"
    )
    assert config.deployments["kimi-k2.6"].weight == 3.0
    assert parse_config(_grouped()).groups["kimi"].strategy == "weighted"
    assert parse_config(RAW).groups == {}


def test_a_chain_may_name_a_group() -> None:
    raw = _grouped()
    raw["policy"]["general"] = ["kimi", "claude-sonnet-4"]
    assert parse_config(raw).policy["general"] == ("kimi-k2.6", "claude-sonnet-4")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda raw: raw["router"]["groups"].update(kimi={"strategy": "round_robin"}),
            "router.groups.kimi.strategy",
        ),
        (lambda raw: raw["router"]["groups"].update(nope={}), "router.groups.nope"),
        (
            lambda raw: raw["router"]["groups"].update(kimi={"weights": 1}),
            "router.groups.kimi.weights",
        ),
        (
            lambda raw: raw["deployments"]["kimi-k2.6"].update(weight=-1),
            "deployments.kimi-k2.6.weight",
        ),
        (
            lambda raw: raw["deployments"]["kimi-k2.6"].update(group="gpt-4o"),
            "deployments.kimi-k2.6.group",
        ),
        (
            lambda raw: [
                raw["deployments"][n].update(weight=0) for n in ("kimi-k2.6", "kimi-k2.6-together")
            ],
            "router.groups.kimi",
        ),
    ],
)
def test_a_bad_group_setting_is_named(mutate: Any, field: str) -> None:
    raw = _grouped()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field == field
