"""Temperature scaling: fitted by log loss, folded into a LogisticRegression exactly."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from training.calibration import fit_temperature, fold_temperature, reliability, scale

LABELS = ["a", "b", "c"]


def _overconfident(n: int = 600, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Logits sharpened 3x past the truth: labels drawn from softmax(z), reported softmax(3z)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * 1.5
    true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = [LABELS[rng.choice(3, p=p)] for p in true_p]
    sharp = np.exp(3 * logits)
    return y, sharp / sharp.sum(axis=1, keepdims=True)


def test_an_overconfident_model_gets_a_temperature_near_its_sharpening() -> None:
    y, probabilities = _overconfident()
    fitted = fit_temperature(y, probabilities, LABELS)
    assert 2.2 < fitted.temperature < 4.0
    assert fitted.nll_after < fitted.nll_before
    assert fitted.ece_after < fitted.ece_before


def test_scaling_keeps_the_argmax_and_sums_to_one() -> None:
    _, probabilities = _overconfident(50)
    scaled = scale(probabilities, 2.0)
    np.testing.assert_array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    np.testing.assert_allclose(scale(probabilities, 1.0), probabilities, atol=1e-9)


def test_folding_into_logistic_regression_equals_scaling_its_probabilities() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4))
    y = np.array(LABELS)[rng.integers(0, 3, 120)]
    model = LogisticRegression(C=100, max_iter=1000).fit(x, y)
    before = model.predict_proba(x)
    assert fold_temperature(model, 2.5)
    np.testing.assert_allclose(model.predict_proba(x), scale(before, 2.5), atol=1e-9)
    assert not fold_temperature(object(), 2.0)


def test_reliability_bins_count_every_row() -> None:
    y, probabilities = _overconfident(200)
    bins = reliability(y, probabilities, LABELS)
    assert sum(n for _, _, n in bins) == 200
    assert all(0 <= acc <= 1 and 0 < conf <= 1 for conf, acc, _ in bins)
