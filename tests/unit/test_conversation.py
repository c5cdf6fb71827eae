"""The conversation rule: which user turns a short follow-up is classified with, and the mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.config import ConversationRule
from intent_router.evaluation.conversation import rows_with_context
from intent_router.labels import INTENTS
from intent_router.routing.conversation import mix_predictions, select_turns
from intent_router.types import Prediction

RULE = ConversationRule()


def test_a_long_latest_turn_is_classified_alone() -> None:
    turns = [
        "why does the login test fail with a KeyError?",
        "please write a README section about installing the project with uv and make",
    ]
    assert select_turns(turns, RULE) == select_turns(turns[-1:], RULE).__class__(
        turns[-1], "", (1,)
    )


def test_a_short_follow_up_reads_the_previous_turns_newest_first_within_max_turns() -> None:
    turns = ["first", "the stack trace shows a KeyError in auth.py", "it still fails", "go ahead"]
    selection = select_turns(turns, RULE)
    assert selection.turns == (1, 2, 3)  # max_turns 3: the oldest one is left out
    assert selection.latest == "go ahead"
    assert selection.earlier == "the stack trace shows a KeyError in auth.py\nit still fails"


def test_the_char_budget_cuts_earlier_turns_keeping_their_start() -> None:
    rule = ConversationRule(char_budget=10)
    selection = select_turns(["older turn", "0123456789abcdef", "yes do it"], rule)
    assert selection.earlier == "0123456789" and selection.turns == (1, 2)


def test_blank_earlier_turns_are_skipped_and_disabled_rule_reads_the_latest_only() -> None:
    assert select_turns(["fix the crash", "  ", "now"], RULE).turns == (0, 2)
    assert select_turns(["fix the crash", "now"], ConversationRule(enabled=False)).turns == (1,)
    assert select_turns([], RULE).turns == ()


@given(
    st.lists(st.text(max_size=60), min_size=1, max_size=8),
    st.integers(1, 5),
    st.integers(0, 100),
    st.integers(0, 200),
)
@settings(max_examples=100, deadline=None)
def test_selection_always_holds_the_latest_turn_and_respects_the_bounds(
    turns: list[str],
    max_turns: int,
    follow_up: int,
    budget: int,
) -> None:
    rule = ConversationRule(follow_up_max_chars=follow_up, max_turns=max_turns, char_budget=budget)
    selection = select_turns(turns, rule)
    assert selection.turns[-1] == len(turns) - 1 and selection.latest == turns[-1]
    assert len(selection.turns) <= max_turns
    assert list(selection.turns) == sorted(set(selection.turns))
    assert len(selection.earlier) <= budget + len(selection.turns)  # the joins' newlines
    if len(turns[-1].strip()) > follow_up:
        assert selection.turns == (len(turns) - 1,)


def _prediction(weights: list[float]) -> Prediction:
    total = sum(weights)
    probabilities = {label: w / total for label, w in zip(INTENTS, weights)}
    best = max(probabilities, key=probabilities.__getitem__)
    return Prediction(best, probabilities[best], probabilities)


probability_rows = st.lists(st.floats(0.01, 1.0), min_size=len(INTENTS), max_size=len(INTENTS))


@given(probability_rows, probability_rows, st.floats(0.5, 1.0))
@settings(max_examples=100, deadline=None)
def test_the_mix_is_a_distribution_and_weight_one_is_the_latest_turn(
    latest: list[float],
    earlier: list[float],
    weight: float,
) -> None:
    mixed = mix_predictions(_prediction(latest), _prediction(earlier), weight)
    assert sum(mixed.probabilities.values()) == pytest.approx(1.0)
    assert mixed.confidence == max(mixed.probabilities.values())
    only_latest = mix_predictions(_prediction(latest), _prediction(earlier), 1.0)
    assert only_latest.probabilities == pytest.approx(_prediction(latest).probabilities)


def test_a_latest_turn_at_least_as_sure_as_the_earlier_ones_keeps_its_intent() -> None:
    latest = _prediction([1, 1, 1, 1, 6, 1, 1])  # documentation, sure
    earlier = _prediction([1, 1, 1, 6, 1, 1, 1])  # debugging, as sure
    assert mix_predictions(latest, earlier, 0.6).intent == "documentation"


def test_latest_weight_below_a_half_is_refused() -> None:
    with pytest.raises(ValueError, match="latest_weight"):
        ConversationRule(latest_weight=0.4)


def test_the_measurement_reads_only_held_out_rows_that_carry_context() -> None:
    split = Path(__file__).resolve().parents[2] / "data" / "real_split.json"
    test_ids = set(json.loads(split.read_text())["test_ids"])
    rows = rows_with_context(split)
    assert rows and all(r["id"] in test_ids and r["context"] for r in rows)
    assert not {r["id"] for r in rows} & set(json.loads(split.read_text())["train_ids"])
