"""The candidate models that `make train` compares by cross-validated macro-F1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from training.export import WORD_PATTERN, WORD_PUNCT_PATTERN
from training.features import CharNgrams

#: Candidates whose CV macro-F1 is within this of the best count as tied; the cheapest wins.
TIE_TOLERANCE = 0.005


#: Where a training row comes from: the authored set, or the real corpus's ``origin``.
AUTHORED, VERBATIM, STYLE_REWRITE = "authored", "verbatim", "style_rewrite"


@dataclass(frozen=True)
class SampleWeights:
    """The fitting weight of a row by origin (authored rows weigh 1)."""

    verbatim: float = 1.0
    style_rewrite: float = 1.0

    def of(self, origins: Sequence[str]) -> np.ndarray:
        table = {AUTHORED: 1.0, VERBATIM: self.verbatim, STYLE_REWRITE: self.style_rewrite}
        return np.array([table[o] for o in origins], dtype=np.float64)

    @property
    def uniform(self) -> bool:
        return self.verbatim == 1.0 and self.style_rewrite == 1.0

    def __str__(self) -> str:
        return f"verbatim x{self.verbatim:g}, style_rewrite x{self.style_rewrite:g}"


@dataclass(frozen=True)
class Candidate:
    """A named pipeline factory, the weights of its training rows by origin, and what it costs
    at inference time (lower is cheaper)."""

    name: str
    description: str
    build: Callable[[int], Pipeline]
    runtime_cost: int
    weights: SampleWeights = field(default_factory=SampleWeights)

    def fit_params(self, origins: Sequence[str]) -> dict[str, np.ndarray]:
        """The ``fit`` parameters that weight the rows (none when every weight is 1)."""
        if self.weights.uniform:
            return {}
        return {f"{self.build(0).steps[-1][0]}__sample_weight": self.weights.of(origins)}

    def params(self, seed: int = 0) -> dict[str, Any]:
        pipeline = self.build(seed)
        return {
            f"{step}.{key}": value
            for step, est in pipeline.steps
            for key, value in est.get_params(deep=True).items()
            if isinstance(value, (int, float, str, bool, tuple, type(None)))
        } | {
            "weight.verbatim": self.weights.verbatim,
            "weight.style_rewrite": self.weights.style_rewrite,
        }


def _tfidf(**overrides: Any) -> TfidfVectorizer:
    params: dict[str, Any] = {
        "token_pattern": WORD_PUNCT_PATTERN,
        "lowercase": True,
        "ngram_range": (1, 2),
        "binary": True,
        "min_df": 2,
        "dtype": np.float32,
    }
    params.update(overrides)
    return TfidfVectorizer(**params)


def _chars(**overrides: Any) -> TfidfVectorizer:
    """Character 2-4 grams as the ONNX graph counts them (training.features)."""
    params: dict[str, Any] = {
        "analyzer": CharNgrams((2, 4)),
        "binary": True,
        "min_df": 3,
        "dtype": np.float32,
    }
    params.update(overrides)
    return TfidfVectorizer(**params)


def _word_char(
    seed: int, c: float = 20.0, word_max: int | None = None, **char_overrides: Any
) -> Pipeline:
    """Word 1-2 grams and character n-grams, each block L2-normalised, into one LR."""
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("word", _tfidf(token_pattern=WORD_PATTERN, max_features=word_max)),
                        ("char", _chars(**char_overrides)),
                    ]
                ),
            ),
            ("clf", _lr(seed, c)),
        ]
    )


#: The LogisticRegression solver. newton-cg reaches the same optimum as lbfgs on these
#: features (repository-grouped CV macro-F1 on real rows 0.6069 vs 0.6060 for the shipped
#: candidate) in 6 iterations instead of 87: a fold's fit took 6.8 s instead of 68 s
#: (`python -m training.experiments`, README "What was tried on real prompts").
SOLVER = "newton-cg"


def _lr(seed: int, c: float = 20.0) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, solver=SOLVER, random_state=seed)


class SvmSoftmax(LogisticRegression):
    """A LinearSVC's hyperplanes, served as a multinomial linear-softmax model.

    ``fit`` trains ``LinearSVC(C)`` (squared hinge, one-vs-rest) and keeps its ``coef_`` and
    ``intercept_``; ``predict_proba`` is LogisticRegression's softmax of the margins. The
    margins are not probabilities until scaled: train.py's temperature, fitted on the
    out-of-fold real rows (about 0.25 here, i.e. margins x4) and folded into ``coef_`` and
    ``intercept_``, makes them calibrated ones. Being a LogisticRegression with coefficients,
    training/export.py's graph and ``fold_temperature`` take it unchanged."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SvmSoftmax:
        svm = LinearSVC(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        svm.fit(X, y, sample_weight=sample_weight)
        self.classes_ = svm.classes_
        self.coef_ = svm.coef_.copy()
        self.intercept_ = svm.intercept_.copy()
        self.n_features_in_ = svm.n_features_in_
        self.n_iter_ = np.array([svm.n_iter_])
        return self


def _svm_softmax(seed: int, c: float) -> SvmSoftmax:
    return SvmSoftmax(C=c, max_iter=5000, random_state=seed)


def default_candidates() -> list[Candidate]:
    """What `make train` compares: today's word model (the baseline) and word 1-2 grams +
    character 2-4 grams, 20,000 each, real rows 3x. The repository-grouped CV of
    `python -m training.experiments` found no weighting (real rows 1x..8x, verbatim or
    rewrites emphasised), C, vocabulary or n-gram range better by more than the fold noise,
    so the others are in ``extra_candidates`` and no longer cost `make train` a CV each."""
    return [
        word_candidates()[0],
        *(c for c in word_char_candidates() if c.name == "lr_word12_char24_20k_real3"),
    ]


def word_char_candidates() -> list[Candidate]:
    """Word + character n-grams with the real rows weighted 1x or 3x (verbatim and rewritten
    together or verbatim only). The vocabularies are pruned to the most frequent n-grams
    because the dense MatMul over them is most of the classify latency (10k + 10k costs about
    what 44k word n-grams did)."""
    word_char = [
        ("lr_word12_char24_10k", 10_000, 3, "word 1-2 grams and character 2-4 grams, 10,000 each"),
        ("lr_word12_char24_20k", 20_000, 5, "word 1-2 grams and character 2-4 grams, 20,000 each"),
    ]
    weightings = [SampleWeights(), SampleWeights(3.0, 3.0), SampleWeights(3.0, 1.0)]
    out = []
    for name, size, cost, description in word_char:
        for weights in weightings if size == 10_000 else weightings[1:2]:
            suffix = (
                ""
                if weights.uniform
                else (
                    f"_real{weights.verbatim:g}"
                    if weights.verbatim == weights.style_rewrite
                    else f"_verbatim{weights.verbatim:g}"
                )
            )
            out.append(
                Candidate(
                    name + suffix,
                    f"{description}, binary tf-idf blocks, LogisticRegression",
                    lambda seed, size=size: _word_char(seed, word_max=size, max_features=size),
                    runtime_cost=cost,
                    weights=weights,
                )
            )
    return out


def svm_softmax_candidates() -> list[Candidate]:
    """The shipped features and weights in front of SvmSoftmax (a LinearSVC, C = 0.1, its
    margins through a softmax calibrated by train.py's temperature). The same graph and cost
    as lr_word12_char24_20k_real3; see the README's experiment grid for its CV."""
    return [
        Candidate(
            "svm_softmax_word12_char24_20k_real3",
            "word 1-2 grams and character 2-4 grams, 20,000 each, binary tf-idf blocks, "
            "LinearSVC (C=0.1) margins through a temperature-calibrated softmax",
            lambda seed: Pipeline(
                [
                    (
                        "features",
                        _word_char(seed, word_max=20_000, max_features=20_000).steps[0][1],
                    ),
                    ("clf", _svm_softmax(seed, 0.1)),
                ]
            ),
            runtime_cost=5,
            weights=SampleWeights(3.0, 3.0),
        )
    ]


def extra_candidates() -> list[Candidate]:
    """Candidates `make train` no longer compares by default: the word-only variants (they
    lost to the word baseline on real rows) and the 10k word + character variants (CV
    0.594-0.603 against 0.607-0.609 for 20k + 20k); each costs a cross-validation."""
    default = {c.name for c in default_candidates()}
    every = [*word_candidates()[1:], *word_char_candidates(), *svm_softmax_candidates()]
    return [c for c in every if c.name not in default]


def word_candidates() -> list[Candidate]:
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
