"""`python -m training.experiments`: score candidate specs by repository-grouped cross-validation
on the real TRAIN rows (never the real test split), fast enough for a shared 2-core machine.

Every spec is a word and/or character n-gram FeatureUnion in front of a multinomial
LogisticRegression: what training/export.py turns into one ONNX graph (binary, idf,
L2-normalised blocks). Specs differ in n-gram ranges, vocabulary sizes, min_df, the
regularisation C, class_weight, the fitting weight of each row origin (authored, verbatim,
style_rewrite) and the truncation budget. A few specs the exporter cannot take (sublinear tf,
a LinearSVC) are scored too, marked ``exportable=False``, to say what they would buy.

Folds are train.py's: StratifiedGroupKFold(5, shuffle, seed 42) over authored train rows
(each its own group) and real train rows (grouped by repository). Each block's features are
fitted on the fold's training rows only and cached per (block, truncation, fold), so a grid
over C, class_weight and weights refits only the classifier.

Reported per spec, on the real train rows' out-of-fold predictions: macro-F1 (and its std over
folds), macro-F1 of the clear (not ambiguous) rows, accuracy, and the operating point train.py
would pick (temperature fitted on these OOF rows, lowest threshold whose kept share reaches
0.90 accuracy): its threshold, escalation share and kept accuracy. ``conv`` is the macro-F1
with the serving conversation rule (routing/conversation.py, default ConversationRule) applied
to rows that carry ``context``: a short follow-up is mixed with the prediction of its earlier
turns, as /v1/route does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from intent_router.config import ConversationRule
from intent_router.labels import INTENTS
from intent_router.model_contract import TruncationPolicy
from intent_router.thresholds import recommend_threshold, risk_coverage
from training.calibration import fit_temperature, scale
from training.candidates import AUTHORED, STYLE_REWRITE, VERBATIM
from training.export import WORD_PATTERN, WORD_PUNCT_PATTERN
from training.features import CharNgrams

LABELS: list[str] = sorted(INTENTS)
SEED = 42
FOLDS = 5
#: Latest-turn weights tried for follow-ups (serving default 0.6; 1.0: the latest turn alone,
#: 0.0: the earlier turns alone).
CONVERSATION_WEIGHTS = (1.0, 0.6, 0.5, 0.4, 0.2, 0.0)
#: The serving default conversation rule (routing/conversation.py).
SERVING_RULE = ConversationRule()
RESULTS_FILE = Path("/tmp/intent-router-experiments.jsonl")
#: Fold features on disk (scratch, outside the repository), keyed by block, rows and folds.
CACHE_DIR = Path("/tmp/intent-router-experiments-cache")


@dataclass(frozen=True)
class Block:
    """One TfidfVectorizer of the FeatureUnion: word n-grams (RE2-safe token pattern) or the
    graph's character n-grams (training.features.CharNgrams)."""

    kind: str  # "word" or "char"
    ngram: tuple[int, int]
    max_features: int | None
    min_df: int
    punct: bool = False  # word blocks: WORD_PUNCT_PATTERN instead of WORD_PATTERN
    sublinear: bool = False  # not exported: sublinear tf instead of binary

    def vectorizer(self) -> TfidfVectorizer:
        common: dict[str, Any] = {
            "max_features": self.max_features,
            "min_df": self.min_df,
            "dtype": np.float32,
            "binary": not self.sublinear,
            "sublinear_tf": self.sublinear,
        }
        if self.kind == "char":
            return TfidfVectorizer(analyzer=CharNgrams(self.ngram), **common)
        if self.kind != "word":
            raise ValueError(f"unknown block kind {self.kind!r}")
        pattern = WORD_PUNCT_PATTERN if self.punct else WORD_PATTERN
        return TfidfVectorizer(
            token_pattern=pattern, lowercase=True, ngram_range=self.ngram, **common
        )

    @property
    def exportable(self) -> bool:
        return not self.sublinear


@dataclass(frozen=True)
class VectorBlock:
    """Pretrained vectors as a dense block (training/word_vectors.py): ``wordvec``, the mean of
    the prompt's words' wordllama vectors (exportable by plan: a MatMul on the word keys, not
    by export.py today), or ``textvec``, wordllama's own full-text embedding (reference only)."""

    kind: str  # "wordvec" or "textvec"
    max_words: int | None = 50_000
    min_df: int = 1
    idf: bool = True
    generic: bool = True  # wordvec: also the tokenizer's whole-word pieces unseen in training
    scale: float = 1.0
    norm: str = "l2"  # wordvec: "l2", or "mean" (foldable into a vocabulary x 7 table)
    dims: int | None = None  # wordvec: the first dims of the (matryoshka) vectors

    def vectorizer(self) -> Any:
        from training.word_vectors import TextVectors, WordVectorMean

        if self.kind == "wordvec":
            return WordVectorMean(  # the table loads on fit
                None,
                self.max_words,
                self.min_df,
                self.idf,
                self.generic,
                self.scale,
                self.norm,
                self.dims,
            )
        if self.kind == "textvec":
            return TextVectors(scale=self.scale)
        raise ValueError(f"unknown vector block kind {self.kind!r}")

    @property
    def exportable(self) -> bool:
        return False


