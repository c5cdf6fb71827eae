"""Quality metrics of an intent classifier: accuracy, macro-F1, per-label scores, calibration,
and the confidence threshold to recommend for escalation."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

# The threshold rule is a contract shared with routing evaluation.
from intent_router.thresholds import (  # noqa: F401  (re-exported for training)
    DEFAULT_TARGET_ACCURACY,
    THRESHOLD_GRID,
    CoveragePoint,
    recommend_threshold,
    risk_coverage,
)


@dataclass(frozen=True)
class Evaluation:
    """How a classifier did on one labeled set."""

    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]
    confusion: list[list[int]]
    labels: list[str]
    expected_calibration_error: float

    def as_metrics(self, prefix: str = "test_") -> dict[str, float]:
        """Flat metric names for MLflow and models/intent.json."""
        metrics = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}ece": self.expected_calibration_error,
        }
        for label, scores in self.per_label.items():
            for name in ("precision", "recall", "f1"):
                metrics[f"{prefix}{name}_{label}"] = scores[name]
        return metrics


def evaluate(y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]) -> Evaluation:
    """Score predictions given as a probability matrix whose columns follow ``labels``."""
    labels = list(labels)
    y_pred = [labels[i] for i in probabilities.argmax(axis=1)]
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_label = {
        label: {
            "precision": float(report[label]["precision"]),
            "recall": float(report[label]["recall"]),
            "f1": float(report[label]["f1-score"]),
            "support": float(report[label]["support"]),
        }
        for label in labels
    }
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        per_label=per_label,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        labels=labels,
        expected_calibration_error=expected_calibration_error(y_true, probabilities, labels),
    )


def expected_calibration_error(
    y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str], bins: int = 10
) -> float:
    """Top-label ECE: the support-weighted gap between confidence and accuracy per bin."""
    labels = list(labels)
    confidence = probabilities.max(axis=1)
    correct = np.array([labels[i] == t for i, t in zip(probabilities.argmax(axis=1), y_true)])
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def classification_report_text(
    y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]
) -> str:
    labels = list(labels)
    y_pred = [labels[i] for i in probabilities.argmax(axis=1)]
    return str(classification_report(y_true, y_pred, labels=labels, digits=4, zero_division=0))
