"""The candidate models that `make train` compares by cross-validated macro-F1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from training.export import WORD_PATTERN, WORD_PUNCT_PATTERN

#: Candidates whose CV macro-F1 is within this of the best count as tied; the cheapest wins.
TIE_TOLERANCE = 0.005


@dataclass(frozen=True)
class Candidate:
    """A named pipeline factory and what it costs at inference time (lower is cheaper)."""

    name: str
    description: str
    build: Callable[[int], Pipeline]
    runtime_cost: int

    def params(self, seed: int = 0) -> dict[str, Any]:
        pipeline = self.build(seed)
        return {
            f"{step}.{key}": value
            for step, est in pipeline.steps
            for key, value in est.get_params(deep=False).items()
            if isinstance(value, (int, float, str, bool, tuple, type(None)))
        }


def _tfidf(**overrides: Any) -> TfidfVectorizer:
    params: dict[str, Any] = dict(
        token_pattern=WORD_PUNCT_PATTERN,
        lowercase=True,
        ngram_range=(1, 2),
        binary=True,
        min_df=2,
        dtype=np.float32,
    )
    params.update(overrides)
    return TfidfVectorizer(**params)


def _lr(seed: int, c: float = 20.0) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, random_state=seed)


def default_candidates() -> list[Candidate]:
    """Fast-path candidates (binary tf folded into the n-gram node, one MatMul) cost by
    vocabulary size; the others need extra dense passes over the vocabulary."""
    return [
        Candidate(
            "lr_word12_baseline",
            "word 1-2 grams (min_df=2), binary tf-idf, LogisticRegression",
            lambda seed: Pipeline(
                [("tfidf", _tfidf(token_pattern=WORD_PATTERN)), ("clf", _lr(seed))]
            ),
            runtime_cost=4,
        ),
        Candidate(
            "lr_wordpunct12_8k",
            "word+punctuation 1-2 grams pruned to the 8,000 most frequent, binary tf-idf, LR",
            lambda seed: Pipeline([("tfidf", _tfidf(max_features=8000)), ("clf", _lr(seed))]),
            runtime_cost=2,
        ),
        Candidate(
            "lr_wordpunct12_full",
            "word+punctuation 1-2 grams (min_df=2), binary tf-idf, LogisticRegression",
            lambda seed: Pipeline([("tfidf", _tfidf()), ("clf", _lr(seed))]),
            runtime_cost=4,
        ),
        Candidate(
            "lr_wordpunct12_sublinear",
            "word+punctuation 1-2 grams (min_df=2), sublinear tf-idf, LogisticRegression",
            lambda seed: Pipeline(
                [("tfidf", _tfidf(binary=False, sublinear_tf=True)), ("clf", _lr(seed))]
            ),
            runtime_cost=6,
        ),
        Candidate(
            "svm_calibrated_wordpunct12_8k",
            "word+punctuation 1-2 grams pruned to 8,000, binary tf-idf, sigmoid-calibrated LinearSVC",
            lambda seed: Pipeline(
                [
                    ("tfidf", _tfidf(max_features=8000)),
                    (
                        "clf",
                        CalibratedClassifierCV(LinearSVC(C=0.5, random_state=seed), cv=3),
                    ),
                ]
            ),
            runtime_cost=8,
        ),
    ]


def choose(scores: dict[str, float], candidates: list[Candidate]) -> tuple[Candidate, str]:
    """Pick the best macro-F1; among ties within TIE_TOLERANCE, the cheapest. Says why."""
    best = max(scores.values())
    tied = [c for c in candidates if scores[c.name] >= best - TIE_TOLERANCE]
    chosen = min(tied, key=lambda c: (c.runtime_cost, -scores[c.name]))
    leader = max(candidates, key=lambda c: scores[c.name])
    if chosen is leader:
        why = f"highest CV macro-F1 ({best:.4f})"
    else:
        why = (
            f"CV macro-F1 {scores[chosen.name]:.4f} is within {TIE_TOLERANCE} of the best "
            f"({leader.name}, {best:.4f}) at a lower inference cost"
        )
    return chosen, why
