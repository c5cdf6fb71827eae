"""The confidence-threshold rule that training and routing evaluation share: the risk-coverage
curve of "decide locally when confidence >= t" and the lowest threshold meeting a target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The operating point: the accuracy the locally decided share must reach (issue 13's target on
#: real prompts). Training picks the threshold with it on calibrated out-of-fold real rows.
DEFAULT_TARGET_ACCURACY = 0.90
THRESHOLD_GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95


@dataclass(frozen=True)
class CoveragePoint:
    """At one threshold: the share decided locally and the accuracy on that share."""

    threshold: float
    coverage: float
    accuracy: float


def risk_coverage_from(
    confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float] = THRESHOLD_GRID
) -> list[CoveragePoint]:
    """Coverage and selective accuracy per threshold, from each prediction's top probability
    and whether it was right. An empty share counts as accuracy 1.0."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    points = []
    for threshold in thresholds:
        kept = confidence >= threshold
        accuracy = float(correct[kept].mean()) if kept.any() else 1.0
        coverage = float(kept.mean()) if len(kept) else 0.0
        points.append(CoveragePoint(float(threshold), coverage, accuracy))
    return points


def risk_coverage(
    y_true: Sequence[str],
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: Sequence[float] = THRESHOLD_GRID,
) -> list[CoveragePoint]:
    """The same, from a probability matrix whose columns follow ``labels``."""
    labels = list(labels)
    confidence = probabilities.max(axis=1)
    correct = np.array([labels[i] == t for i, t in zip(probabilities.argmax(axis=1), y_true)])
    return risk_coverage_from(confidence, correct, thresholds)


def recommend_threshold(
    points: Sequence[CoveragePoint], target_accuracy: float = DEFAULT_TARGET_ACCURACY
) -> float:
    """The lowest threshold whose locally decided share meets ``target_accuracy``.

    When none does, the highest threshold of the grid (escalate the most)."""
    for point in sorted(points, key=lambda p: p.threshold):
        if point.accuracy >= target_accuracy and point.coverage > 0:
            return point.threshold
    return max(p.threshold for p in points)