@dataclass(frozen=True)
class Spec:
    """A candidate: feature blocks, classifier settings, row weights by origin, truncation."""

    name: str
    blocks: tuple[Block | VectorBlock, ...]
    c: float = 20.0
    class_weight: str | None = None
    authored: float = 1.0
    verbatim: float = 3.0
    style_rewrite: float = 3.0
    head: int = 1500
    tail: int = 1000
    classifier: str = "lr"  # "lr", or "svm": candidates.SvmSoftmax (a LinearSVC's margins)
    solver: str = "newton-cg"  # same optimum as lbfgs here, ~10x fewer seconds
    follow_up: float = 1.0  # extra factor on real follow-up rows (serving mixes in context)
    ambiguous: float = 1.0  # extra factor on real rows labelled ambiguous
    alt_copy: float = 0.0  # > 0: each ambiguous row also trains as its alt_intent, this weight
    block_weights: tuple[float, ...] | None = None  # scale of each L2-normalised block
    #: learning curve: the share of each fold's real train REPOSITORIES kept (authored rows
    #: always), drawn by ``subsample_seed`` (see subsample_folds)
    real_fraction: float = 1.0
    subsample_seed: int = 0

    @property
    def exportable(self) -> bool:
        """What training/export.py takes as it stands (block weights fold into the
        coefficients, but the exporter refuses FeatureUnion transformer_weights today)."""
        return (
            self.classifier in ("lr", "svm")
            and all(b.exportable for b in self.blocks)
            and self.block_weights is None
        )

    def weights(self, origins: Sequence[str], follow_ups: Sequence[int] = ()) -> np.ndarray:
        """Each row's fitting weight by origin; rows ``follow_ups`` also times ``follow_up``."""
        table = {
            AUTHORED: self.authored,
            VERBATIM: self.verbatim,
            STYLE_REWRITE: self.style_rewrite,
        }
        weights = np.array([table[o] for o in origins], dtype=np.float64)
        weights[list(follow_ups)] *= self.follow_up
        return weights

    def policy(self) -> TruncationPolicy:
        return TruncationPolicy(self.head, self.tail)

    def classifier_model(self, seed: int = SEED) -> Any:
        if self.classifier == "lr":
            return LogisticRegression(
                C=self.c,
                class_weight=self.class_weight,
                max_iter=3000,
                solver=self.solver,
                random_state=seed,
            )
        if self.classifier == "svm":
            from training.candidates import SvmSoftmax

            if self.class_weight is not None:
                raise ValueError("the svm classifier takes no class_weight")
            return SvmSoftmax(C=self.c, max_iter=5000, random_state=seed)
        raise ValueError(f"unknown classifier {self.classifier!r}")

    def pipeline(self, seed: int = SEED) -> Pipeline:
        """The scikit-learn pipeline this spec scores (what candidates.py would build)."""
        union = FeatureUnion([(f"{b.kind}{i}", b.vectorizer()) for i, b in enumerate(self.blocks)])
        return Pipeline([("features", union), ("clf", self.classifier_model(seed))])


@dataclass(frozen=True)
class Data:
    """Authored train rows then real train rows, with CV groups and what each real row is."""

    texts: list[str]  # raw (untruncated)
    intents: np.ndarray
    groups: list[str]
    origins: list[str]
    is_real: np.ndarray
    ambiguous: np.ndarray
    contexts: list[list[str]]
    repos: list[str]
    ids: list[str]
    alt_intents: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)


def load_data() -> Data:
    """authored data/train.jsonl + the real corpus's train side by data/real_split.json."""
    from training.dataset import TRAIN_FILE, load_prompts
    from training.real_corpus import REAL_DIR
    from training.real_split import load_split_rows

    authored = load_prompts(TRAIN_FILE, "text", "intent")
    real, _test = load_split_rows(REAL_DIR)  # the test rows are dropped here, unread
    return make_data(list(authored.texts), list(authored.intents), real)


def make_data(
    authored_texts: Sequence[str], authored_intents: Sequence[str], real: Sequence[dict[str, Any]]
) -> Data:
    n = len(authored_texts)
    return Data(
        texts=[*authored_texts, *(r["text"] for r in real)],
        intents=np.array([*authored_intents, *(r["intent"] for r in real)]),
        groups=[f"authored:{i}" for i in range(n)] + [f"repo:{r['source_repo']}" for r in real],
        origins=[AUTHORED] * n + [r.get("origin") or VERBATIM for r in real],
        is_real=np.array([False] * n + [True] * len(real)),
        ambiguous=np.array([False] * n + [bool(r.get("ambiguous")) for r in real]),
        contexts=[[] for _ in range(n)] + [list(r.get("context") or []) for r in real],
        repos=["authored"] * n + [r["source_repo"] for r in real],
        ids=[f"authored:{i}" for i in range(n)] + [str(r.get("id", "")) for r in real],
        alt_intents=[None] * n
        + [r.get("alt_intent") if r.get("ambiguous") else None for r in real],
    )


