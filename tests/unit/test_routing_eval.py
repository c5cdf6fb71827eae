"""Routing evaluation, pure parts: replay, summary, data loading, threshold writing.

The hand-computed case: two deployments, ``cheap`` ($1/$1 per Mtok, primary tier, also the LLM
classifier) and ``premium`` ($10/$10, fallback_1). High-stakes intents go to premium, the rest
to cheap. Every prompt is 1,000 tokens, every classifier request 500 (+10 answer tokens);
general answers are 100 tokens, debugging answers 200. Threshold 0.5.

    row  true       local      conf  escalated  local-mode final  oracle-mode final
    1    general    general    0.90  no         general (cheap)   general (cheap)
    2    debugging  general    0.40  yes        general (cheap)   debugging (premium)
    3    general    debugging  0.80  no         debugging (prem.) debugging (premium)
    4    debugging  debugging  0.95  no         debugging (prem.) debugging (premium)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.config import load_config, parse_config
from intent_router.evaluation.__main__ import format_table
from intent_router.evaluation.data import DataFileError, LabeledPrompt, load_labeled
from intent_router.evaluation.model_threshold import write_threshold
from intent_router.evaluation.replay import (
    PromptTokens,
    ReplaySettings,
    baseline_deployments,
    classifier_request_text,
    measure_tokens,
    replay,
)
from intent_router.evaluation.report import per_prompt_table
from intent_router.evaluation.summary import (
    ask_curve,
    compare_routing,
    regret_curve,
    summarize,
    tradeoff_curve,
)
from intent_router.exceptions import ConfigError, ModelContractError
from intent_router.labels import HIGH_STAKES_INTENTS, INTENTS
from intent_router.thresholds import THRESHOLD_GRID
from intent_router.types import Prediction

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = parse_config(
    {
        "router": {
            "llm_classifier": {"deployment": "cheap"},
            "output_tokens": {"general": 100, "debugging": 200},
            "routing": {"weight": 1, "latency_usd_per_s": 0.002},  # pinned for the regret cases
        },
        "deployments": {
            "cheap": {
                "model": "test/cheap",
                "tier": "primary",
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 1,
            },
            "premium": {
                "model": "test/premium",
                "tier": "fallback_1",
                "input_cost_per_mtok": 10,
                "output_cost_per_mtok": 10,
            },
        },
        "policy": {i: ["premium"] if i in HIGH_STAKES_INTENTS else ["cheap"] for i in INTENTS},
    }
)
EXAMPLES = [
    LabeledPrompt("p1", "general"),
    LabeledPrompt("p2", "debugging"),
    LabeledPrompt("p3", "general"),
    LabeledPrompt("p4", "debugging"),
]
PREDICTIONS = [
    Prediction("general", 0.90, {}),
    Prediction("general", 0.40, {}),
    Prediction("debugging", 0.80, {}),
    Prediction("debugging", 0.95, {}),
]
TOKENS = [PromptTokens(prompt=1000, classifier_request=500)] * 4
LOCAL = ReplaySettings(CONFIG, threshold=0.5, premium="premium", primary="cheap")
ORACLE = replace(LOCAL, escalation="oracle")


def _replay(settings: ReplaySettings = LOCAL):  # type: ignore[no-untyped-def]
    return replay(EXAMPLES, PREDICTIONS, TOKENS, settings)


def test_local_mode_costs_and_shares_match_the_hand_computed_case() -> None:
    # routed: 1.1e-3 + (1.1e-3 + 0.51e-3) + 12e-3 + 12e-3 = 26.71e-3 over 4 prompts
    summary = summarize(_replay())
    assert summary.cost_per_1k_routed_usd == pytest.approx(6.6775)
    assert summary.cost_per_1k_premium_usd == pytest.approx(11.5)  # 11 + 11 + 12 + 12 ($/1k / 4)
    assert summary.cost_per_1k_primary_usd == pytest.approx(1.15)
    assert summary.savings_vs_premium == pytest.approx(11.5 / 6.6775)
    assert summary.escalation_share == 0.25
    assert summary.accuracy == 0.5
    assert summary.macro_f1 == pytest.approx(0.5)
    assert summary.under_routing_share == 0.5  # row 2 of the two debugging rows
    assert summary.over_routing_share == 0.5  # row 3 of the two general rows


def test_oracle_mode_routes_escalated_prompts_by_their_true_intent() -> None:
    outcomes = _replay(ORACLE)
    assert [o.final_intent for o in outcomes] == ["general", "debugging", "debugging", "debugging"]
    assert outcomes[1].deployment == "premium"
    summary = summarize(outcomes)
    assert summary.accuracy == 0.75
    # general F1 = 2/3 (P 1, R 1/2), debugging F1 = 0.8 (P 2/3, R 1)
    assert summary.f1_per_label == pytest.approx({"debugging": 0.8, "general": 2 / 3})
    assert summary.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)
    # row 2 now answers 200 tokens at premium prices: 12e-3 + 0.51e-3
    assert summary.cost_per_1k_routed_usd == pytest.approx(9.4025)
    assert summary.cost_per_1k_premium_usd == pytest.approx(11.75)
    assert summary.cost_per_1k_primary_usd == pytest.approx(1.175)
    assert summary.under_routing_share == 0.0
    assert summary.over_routing_share == 0.5


def test_the_classifier_call_is_charged_only_for_escalated_prompts() -> None:
    for settings_ in (LOCAL, ORACLE):
        outcomes = _replay(settings_)
        assert [o.escalated for o in outcomes] == [False, True, False, False]
        # (500 input + 10 output tokens) at the cheap classifier's $1/$1 per Mtok
        assert [o.classifier_cost_usd for o in outcomes] == pytest.approx([0, 510e-6, 0, 0])
        assert outcomes[1].cost_usd == pytest.approx(outcomes[1].routed_cost_usd + 510e-6)


def test_a_prompt_at_exactly_the_threshold_is_decided_locally() -> None:
    outcomes = replay(EXAMPLES, PREDICTIONS, TOKENS, replace(LOCAL, threshold=0.8))
    assert [o.escalated for o in outcomes] == [False, True, False, False]


def test_risk_coverage_and_recommended_threshold_use_the_local_predictions() -> None:
    summary = summarize(_replay(ORACLE), target_accuracy=0.97)
    by_threshold = {p.threshold: p for p in summary.risk_coverage}
    assert [p.threshold for p in summary.risk_coverage] == list(THRESHOLD_GRID)
    assert (by_threshold[0.5].coverage, by_threshold[0.5].accuracy) == (0.75, pytest.approx(2 / 3))
    assert (by_threshold[0.85].coverage, by_threshold[0.85].accuracy) == (0.5, 1.0)
    assert summary.recommended_threshold == 0.85


def test_tradeoff_curve_sweeps_the_grid_and_places_the_fixed_policies() -> None:
    local = tradeoff_curve(EXAMPLES, PREDICTIONS, TOKENS, LOCAL)
    routed = [p for p in local if p.policy == "routed"]
    assert [p.threshold for p in routed] == list(THRESHOLD_GRID)
    assert {p.accuracy for p in routed} == {0.5}  # local mode never changes a label
    costs = [p.cost_per_1k_usd for p in routed]
    assert costs == sorted(costs) and costs[0] < costs[-1]  # more escalation, more classifier calls
    fixed = {p.policy: p for p in local if p.policy != "routed"}
    assert fixed["always-premium"].served_as_intended == 1.0
    assert fixed["always-primary"].served_as_intended == 0.5  # only the general rows
    assert fixed["always-premium"].cost_per_1k_usd == pytest.approx(11.5)
    oracle = [p for p in tradeoff_curve(EXAMPLES, PREDICTIONS, TOKENS, ORACLE) if p.threshold]
    assert oracle[0].accuracy == 0.5 and oracle[-1].accuracy == 1.0  # 0.30 vs 0.95


def test_metrics_carry_the_logged_names() -> None:
    metrics = summarize(_replay()).metrics()
    assert {
        "accuracy",
        "macro_f1",
        "escalation_share",
        "cost_per_1k_routed_usd",
        "cost_per_1k_premium_usd",
        "cost_per_1k_primary_usd",
        "savings_vs_premium",
        "under_routing_share",
        "over_routing_share",
        "recommended_threshold",
        "f1_general",
        "f1_debugging",
    } == set(metrics)
    assert "savings vs premium" in format_table(metrics, 0.5, "run123")


def test_measure_tokens_counts_the_prompt_and_the_whole_classifier_request() -> None:
    [counted] = measure_tokens(["fix my bug"], count=len)
    assert counted.prompt == len("fix my bug")
    request = classifier_request_text("fix my bug")
    assert counted.classifier_request == len(request)
    assert "fix my bug" in request and "Intents:" in request  # user and system messages


def test_baselines_default_to_the_first_fallback_1_and_the_first_primary() -> None:
    config = load_config()
    assert baseline_deployments(config) == ("claude-sonnet-4", "kimi-k2.6")
    assert baseline_deployments(config, "gpt-4o") == ("gpt-4o", "kimi-k2.6")
    with pytest.raises(ConfigError, match="nope"):
        baseline_deployments(config, "nope")
    with pytest.raises(ValueError, match="escalation"):
        replace(LOCAL, escalation="llm")


def test_per_prompt_table_redacts_text_and_joins_the_chain() -> None:
    config = load_config()
    settings_ = ReplaySettings(config, 0.5, *baseline_deployments(config))
    outcomes = replay(EXAMPLES[:1], PREDICTIONS[:1], TOKENS[:1], settings_)
    assert per_prompt_table(outcomes)["text"] == ["p1"]
    table = per_prompt_table(outcomes, redact=True)
    assert table["text"][0].startswith("sha256:") and len(table["text"][0]) == 7 + 64
    assert table["chain"] == ["kimi-k2.6 > kimi-k2.6-together > claude-sonnet-4 > gpt-4o"]
    assert table["correct"] == [True]


rows = st.lists(
    st.tuples(
        st.sampled_from(INTENTS),
        st.sampled_from(INTENTS),
        st.floats(0.0, 1.0),
        st.integers(1, 5000),
        st.integers(1, 5000),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows, threshold=st.sampled_from(THRESHOLD_GRID))
def test_oracle_escalation_never_hurts_and_routing_never_costs_more_than_premium(
    rows: list[tuple[str, str, float, int, int]], threshold: float
) -> None:
    examples = [LabeledPrompt(f"p{i}", true) for i, (true, *_) in enumerate(rows)]
    predictions = [Prediction(pred, conf, {}) for _, pred, conf, _, _ in rows]
    tokens = [PromptTokens(p, c) for *_, p, c in rows]
    local = summarize(replay(examples, predictions, tokens, replace(LOCAL, threshold=threshold)))
    oracle = summarize(replay(examples, predictions, tokens, replace(ORACLE, threshold=threshold)))
    assert oracle.accuracy >= local.accuracy
    assert oracle.escalation_share == local.escalation_share
    # No escalation (threshold 0) and no deployment pricier than premium: savings >= 1.
    silent = summarize(replay(examples, predictions, tokens, replace(LOCAL, threshold=0.0)))
    assert silent.escalation_share == 0.0
    assert silent.savings_vs_premium >= 1.0 - 1e-12


def test_load_labeled_skips_blank_lines_and_names_the_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"text": "a", "intent": "general", "extra": 1}\n\n{"text": "b", "intent": "debugging"}\n'
    )
    assert load_labeled(good) == [LabeledPrompt("a", "general"), LabeledPrompt("b", "debugging")]
    cases = {
        '{"text": "a", "intent": "general"}\n{"text": "b", "intent": "chat"}\n': r":2: unknown intent 'chat'",
        '{"text": "a", "intent": "general"}\n\n{"intent": "general"}\n': r":3: missing or empty 'text'",
        '{"text": "a"}\n': r":1: missing 'intent'",
        '{"text": "a", "intent": "general"}\nnot json\n': r":2: not valid JSON",
        '["a", "general"]\n': r":1: not a JSON object",
        "\n\n": "no labeled rows",
    }
    bad = tmp_path / "bad.jsonl"
    for text, message in cases.items():
        bad.write_text(text)
        with pytest.raises(DataFileError, match=message):
            load_labeled(bad)
    with pytest.raises(DataFileError, match="no such file"):
        load_labeled(tmp_path / "missing.jsonl")


def test_write_threshold_changes_only_that_field(tmp_path: Path) -> None:
    path = tmp_path / "intent.json"
    shutil.copy(REPO_ROOT / "models" / "intent.json", path)
    before = json.loads(path.read_text())
    written = write_threshold(path, 0.8)
    after = json.loads(path.read_text())
    assert written.confidence_threshold == after["confidence_threshold"] == 0.8
    assert {k: v for k, v in after.items() if k != "confidence_threshold"} == {
        k: v for k, v in before.items() if k != "confidence_threshold"
    }
    snapshot = path.read_text()
    with pytest.raises(ModelContractError):
        write_threshold(path, 1.5)
    assert path.read_text() == snapshot  # an invalid value is never written
    assert not list(tmp_path.glob(".intent.json.*"))


def _sure(weights: dict[str, float]) -> Prediction:
    probabilities = {i: weights.get(i, 0.0) for i in INTENTS}
    best = max(probabilities, key=probabilities.__getitem__)
    return Prediction(best, probabilities[best], probabilities)


# Row 2 of the hand-computed case with a full probability vector: general 0.6, debugging 0.4.
# Expected answer 0.6 * 100 + 0.4 * 200 = 140 tokens: cheap 1.14e-3, premium 11.4e-3 USD.
# L(general) = 0.4 * 0.05 = 0.02; L(debugging) = 0.6 * (11.4e-3 - 1.14e-3 + 0.001) = 6.756e-3.
DOUBTFUL = (
    [LabeledPrompt("p2", "debugging")],
    [_sure({"general": 0.6, "debugging": 0.4})],
    TOKENS[:1],
)


def test_regret_routing_sends_a_doubtful_debugging_prompt_to_premium_where_argmax_does_not() -> (
    None
):
    alone = replace(LOCAL, ask=False)
    [argmax] = replay(*DOUBTFUL, alone)
    [regret] = replay(*DOUBTFUL, replace(alone, mode="regret"))
    assert (argmax.deployment, argmax.under_routed) == ("cheap", True)
    assert (regret.deployment, regret.routed_as, regret.under_routed) == (
        "premium",
        "debugging",
        False,
    )
    assert regret.final_intent == "general" and not regret.escalated  # classification unchanged
    # With the LLM classifier: gain 0.9 * 6.756e-3 > 0.51e-3 + 0.8 s * 0.002 USD/s: ask.
    [asked] = replay(*DOUBTFUL, replace(ORACLE, mode="regret"))
    assert asked.escalated and asked.classifier_cost_usd == pytest.approx(0.51e-3)


def test_the_comparison_and_the_curve_over_the_regret_weight() -> None:
    examples, predictions, tokens = DOUBTFUL
    compared = compare_routing(examples, predictions, tokens, LOCAL)
    assert compared["argmax_alone"]["under_routing_debugging"] == 1.0
    assert compared["regret_alone"]["under_routing_debugging"] == 0.0
    assert compared["regret_alone"]["escalation_share"] == 0.0
    curve = regret_curve(examples, predictions, tokens, LOCAL, weights=(0.0, 0.1, 1.0))
    assert [p.under_routing_share for p in curve] == [1.0, 1.0, 0.0]  # 0.1: 4e-3 * 0.4 < 6.2e-3
    costs = [p.cost_per_1k_usd for p in curve]
    assert costs == sorted(costs)


def test_a_dearer_latency_asks_the_llm_classifier_less() -> None:
    curve = ask_curve(*DOUBTFUL, ORACLE, prices=(0.0, 1e6))
    assert [p.escalation_share for p in curve] == [1.0, 0.0]
    assert curve[0].under_routing_share == curve[1].under_routing_share == 0.0  # premium either way
