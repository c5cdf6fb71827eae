"""Regret routing (routing/regret.py): properties of the choice on generated probabilities,
regret matrices and costs, and the default matrix's intent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.config import default_regret_matrix
from intent_router.labels import HIGH_STAKES_INTENTS, INTENTS
from intent_router.routing.regret import choose, expected_losses, route_as


def one_hot(intent: str, labels: tuple[str, ...]) -> dict[str, float]:
    return {label: 1.0 if label == intent else 0.0 for label in labels}


SETTINGS = settings(max_examples=100, deadline=None)
DEFAULT = default_regret_matrix()
#: The default config's chain prices for one request: premium for the high-stakes intents.
COSTS = {i: (0.0105 if i in HIGH_STAKES_INTENTS else 0.0026) for i in INTENTS}


@st.composite
def distributions(draw: st.DrawFn) -> dict[str, float]:
    weights = draw(st.lists(st.floats(0.0, 1.0), min_size=len(INTENTS), max_size=len(INTENTS)))
    total = sum(weights)
    if total == 0:
        return one_hot(draw(st.sampled_from(INTENTS)), INTENTS)
    return {label: w / total for label, w in zip(INTENTS, weights)}


@st.composite
def matrices(draw: st.DrawFn) -> dict[str, dict[str, float]]:
    cell = st.floats(0.0, 0.5)
    return {t: {a: 0.0 if a == t else draw(cell) for a in INTENTS} for t in INTENTS}


costs_st = st.fixed_dictionaries({i: st.floats(0.0, 0.05) for i in INTENTS})


@given(st.sampled_from(INTENTS), matrices(), costs_st, st.floats(0.0, 100.0))
@SETTINGS
def test_a_certain_prediction_routes_as_its_intent(
    intent: str,
    matrix: dict,
    costs: dict,
    weight: float,
) -> None:
    choice = choose(one_hot(intent, INTENTS), matrix, costs, weight)
    assert choice.routed_as == intent
    assert choice.expected_loss[intent] == 0.0 and not choice.escalate


@given(distributions(), matrices(), costs_st, st.floats(0.0, 20.0), st.floats(0.0, 20.0))
@SETTINGS
def test_raising_the_weight_never_raises_expected_regret_nor_lowers_spend(
    p: dict,
    matrix: dict,
    costs: dict,
    w1: float,
    w2: float,
) -> None:
    low, high = sorted((w1, w2))

    def regret_and_spend(weight: float) -> tuple[float, float]:
        chosen = route_as(p, matrix, costs, weight)
        spend = expected_losses(p, matrix, costs, 0.0)[chosen]  # weight 0: the extra cost alone
        return (expected_losses(p, matrix, costs, 1.0)[chosen] - spend), spend

    regret_low, spend_low = regret_and_spend(low)
    regret_high, spend_high = regret_and_spend(high)
    assert regret_high <= regret_low + 1e-12
    assert spend_high >= spend_low - 1e-12


@given(distributions(), st.floats(0.0, 20.0), st.floats(0.0, 20.0))
@SETTINGS
def test_with_the_default_matrix_more_weight_never_lowers_the_tier(
    p: dict, w1: float, w2: float
) -> None:
    low, high = sorted((w1, w2))
    assert COSTS[route_as(p, DEFAULT, COSTS, high)] >= COSTS[route_as(p, DEFAULT, COSTS, low)]


@given(distributions(), matrices(), costs_st, st.sampled_from(INTENTS), st.floats(0.0, 0.05))
@SETTINGS
def test_a_dearer_chain_is_never_chosen_more(
    p: dict,
    matrix: dict,
    costs: dict,
    intent: str,
    extra: float,
) -> None:
    """Cost is monotone: raising one intent's price never makes it chosen where it was not."""
    before = route_as(p, matrix, costs, 1.0)
    after = route_as(p, matrix, {**costs, intent: costs[intent] + extra}, 1.0)
    if before != intent:
        assert after != intent or expected_losses(p, matrix, costs, 1.0)[before] == pytest.approx(
            expected_losses(p, matrix, {**costs, intent: costs[intent] + extra}, 1.0)[intent]
        )


@given(distributions(), matrices(), costs_st, st.floats(0.0, 5.0), st.floats(0.0, 0.1))
@SETTINGS
def test_escalation_happens_only_when_the_gain_exceeds_its_cost(
    p: dict,
    matrix: dict,
    costs: dict,
    weight: float,
    price: float,
) -> None:
    choice = choose(p, matrix, costs, weight, llm_accuracy=0.9, escalation_cost_usd=price)
    assert choice.escalation_gain_usd == pytest.approx(0.9 * min(choice.expected_loss.values()))
    assert choice.escalate is (choice.escalation_gain_usd > price)
    assert choice.expected_loss[choice.routed_as] == min(choice.expected_loss.values())


def test_a_fairly_likely_security_request_goes_premium_though_argmax_says_documentation() -> None:
    p = {i: 0.0 for i in INTENTS} | {"documentation": 0.75, "security_audit": 0.25}
    assert route_as(p, DEFAULT, COSTS, 1.0) == "security_audit"
    assert route_as(p, DEFAULT, COSTS, 0.0) == "documentation"  # on cost alone


def test_an_unlikely_high_stakes_reading_does_not_over_route() -> None:
    p = {i: 0.0 for i in INTENTS} | {"documentation": 0.98, "debugging": 0.02}
    assert route_as(p, DEFAULT, COSTS, 1.0) == "documentation"


def test_default_matrix_charges_under_routing_high_stakes_most() -> None:
    for true in INTENTS:
        assert DEFAULT[true][true] == 0.0
        for routed in INTENTS:
            if true in HIGH_STAKES_INTENTS and routed not in HIGH_STAKES_INTENTS:
                assert DEFAULT[true][routed] > DEFAULT[routed][true]  # under- beats over-routing