def folds_of(
    data: Data, folds: int = FOLDS, seed: int = SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    """train.py's folds: whole repositories on one side."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(data.texts, data.intents, data.groups))


def subsample_folds(
    data: Data, folds: list[tuple[np.ndarray, np.ndarray]], fraction: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The learning curve's folds: in each fold keep ``fraction`` of the real train
    REPOSITORIES (whole repositories, at least one; drawn by a permutation seeded by (seed,
    fold), so a smaller fraction keeps a subset of a larger one) and every authored row; the
    held-out rows are unchanged, so every fraction is scored on the same rows."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not in (0, 1]")
    if fraction == 1.0:
        return folds
    out = []
    for k, (train, held) in enumerate(folds):
        repos = sorted({data.repos[i] for i in train if data.is_real[i]})
        order = np.random.default_rng([seed, k]).permutation(len(repos))
        kept = {repos[j] for j in order[: max(1, round(fraction * len(repos)))]}
        keep = np.array([not data.is_real[i] or data.repos[i] in kept for i in train], dtype=bool)
        out.append((train[keep], held))
    return out


def earlier_texts(data: Data, rule: ConversationRule = SERVING_RULE) -> dict[int, str]:
    """Row index -> the earlier turns the serving rule would classify with it (follow-ups only)."""
    from intent_router.routing.conversation import select_turns

    out = {}
    for i, (text, context) in enumerate(zip(data.texts, data.contexts)):
        if context:
            selection = select_turns([*context, text], rule)
            if selection.earlier:
                out[i] = selection.earlier
    return out


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _pruned_tfidf(counts, min_df: int, max_features: int | None):
    """What a binary, smooth-idf, L2 TfidfVectorizer(min_df, max_features) gives, from the
    full-vocabulary binary counts: scikit-learn's _limit_features (document frequency >= min_df,
    then the max_features most frequent, ties as its argsort breaks them) and TfidfTransformer."""
    from sklearn.preprocessing import normalize

    x_train, x_held, x_ctx = counts
    dfs = np.bincount(x_train.indices, minlength=x_train.shape[1])
    mask = dfs >= min_df
    if max_features is not None and mask.sum() > max_features:
        tfs = np.asarray(x_train.sum(axis=0)).ravel()
        order = (-tfs[mask]).argsort()[:max_features]
        kept = np.zeros(len(dfs), dtype=bool)
        kept[np.where(mask)[0][order]] = True
        mask = kept
    columns = np.where(mask)[0]
    df = dfs[columns].astype(x_train.dtype) + 1
    idf = (np.log((x_train.shape[0] + 1) / df) + 1).astype(x_train.dtype)
    weight = sp.diags(idf, format="csr")
    return tuple(
        normalize((x[:, columns] @ weight).tocsr(), norm="l2", copy=False)
        if x.shape[0]
        else sp.csr_matrix((0, len(columns)), dtype=x_train.dtype)
        for x in (x_train, x_held, x_ctx)
    )


class FeatureCache:
    """Per (block, truncation, fold): the block's features of the fold's train rows, its
    held-out rows, and the held-out follow-ups' earlier turns."""

    def __init__(
        self,
        data: Data,
        folds: list[tuple[np.ndarray, np.ndarray]],
        earlier: dict[int, str],
        disk: Path | None = None,
    ) -> None:
        self.data, self.folds, self.earlier, self.disk = data, folds, earlier, disk
        # what the cached matrices depend on besides the block: rows, folds, follow-ups
        self.fingerprint = _digest(
            json.dumps(
                [
                    data.texts,
                    data.intents.tolist(),
                    [h.tolist() for _, h in folds],
                    sorted(earlier.items()),
                ]
            )
        )
        self._cache: dict[tuple, tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]] = {}
        self._texts: dict[tuple[int, int], list[str]] = {}

    def texts(self, head: int, tail: int) -> list[str]:
        key = (head, tail)
        if key not in self._texts:
            policy = TruncationPolicy(head, tail)
            self._texts[key] = [policy.apply(t) for t in self.data.texts]
        return self._texts[key]

    def block(self, block: Block, head: int, tail: int, fold: int):
        """The block's (train, held-out, held-out follow-ups' earlier turns) features: what
        ``block.vectorizer()`` fitted on the fold's train rows gives. Binary blocks are pruned
        (min_df, max_features) from one full-vocabulary count of their analyzer, as
        scikit-learn prunes, so a vocabulary-size grid counts n-grams once."""
        key = (block, head, tail, fold)
        if key not in self._cache:
            if isinstance(block, VectorBlock) or block.sublinear:
                self._cache[key] = self._fitted(block, head, tail, fold)
            else:
                full = self._stored(
                    ("counts", replace(block, min_df=1, max_features=None), head, tail, fold),
                    lambda: self._counts(block, head, tail, fold),
                )
                self._cache[key] = _pruned_tfidf(full, block.min_df, block.max_features)
        return self._cache[key]

    def _stored(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self._cache:
            return self._cache[key]
        path = (
            self.disk / f"{_digest(repr(key), self.fingerprint)}.joblib"
            if self.disk is not None
            else None
        )
        if path is not None and path.exists():
            value = joblib.load(path)
        else:
            value = compute()
            if path is not None:
                self.disk.mkdir(parents=True, exist_ok=True)
                joblib.dump(value, path)
        self._cache[key] = value
        return value

    def _rows(self, head: int, tail: int, fold: int) -> tuple[list[str], list[str], list[str]]:
        texts = self.texts(head, tail)
        train, held = self.folds[fold]
        policy = TruncationPolicy(head, tail)
        earlier = [policy.apply(self.earlier[i]) for i in held if i in self.earlier]
        return [texts[i] for i in train], [texts[i] for i in held], earlier

    def _counts(self, block: Block, head: int, tail: int, fold: int):
        """Binary n-gram presence over the fold's full train vocabulary (sorted, as
        scikit-learn sorts it), for the three row sets."""
        counter = replace(block, min_df=1, max_features=None).vectorizer()
        counter = CountVectorizer(
            **{k: v for k, v in counter.get_params().items() if k in CountVectorizer().get_params()}
        )
        train, held, earlier = self._rows(head, tail, fold)
        x_train = counter.fit_transform(train).tocsr()
        x_held = counter.transform(held).tocsr()
        x_ctx = (
            counter.transform(earlier).tocsr()
            if earlier
            else sp.csr_matrix((0, x_train.shape[1]), dtype=np.float32)
        )
        return x_train, x_held, x_ctx

    def _fitted(self, block: Block | VectorBlock, head: int, tail: int, fold: int):
        train, held, earlier = self._rows(head, tail, fold)
        vectorizer = block.vectorizer()
        x_train = vectorizer.fit_transform(train).tocsr()
        x_held = vectorizer.transform(held).tocsr()
        x_ctx = (
            vectorizer.transform(earlier).tocsr()
            if earlier
            else sp.csr_matrix((0, x_train.shape[1]), dtype=np.float32)
        )
        return x_train, x_held, x_ctx

    def fold(self, spec: Spec, fold: int):
        parts = [self.block(b, spec.head, spec.tail, fold) for b in spec.blocks]
        scales = spec.block_weights or (1.0,) * len(parts)
        return tuple(
            sp.hstack([p[k] * w for p, w in zip(parts, scales)], format="csr") for k in range(3)
        )


@dataclass
class Result:
    """A spec's out-of-fold scores on the real train rows."""

    name: str
    exportable: bool
    macro_f1: float
    macro_f1_std: float
    clear_f1: float
    ambiguous_f1: float
    accuracy: float
    conv_f1: float
    temperature: float
    threshold: float
    escalation: float
    kept_accuracy: float
    seconds: float
    spec: dict[str, Any] = field(default_factory=dict)
    #: latest-turn weight -> macro-F1 and follow-up accuracy with the serving mix at it
    conversation: dict[str, dict[str, float]] = field(default_factory=dict)
    fold_f1: list[float] = field(default_factory=list)  # real-row macro-F1 per fold
    real_train_rows: float = 0.0  # real rows each fold trained on, mean over folds

    def line(self) -> str:
        flag = "" if self.exportable else " (not exported)"
        return (
            f"{self.name:<40} F1 {self.macro_f1:.4f} ±{self.macro_f1_std:.3f}  clear "
            f"{self.clear_f1:.4f}  amb {self.ambiguous_f1:.4f}  acc {self.accuracy:.4f}  conv "
            f"{self.conv_f1:.4f}  T {self.temperature:.2f} thr {self.threshold:.2f} esc "
            f"{self.escalation:.3f} kept {self.kept_accuracy:.3f}  {self.seconds:.0f}s{flag}"
        )


def _probabilities(model: Any, x: sp.csr_matrix) -> np.ndarray:
    return model.predict_proba(x)  # SvmSoftmax: softmax of the margins (T fitted later)


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(f1_score(truth, predicted, labels=LABELS, average="macro", zero_division=0))


def run_spec(
    spec: Spec, cache: FeatureCache, rule: ConversationRule = SERVING_RULE
) -> tuple[Result, np.ndarray]:
    """Cross-validate ``spec``; its Result and the OOF probabilities of every row (and of the
    follow-ups' earlier turns, mixed in by ``rule`` for ``conv``)."""
    start = time.perf_counter()
    data = cache.data
    oof = np.zeros((len(data), len(LABELS)))
    oof_ctx: dict[int, np.ndarray] = {}
    fold_f1 = []
    weights = spec.weights(
        data.origins,
        [i for i in cache.earlier if len(data.texts[i].strip()) <= rule.follow_up_max_chars],
    )
    weights[data.ambiguous] *= spec.ambiguous
    for k, (train, held) in enumerate(cache.folds):
        x_train, x_held, x_ctx = cache.fold(spec, k)
        y_train, w_train = data.intents[train], weights[train]
        if spec.alt_copy > 0:
            alt = [j for j, i in enumerate(train) if data.alt_intents[i]]
            x_train = sp.vstack([x_train, x_train[alt]], format="csr")
            y_train = np.concatenate([y_train, [data.alt_intents[train[j]] for j in alt]])
            w_train = np.concatenate([w_train, w_train[alt] * spec.alt_copy])
        model = spec.classifier_model().fit(x_train, y_train, sample_weight=w_train)
        if list(model.classes_) != LABELS:
            raise ValueError(f"fold {k} lacks a label: {model.classes_}")
        oof[held] = _probabilities(model, x_held)
        ctx_rows = [i for i in held if i in cache.earlier]
        if ctx_rows:
            for i, p in zip(ctx_rows, _probabilities(model, x_ctx)):
                oof_ctx[i] = p
        real_held = held[data.is_real[held]]
        fold_f1.append(
            macro_f1(data.intents[real_held], np.array(LABELS)[oof[real_held].argmax(axis=1)])
        )
    result = score(spec, data, oof, oof_ctx, fold_f1, rule, time.perf_counter() - start)
    result.real_train_rows = float(np.mean([data.is_real[t].sum() for t, _ in cache.folds]))
    return result, oof


def score(
    spec: Spec,
    data: Data,
    oof: np.ndarray,
    oof_ctx: dict[int, np.ndarray],
    fold_f1: list[float],
    rule: ConversationRule,
    seconds: float,
) -> Result:
    real = data.is_real
    truth = data.intents[real]
    calibration = fit_temperature(list(truth), oof[real], LABELS)
    calibrated = scale(oof, calibration.temperature)
    predicted = np.array(LABELS)[calibrated.argmax(axis=1)]
    clear = real & ~data.ambiguous
    ambiguous = real & data.ambiguous
    curve = risk_coverage(list(truth), calibrated[real], LABELS)
    threshold = recommend_threshold(curve)
    point = next(p for p in curve if p.threshold == threshold)
    mixed = calibrated.copy()
    for i, p in oof_ctx.items():
        if len(data.texts[i].strip()) <= rule.follow_up_max_chars:
            mixed[i] = (
                rule.latest_weight * calibrated[i]
                + (1 - rule.latest_weight) * scale(p[None, :], calibration.temperature)[0]
            )
    conv_predicted = np.array(LABELS)[mixed.argmax(axis=1)]
    follow = [
        i for i in oof_ctx if len(data.texts[i].strip()) <= rule.follow_up_max_chars and real[i]
    ]
    by_weight = {}
    for weight in CONVERSATION_WEIGHTS:
        varied = calibrated.copy()
        for i in follow:
            varied[i] = (
                weight * calibrated[i]
                + (1 - weight) * scale(oof_ctx[i][None, :], calibration.temperature)[0]
            )
        labels_v = np.array(LABELS)[varied.argmax(axis=1)]
        by_weight[f"{weight:g}"] = {
            "macro_f1": macro_f1(truth, labels_v[real]),
            "follow_up_accuracy": float(np.mean([labels_v[i] == data.intents[i] for i in follow]))
            if follow
            else 0.0,
            "follow_ups": len(follow),
        }
    return Result(
        name=spec.name,
        exportable=spec.exportable,
        macro_f1=macro_f1(truth, predicted[real]),
        macro_f1_std=float(np.std(fold_f1)),
        clear_f1=macro_f1(data.intents[clear], predicted[clear]),
        ambiguous_f1=macro_f1(data.intents[ambiguous], predicted[ambiguous]),
        accuracy=float((predicted[real] == truth).mean()),
        conv_f1=macro_f1(truth, conv_predicted[real]),
        temperature=calibration.temperature,
        threshold=threshold,
        escalation=1.0 - point.coverage,
        kept_accuracy=point.accuracy,
        seconds=seconds,
        spec=_spec_dict(spec),
        conversation=by_weight,
        fold_f1=[round(f, 4) for f in fold_f1],
    )


def _spec_dict(spec: Spec) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(spec)))


