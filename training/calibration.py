"""Temperature scaling fitted on out-of-fold predictions, and the reliability figures that show
it worked.

The temperature T divides a multinomial LogisticRegression's logits: p_T = softmax(z / T).
``fold_temperature`` divides the classifier's coefficients and intercept by T, so the fitted
pipeline, its ONNX export (the same coefficients) and parity all carry the calibrated
probabilities: one contract, nothing to apply at serving time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from training import evaluate as ev

#: Temperatures searched (log scale): softer than 1 when the model is over-confident.
TEMPERATURE_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class Calibration:
    """The fitted temperature and the top-label ECE and log loss before and after it, on the
    rows it was fitted on."""

    temperature: float
    rows: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def metrics(self, prefix: str = "cv_real_") -> dict[str, float]:
        return {
            "temperature": self.temperature,
            f"{prefix}ece_before_calibration": self.ece_before,
            f"{prefix}ece_after_calibration": self.ece_after,
            f"{prefix}nll_before_calibration": self.nll_before,
            f"{prefix}nll_after_calibration": self.nll_after,
        }


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities a temperature-scaled softmax would give."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _nll(probabilities: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[np.arange(len(truth)), truth], 1e-12, 1.0)).mean())


def fit_temperature(
    y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]
) -> Calibration:
    """The temperature minimising the log loss of ``probabilities`` (columns: ``labels``)."""
    labels = list(labels)
    truth = np.array([labels.index(y) for y in y_true])
    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    result = minimize_scalar(
        lambda log_t: _nll(scale(probabilities, float(np.exp(log_t))), truth),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    temperature = round(float(np.exp(result.x)), 4)
    after = scale(probabilities, temperature)
    return Calibration(
        temperature=temperature,
        rows=len(truth),
        ece_before=ev.expected_calibration_error(y_true, probabilities, labels),
        ece_after=ev.expected_calibration_error(y_true, after, labels),
        nll_before=_nll(probabilities, truth),
        nll_after=_nll(after, truth),
    )


def fold_temperature(classifier: object, temperature: float) -> bool:
    """Divide a LogisticRegression's coefficients and intercept by ``temperature`` in place;
    False (unchanged) for any other classifier."""
    from sklearn.linear_model import LogisticRegression

    if not isinstance(classifier, LogisticRegression) or len(classifier.classes_) < 3:
        return False
    classifier.coef_ = classifier.coef_ / temperature
    classifier.intercept_ = classifier.intercept_ / temperature
    return True


def reliability(
    y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str], bins: int = 10
) -> list[tuple[float, float, int]]:
    """Per confidence bin: mean confidence, accuracy, and row count (empty bins left out)."""
    labels = list(labels)
    confidence = probabilities.max(axis=1)
    correct = np.array([labels[i] == t for i, t in zip(probabilities.argmax(axis=1), y_true)])
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            out.append(
                (float(confidence[in_bin].mean()), float(correct[in_bin].mean()), int(in_bin.sum()))
            )
    return out


def plot_reliability(
    curves: dict[str, list[tuple[float, float, int]]], path: Path, title: str
) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    for name, points in curves.items():
        if points:
            conf, acc, counts = zip(*points)
            ax.plot(conf, acc, marker="o", label=f"{name} ({sum(counts)} rows)")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
