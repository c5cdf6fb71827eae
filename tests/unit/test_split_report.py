"""A held-out split's report: slices, escalation, kept accuracy, under/over-routing."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from intent_router.labels import INTENTS
from intent_router.model_contract import TruncationPolicy
from training.dataset import LabeledPrompts
from training.split_report import HeldOut, report_split
from training.train import training_set

LABELS = list(INTENTS)


def probabilities(predicted: list[str], confidence: list[float]) -> np.ndarray:
    matrix = np.zeros((len(predicted), len(LABELS)))
    for row, (label, top) in enumerate(zip(predicted, confidence)):
        matrix[row, :] = (1 - top) / (len(LABELS) - 1)
        matrix[row, LABELS.index(label)] = top
    return matrix


HELD_OUT = HeldOut(
    "real_test",
    texts=["why does it crash", "thanks!", "design the queue", "add a flag"],
    intents=["debugging", "general", "architecture_review", "code_generation"],
    source_types=["aider_chat_history", "aider_chat_history", "prompt_file", "prompt_file"],
    ambiguous=[False, True, False, False],
    repositories=["a/x", "a/x", "b/y", "c/z"],
    alt_intents=[None, "architecture_review", None, None],
)


def test_routing_shares_follow_the_policy_of_the_default_config() -> None:
    # debugging -> general: cheap tier for a strong-tier intent (under-routed, escalated);
    # general -> architecture_review: strong tier for a cheap intent (over-routed, kept).
    report = report_split(
        HELD_OUT,
        probabilities(
            ["general", "architecture_review", "architecture_review", "code_generation"],
            [0.5, 0.9, 0.95, 0.99],
        ),
        LABELS,
        threshold=0.6,
    )
    assert report.under_routing == pytest.approx(1 / 2)  # of the two high-stakes prompts
    assert report.over_routing == pytest.approx(1 / 2)  # of the two others
    assert report.under_routing_escalated == 0.0  # the escalated one gets its true intent
    assert report.escalation_share == pytest.approx(1 / 4)
    assert report.kept_accuracy == pytest.approx(2 / 3)
    assert (report.clear.rows, report.ambiguous.rows) == (3, 1)
    assert report.clear.accuracy == pytest.approx(2 / 3) and report.ambiguous.accuracy == 0.0
    assert report.ambiguous_either == 1.0  # "thanks!" read as its alternative label
    assert report.by_source_type["prompt_file"].accuracy == 1.0
    assert report.repositories == 3 and report.repo_accuracy_median == 1.0
    metrics = report.metrics()
    assert metrics["real_test_under_routing"] == pytest.approx(0.5)
    assert metrics["real_test_accuracy_source_aider_chat_history"] == 0.0
    assert "real_test_macro_f1_ambiguous" in metrics
    assert any("under-routing 0.500" in line for line in report.lines())


def test_the_authored_split_has_no_ambiguity_or_repository_metrics() -> None:
    held_out = HeldOut.authored(HELD_OUT.texts, HELD_OUT.intents)
    report = report_split(held_out, probabilities(HELD_OUT.intents, [0.9] * 4), LABELS, 0.5)
    metrics = report.metrics()
    assert metrics["authored_test_accuracy"] == 1.0
    assert metrics["authored_test_under_routing"] == metrics["authored_test_over_routing"] == 0.0
    assert not any("ambiguous" in k or "repo_" in k or "_source_" in k for k in metrics)


def test_cross_validation_never_splits_a_repository() -> None:
    authored = LabeledPrompts(
        [f"authored {i}" for i in range(70)], [LABELS[i % 7] for i in range(70)]
    )
    real = [
        {"text": f"real {i}", "intent": LABELS[i % 7], "source_repo": f"o/r{i % 12}"}
        for i in range(84)
    ]
    train_set = training_set(authored, real, TruncationPolicy())
    assert train_set.is_real.sum() == 84 and len(set(train_set.groups)) == 70 + 12
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=42)
    groups = np.array(train_set.groups)
    for fit, held in folds.split(train_set.data.texts, train_set.data.intents, groups):
        assert not set(groups[fit]) & set(groups[held])


def test_baseline_compares_the_same_metrics_before_and_after() -> None:
    from training.baseline import compare

    worse = report_split(HELD_OUT, probabilities(["general"] * 4, [0.9] * 4), LABELS, 0.5)
    better = report_split(HELD_OUT, probabilities(HELD_OUT.intents, [0.9] * 4), LABELS, 0.5)
    rows = {
        line.split()[0]: [float(v) for v in line.split()[1:]] for line in compare(worse, better)
    }
    assert rows["real_test_accuracy"] == pytest.approx([0.25, 1.0, 0.75])
    assert rows["real_test_under_routing"] == pytest.approx([1.0, 0.0, -1.0])
    assert not any("_precision_" in name or "_recall_" in name for name in rows)