# --- the grids ----------------------------------------------------------------------------

WORD12_20K = Block("word", (1, 2), 20_000, 2)
CHAR24_20K = Block("char", (2, 4), 20_000, 3)
#: The candidate `make train` ships today (lr_word12_char24_20k_real3).
SHIPPED = Spec("shipped_word12_char24_20k_real3", (WORD12_20K, CHAR24_20K))


def _grid_weights() -> list[Spec]:
    out = []
    for verbatim, rewrite in [(1, 1), (2, 2), (5, 5), (8, 8), (3, 1), (5, 3), (3, 5)]:
        out.append(
            replace(
                SHIPPED, name=f"w_v{verbatim}_r{rewrite}", verbatim=verbatim, style_rewrite=rewrite
            )
        )
    out.append(
        replace(SHIPPED, name="w_authored0_real1", authored=0.0, verbatim=1, style_rewrite=1)
    )
    return out


def _grid_c() -> list[Spec]:
    return [replace(SHIPPED, name=f"c{c:g}", c=c) for c in (5, 10, 50, 100)]


def _grid_balanced() -> list[Spec]:
    return [replace(SHIPPED, name=f"balanced_c{c:g}", c=c, class_weight="balanced") for c in (20,)]


def _grid_features() -> list[Spec]:
    word = WORD12_20K
    char = CHAR24_20K
    blocks = {  # new analyzers first; the rest prune the shipped analyzers' counts
        "word12_20k_char25_30k": (word, Block("char", (2, 5), 30_000, 3)),
        "word12_20k_char35_30k": (word, Block("char", (3, 5), 30_000, 3)),
        "word12_20k_char14_20k": (word, Block("char", (1, 4), 20_000, 3)),
        "word13_30k_char24_20k": (Block("word", (1, 3), 30_000, 2), char),
        "wordpunct12_20k_char24_20k": (replace(word, punct=True), char),
        "word12_10k_char24_10k": (
            replace(word, max_features=10_000),
            replace(char, max_features=10_000),
        ),
        "word12_30k_char24_30k": (
            replace(word, max_features=30_000),
            replace(char, max_features=30_000),
        ),
        "word12_mindf1_char24_mindf1": (replace(word, min_df=1), replace(char, min_df=1)),
        "word12_mindf3_char24_mindf5": (replace(word, min_df=3), replace(char, min_df=5)),
        "word12_only_20k": (word,),
        "char24_only_20k": (char,),
    }
    return [replace(SHIPPED, name=name, blocks=b) for name, b in blocks.items()]


