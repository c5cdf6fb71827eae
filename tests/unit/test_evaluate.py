import numpy as np
import pytest

from intent_router.thresholds import CoveragePoint, recommend_threshold, risk_coverage
from training.evaluate import evaluate, expected_calibration_error

LABELS = ["a", "b"]


def test_ece_matches_a_hand_computed_case() -> None:
    # Two prompts at confidence 0.9 (one right, one wrong) and two at 0.6 (both right):
    # bin (0.8, 0.9]: |0.5 - 0.9| * 2/4 = 0.2 ; bin (0.5, 0.6]: |1.0 - 0.6| * 2/4 = 0.2.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = ["a", "b", "a", "b"]
    assert expected_calibration_error(y, probs, LABELS) == pytest.approx(0.4)


def test_evaluate_reports_per_label_scores_and_confusion() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    result = evaluate(["a", "b", "b", "b"], probs, LABELS)
    assert result.accuracy == pytest.approx(0.75)
    assert result.confusion == [[1, 0], [1, 2]]
    assert result.per_label["a"]["precision"] == pytest.approx(0.5)
    assert result.per_label["b"]["recall"] == pytest.approx(2 / 3)
    assert result.as_metrics()["test_f1_a"] == pytest.approx(2 / 3)


def test_risk_coverage_counts_the_share_above_each_threshold() -> None:
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.35, 0.65]])
    points = risk_coverage(["a", "b", "b"], probs, LABELS, thresholds=[0.5, 0.6, 0.96])
    assert [(p.coverage, p.accuracy) for p in points] == [
        (1.0, pytest.approx(2 / 3)),
        (pytest.approx(2 / 3), 1.0),
        (0.0, 1.0),
    ]


def test_recommended_threshold_is_the_lowest_meeting_the_target() -> None:
    points = [
        CoveragePoint(0.3, 1.0, 0.90),
        CoveragePoint(0.5, 0.8, 0.97),
        CoveragePoint(0.7, 0.6, 0.99),
    ]
    assert recommend_threshold(points, 0.97) == 0.5
    assert recommend_threshold(points, 0.995) == 0.7  # none meets it: escalate the most