def _grid_truncation() -> list[Spec]:
    return [
        replace(SHIPPED, name=f"trunc_{h}_{t}", head=h, tail=t)
        for h, t in [(500, 300), (1000, 500), (800, 0), (2500, 1500)]
    ]


def _grid_unexported() -> list[Spec]:
    sub = (replace(WORD12_20K, sublinear=True), replace(CHAR24_20K, sublinear=True))
    return [
        replace(SHIPPED, name="sublinear_word12_char24_20k", blocks=sub),
        *(
            replace(SHIPPED, name=f"linearsvc_c{c:g}", classifier="svm", c=c)
            for c in (0.5, 0.2, 0.1, 0.05, 0.03)
        ),
        replace(SHIPPED, name="shipped_lbfgs", solver="lbfgs"),
    ]


def _grid_follow_ups() -> list[Spec]:
    return [replace(SHIPPED, name=f"follow_up_x{w:g}", follow_up=w) for w in (0.0,)]


def _grid_noise() -> list[Spec]:
    """Ambiguous rows: weigh them less, or let them also teach their second label."""
    return [
        replace(SHIPPED, name="ambiguous_x0.5", ambiguous=0.5),
        replace(SHIPPED, name="ambiguous_x0.25", ambiguous=0.25),
        replace(SHIPPED, name="alt_copy_0.5", alt_copy=0.5),
    ]


def _grid_block_weights() -> list[Spec]:
    return [
        replace(SHIPPED, name=f"blocks_word{w:g}_char{c:g}", block_weights=(w, c))
        for w, c in [(1.0, 0.6), (1.0, 1.5)]
    ]


#: The learning curve's shares of real train repositories, and its draws per share.
CURVE_FRACTIONS = (0.25, 0.5, 0.75)
CURVE_SEEDS = (1, 2, 3)


def _grid_learning_curve() -> list[Spec]:
    """The shipped spec on 25/50/75% of each fold's real train repositories (3 draws each),
    and on all of them: see learning_curve()."""
    out = [
        replace(
            SHIPPED,
            name=f"curve_{round(f * 100)}pct_seed{s}",
            real_fraction=f,
            subsample_seed=s,
        )
        for f in CURVE_FRACTIONS
        for s in CURVE_SEEDS
    ]
    return [*out, replace(SHIPPED, name="curve_100pct")]


WORDVEC = VectorBlock("wordvec")


def _grid_word_vectors() -> list[Spec]:
    """wordllama word vectors (training/word_vectors.py; build its tables first): the block
    alone, appended to the shipped blocks at several scales (a larger scale is a weaker
    penalty on the 256 dense columns), plain mean, train words only; and wordllama's own text
    embedding for reference (not exportable)."""
    shipped = SHIPPED.blocks
    return [
        replace(SHIPPED, name="wordvec_alone", blocks=(WORDVEC,)),
        *(
            replace(
                SHIPPED,
                name=f"shipped_wordvec_x{w:g}",
                blocks=(*shipped, replace(WORDVEC, scale=w)),
            )
            for w in (0.25, 0.35, 0.5, 0.7, 1.0, 2.0)
        ),
        *(
            replace(
                SHIPPED,
                name=f"shipped_wordvec_plain_x{w:g}",
                blocks=(*shipped, replace(WORDVEC, idf=False, scale=w)),
            )
            for w in (0.35, 0.5)
        ),
        replace(
            SHIPPED,
            name="shipped_wordvec_plain_mean_x0.5",
            blocks=(*shipped, replace(WORDVEC, idf=False, norm="mean", scale=0.5)),
        ),
        replace(
            SHIPPED,
            name="shipped_wordvec_trainwords_x0.5",
            blocks=(*shipped, replace(WORDVEC, generic=False, scale=0.5)),
        ),
        *(
            replace(
                SHIPPED,
                name=f"shipped_wordvec_mean_x{w:g}",
                blocks=(*shipped, replace(WORDVEC, norm="mean", scale=w)),
            )
            for w in (0.35, 0.5)
        ),
        *(
            replace(
                SHIPPED,
                name=f"shipped_wordvec_d{d}_x0.5",
                blocks=(*shipped, replace(WORDVEC, dims=d, scale=0.5)),
            )
            for d in (64, 128)
        ),
        *(  # smaller tables: train words only, the most frequent ones, fewer dimensions
            replace(
                SHIPPED,
                name=f"shipped_wordvec_train{n // 1000}k_d{d}_x0.35",
                blocks=(
                    *shipped,
                    replace(WORDVEC, generic=False, max_words=n, dims=d, scale=0.35),
                ),
            )
            for n, d in ((10_000, 128), (20_000, 256))
        ),
        replace(SHIPPED, name="textvec_alone", blocks=(VectorBlock("textvec"),)),
        *(
            replace(
                SHIPPED,
                name=f"shipped_textvec_x{w:g}",
                blocks=(*shipped, VectorBlock("textvec", scale=w)),
            )
            for w in (0.35, 0.5)
        ),
    ]


GRIDS: dict[str, Callable[[], list[Spec]]] = {
    "learning_curve": _grid_learning_curve,
    "word_vectors": _grid_word_vectors,
    "noise": _grid_noise,
    "block_weights": _grid_block_weights,
    "follow_ups": _grid_follow_ups,
    "shipped": lambda: [SHIPPED],
    "weights": _grid_weights,
    "c": _grid_c,
    "balanced": _grid_balanced,
    "features": _grid_features,
    "truncation": _grid_truncation,
    "unexported": _grid_unexported,
}


def run(
    specs: Sequence[Spec],
    data: Data,
    folds: int = FOLDS,
    results_file: Path | None = RESULTS_FILE,
    cache_dir: Path | None = None,
    diagnose_each: bool = False,
    test_split: bool = False,
    fold_seed: int = SEED,
) -> list[Result]:
    """Score ``specs`` on the same folds and print one line each as it finishes."""
    split = folds_of(data, folds, fold_seed)
    rule = ConversationRule()
    earlier = earlier_texts(data, rule)
    caches: dict[tuple[float, int], FeatureCache] = {}
    results = []
    for spec in specs:
        draw = (spec.real_fraction, spec.subsample_seed if spec.real_fraction < 1 else 0)
        if draw not in caches:  # a subsampled draw serves one spec: no disk cache for it
            caches = {  # one draw's features in memory at a time
                draw: FeatureCache(
                    data,
                    subsample_folds(data, split, *draw),
                    earlier,
                    cache_dir if draw[0] == 1.0 else None,
                )
            }
        cache = caches[draw]
        result, oof = run_spec(spec, cache, rule)
        results.append(result)
        print(result.line(), flush=True)
        print(f"  per fold: {result.fold_f1}", flush=True)
        if diagnose_each:
            print(diagnose(spec, data, oof), flush=True)
            print(
                "Follow-ups (serving rule, latest-turn weight -> real macro-F1, follow-up "
                "accuracy): "
                + "; ".join(
                    f"{w}: {v['macro_f1']:.4f}, {v['follow_up_accuracy']:.3f} of {v['follow_ups']}"
                    for w, v in result.conversation.items()
                ),
                flush=True,
            )
        if test_split:
            print(score_test_split(spec, data, result), flush=True)
        if results_file is not None:
            with results_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(result)) + "\n")
    return results


def table(results: Sequence[Result], top: int | None = None) -> str:
    """A markdown table of ``results``, best CV macro-F1 first."""
    rows = sorted(results, key=lambda r: -r.macro_f1)[:top]
    head = (
        "| spec | CV macro-F1 | std | clear F1 | ambiguous F1 | accuracy | with conversation "
        "rule | T | threshold | escalation | kept acc | exported |\n|" + "---|" * 12
    )
    lines = [
        f"| {r.name} | {r.macro_f1:.4f} | {r.macro_f1_std:.3f} | {r.clear_f1:.4f} | "
        f"{r.ambiguous_f1:.4f} | {r.accuracy:.4f} | {r.conv_f1:.4f} | {r.temperature:.2f} | "
        f"{r.threshold:.2f} | {r.escalation:.3f} | {r.kept_accuracy:.3f} | "
        f"{'yes' if r.exportable else 'no'} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


@dataclass(frozen=True)
class CurvePoint:
    fraction: float
    real_rows: float  # mean real rows a fold trained on
    macro_f1: float  # mean over draws
    spread: float  # max - min over draws
    draws: int


def learning_curve(results: Sequence[Result]) -> list[CurvePoint]:
    """Results of the learning-curve grid, one point per share of real repositories."""
    by_fraction: dict[float, list[Result]] = {}
    for r in results:
        by_fraction.setdefault(float(r.spec.get("real_fraction", 1.0)), []).append(r)
    return [
        CurvePoint(
            fraction=f,
            real_rows=float(np.mean([r.real_train_rows for r in rs])),
            macro_f1=float(np.mean([r.macro_f1 for r in rs])),
            spread=float(max(r.macro_f1 for r in rs) - min(r.macro_f1 for r in rs)),
            draws=len(rs),
        )
        for f, rs in sorted(by_fraction.items())
    ]


def rows_needed(points: Sequence[CurvePoint], target: float) -> tuple[float, float, float]:
    """Fit macro-F1 = a + b * ln(real rows) by least squares over the points; return (a, b,
    the real rows the line reaches ``target`` at; inf if it does not rise)."""
    x = np.log([p.real_rows for p in points])
    y = np.array([p.macro_f1 for p in points])
    b, a = np.polyfit(x, y, 1)
    rows = float(np.exp((target - a) / b)) if b > 0 else float("inf")
    return float(a), float(b), rows


def curve_table(results: Sequence[Result], targets: Sequence[float] = (0.70, 0.80)) -> str:
    points = learning_curve(results)
    lines = [
        "| real repositories | real rows per fold | CV macro-F1 (mean) | spread over draws | "
        "draws |",
        "|---|---|---|---|---|",
        *(
            f"| {p.fraction:.0%} | {p.real_rows:.0f} | {p.macro_f1:.4f} | {p.spread:.4f} | "
            f"{p.draws} |"
            for p in points
        ),
    ]
    if len(points) >= 2:
        a, b, _ = rows_needed(points, targets[0])
        lines.append(f"\nFit: macro-F1 = {a:.4f} + {b:.4f} ln(real rows)")
        for t in targets:
            lines.append(f"- {t:.2f} at about {rows_needed(points, t)[2]:,.0f} real rows")
    return "\n".join(lines)


def score_test_split(spec: Spec, data: Data, result: Result) -> str:
    """Fit ``spec`` on every train row, then score the real TEST split once, at the temperature
    and threshold its cross-validation chose (``result``): for the final choice only."""
    from training.real_corpus import REAL_DIR
    from training.real_split import load_split_rows
    from training.split_report import HeldOut, report_split

    if spec.follow_up != 1.0 or spec.block_weights is not None:
        raise ValueError("the test-split fit does not apply follow_up or block_weights")
    if spec.real_fraction != 1.0:
        raise ValueError("the test-split fit trains on every real train row")
    _train, test = load_split_rows(REAL_DIR)
    policy = spec.policy()
    rows = [i for i in range(len(data))]
    weights = spec.weights(data.origins)
    weights[data.ambiguous] *= spec.ambiguous
    texts = [policy.apply(t) for t in data.texts]
    intents = data.intents
    if spec.alt_copy > 0:
        alt = [i for i in rows if data.alt_intents[i]]
        texts += [texts[i] for i in alt]
        intents = np.concatenate([intents, [data.alt_intents[i] for i in alt]])
        weights = np.concatenate([weights, weights[alt] * spec.alt_copy])
    pipeline = spec.pipeline().fit(texts, intents, clf__sample_weight=weights)
    held = HeldOut.real(test, [policy.apply(r["text"]) for r in test])
    probabilities = scale(pipeline.predict_proba(held.texts), result.temperature)
    report = report_split(
        held, probabilities, [str(c) for c in pipeline.classes_], result.threshold
    )
    title = (
        f"{spec.name} on the real test split (T {result.temperature:.3f}, "
        f"threshold {result.threshold:.2f}):"
    )
    return "\n".join([title, *report.lines()])


def diagnose(spec: Spec, data: Data, oof: np.ndarray, worst: int = 12, errors: int = 25) -> str:
    """The OOF confusion matrix on real train rows, per-intent scores, the repositories scored
    worst, and the most confident errors on clear rows (where label noise shows first)."""
    from sklearn.metrics import classification_report, confusion_matrix

    real = np.flatnonzero(data.is_real)
    truth = data.intents[real]
    predicted = np.array(LABELS)[oof[real].argmax(axis=1)]
    short = [label[:6] for label in LABELS]
    matrix = confusion_matrix(truth, predicted, labels=LABELS)
    title = (
        f"## {spec.name}: out-of-fold on {len(real)} real train rows (rows: label, "
        "columns: predicted)"
    )
    out = [title, "", "| label | " + " | ".join(short) + " |", "|---|" + "---|" * len(LABELS)]
    out += [
        f"| {label} | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(LABELS, matrix)
    ]
    out += [
        "",
        "```",
        classification_report(truth, predicted, labels=LABELS, digits=3, zero_division=0),
        "```",
        "",
    ]
    by_repo: dict[str, list[bool]] = {}
    for i, p in zip(real, predicted):
        by_repo.setdefault(data.repos[i], []).append(p == data.intents[i])
    ranked = sorted((sum(v) / len(v), -len(v), repo) for repo, v in by_repo.items() if len(v) >= 5)
    out.append(f"Worst repositories (>= 5 rows), of {len(by_repo)}:")
    out += [f"- {repo}: accuracy {acc:.2f} over {-n} rows" for acc, n, repo in ranked[:worst]]
    confidence = oof[real].max(axis=1)
    wrong = [
        (confidence[k], i, predicted[k])
        for k, i in enumerate(real)
        if predicted[k] != data.intents[i] and not data.ambiguous[i]
    ]
    follow_ups = sum(
        1 for _, i, _ in wrong if data.contexts[i] and len(data.texts[i].strip()) <= 32
    )
    ascii_share = [
        sum(c.isascii() for c in data.texts[i]) / max(len(data.texts[i]), 1) for _, i, _ in wrong
    ]
    heading = (
        f"Most confident errors on clear rows ({len(wrong)} clear errors in all; "
        f"{follow_ups} of them follow-ups of at most 32 characters whose label comes "
        f"from their context (rule 4); {sum(a < 0.8 for a in ascii_share)} mostly "
        "non-ASCII):"
    )
    out += ["", heading]
    for conf, i, pred in sorted(wrong, reverse=True)[:errors]:
        text = " ".join(data.texts[i].split())[:160]
        out.append(
            f"- {data.ids[i]} [{data.origins[i]}] label {data.intents[i]}, predicted "
            f"{pred} ({conf:.2f}): {text!r}"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "grids",
        nargs="*",
        default=["shipped"],
        help=f"which grids to run, of {', '.join(GRIDS)} (default: shipped)",
    )
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument(
        "--fold-seed",
        type=int,
        default=SEED,
        help=f"shuffle of the grouped folds (default {SEED}, train.py's): other seeds say "
        "whether a gain outlasts the draw of the folds",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS_FILE, help="append one JSON line per spec here"
    )
    parser.add_argument("--table", action="store_true", help="print a markdown table at the end")
    parser.add_argument(
        "--no-cache", action="store_true", help=f"do not keep fold features in {CACHE_DIR}"
    )
    parser.add_argument("--only", nargs="*", default=None, help="run only these spec names")
    parser.add_argument(
        "--test-split",
        action="store_true",
        help="after CV, fit each spec on all train rows and score the real test "
        "split once (for the final choice only: never tune on it)",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="for each spec run: OOF confusion matrix, worst repositories, "
        "most confident clear-row errors",
    )
    args = parser.parse_args(argv)
    unknown = [g for g in args.grids if g not in GRIDS]
    if unknown:
        parser.error(f"unknown grid(s) {unknown}; known: {list(GRIDS)}")
    specs = [spec for g in args.grids for spec in GRIDS[g]()]
    if args.only is not None:
        specs = [s for s in specs if s.name in args.only]
    data = load_data()
    print(
        f"{int(data.is_real.sum())} real train rows, {int((~data.is_real).sum())} authored; "
        f"{len(specs)} specs, {args.folds} repository-grouped folds",
        flush=True,
    )
    results = run(
        specs,
        data,
        args.folds,
        args.results,
        None if args.no_cache else CACHE_DIR,
        args.diagnose,
        args.test_split,
        args.fold_seed,
    )
    if args.table:
        print(table(results))
        if "learning_curve" in args.grids:
            print(curve_table([r for r in results if r.name.startswith("curve_")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
