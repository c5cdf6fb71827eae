"""`make train`: compare candidates, fit the best, evaluate, export to ONNX, check parity,
write models/intent.onnx + models/intent.json, and log it all to MLflow."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from intent_router.exceptions import ModelError
from intent_router.labels import INTENTS
from intent_router.model_contract import ModelMetadata, TruncationPolicy, load_metadata
from training import evaluate as ev
from training.calibration import Calibration, fit_temperature, fold_temperature, scale
from training.calibration import reliability as reliability_of
from training.candidates import AUTHORED, VERBATIM, Candidate, choose, default_candidates
from training.dataset import TEST_FILE, TRAIN_FILE, LabeledPrompts, load_prompts
from training.export import export_pipeline
from training.parity import STRESS_CORPUS, check_parity
from training.real_corpus import REAL_DIR
from training.real_split import SPLIT_FILE, load_split_rows
from training.split_report import HeldOut, SplitReport, report_split

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SEED = 42
CV_FOLDS = 5
#: Folds cross-validated at once (processes): this machine has 2 cores.
CV_JOBS = 2


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Print a stage's name and, when it ends, how long it took."""
    print(f"[train] {name} ...", flush=True)
    start = time.perf_counter()
    yield
    print(f"[train] {name} done in {time.perf_counter() - start:.1f}s", flush=True)


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    metadata: ModelMetadata
    onnx_path: Path
    metadata_path: Path
    registration: str


@dataclass(frozen=True)
class TrainingSet:
    """What the model is fitted on: authored train rows, then real train rows, with the CV
    group of each (a real row's repository; every authored row its own group)."""

    data: LabeledPrompts
    groups: list[str]
    is_real: np.ndarray
    origins: list[str]  # "authored", or a real row's origin ("verbatim", "style_rewrite")


def training_set(
    authored: LabeledPrompts, real_rows: Sequence[dict], policy: TruncationPolicy
) -> TrainingSet:
    texts = [policy.apply(t) for t in [*authored.texts, *(r["text"] for r in real_rows)]]
    intents = list(authored.intents) + [r["intent"] for r in real_rows]
    groups = [f"authored:{i}" for i in range(len(authored))]
    groups += [f"repo:{r['source_repo']}" for r in real_rows]
    is_real = np.array([False] * len(authored) + [True] * len(real_rows))
    origins = [AUTHORED] * len(authored) + [r.get("origin", VERBATIM) for r in real_rows]
    return TrainingSet(LabeledPrompts(texts, intents), groups, is_real, origins)


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold scores of every candidate; ``selection`` is what the choice uses (real rows'
    macro-F1 when there are real rows: they are what the router meets)."""

    overall: dict[str, float]
    real: dict[str, float]
    oof: dict[str, np.ndarray]

    @property
    def selection(self) -> dict[str, float]:
        return self.real or self.overall


def cross_validate(
    candidates: Sequence[Candidate], train_set: TrainingSet, folds: int, seed: int
) -> CrossValidation:
    """Out-of-fold probabilities and macro-F1 for every candidate, on the same folds, grouped
    by repository (no repository's prompts on both sides of a fold).

    The folds run in parallel (``CV_JOBS`` processes); in a fold, candidates that share a
    feature step (the same vectorizers, e.g. one model under several sample weightings) share
    one fitted copy of it, so each fold vectorizes its texts once per distinct feature step."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    data, real = train_set.data, train_set.is_real
    texts = np.array(data.texts, dtype=object)
    intents = np.array(data.intents)
    splits = list(splitter.split(texts, intents, train_set.groups))
    start = time.perf_counter()
    results = Parallel(n_jobs=min(CV_JOBS, len(splits)))(
        delayed(_fold_probabilities)(
            candidates, texts, intents, train_set.origins, train, test, seed
        )
        for train, test in splits
    )
    elapsed = time.perf_counter() - start
    overall: dict[str, float] = {}
    real_scores: dict[str, float] = {}
    oof: dict[str, np.ndarray] = {}
    for candidate in candidates:
        probabilities = np.zeros((len(texts), len(INTENTS)))
        for (_, test), fold in zip(splits, results, strict=True):
            probabilities[test] = fold[candidate.name]
        oof[candidate.name] = probabilities
        result = ev.evaluate(data.intents, probabilities, sorted(INTENTS))
        overall[candidate.name] = result.macro_f1
        line = f"  {candidate.name:<28} CV macro-F1 {result.macro_f1:.4f}"
        if real.any():
            on_real = ev.evaluate(intents[real].tolist(), probabilities[real], sorted(INTENTS))
            real_scores[candidate.name] = on_real.macro_f1
            line += f"  real rows {on_real.macro_f1:.4f}"
        weights = "" if candidate.weights.uniform else f" [{candidate.weights}]"
        print(f"{line}  {candidate.description}{weights}", flush=True)
    print(f"  {len(splits)} folds x {len(candidates)} candidates in {elapsed:.1f}s", flush=True)
    return CrossValidation(overall, real_scores, oof)


def _fold_probabilities(
    candidates: Sequence[Candidate],
    texts: np.ndarray,
    intents: np.ndarray,
    origins: Sequence[str],
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> dict[str, np.ndarray]:
    """One fold: every candidate's probabilities on ``test`` (columns: sorted intents), each
    distinct feature step fitted once on ``train``."""
    features: dict[str, tuple[Any, Any]] = {}
    out: dict[str, np.ndarray] = {}
    with threadpool_limits(1):  # BLAS threads on small L-BFGS vectors only contend
        for candidate in candidates:
            pipeline = candidate.build(seed)
            front = (
                Pipeline(pipeline.steps[:-1]) if len(pipeline.steps) > 2 else pipeline.steps[0][1]
            )
            key = joblib.hash(front)
            if key not in features:
                fitted = front.fit_transform(list(texts[train]), intents[train])
                features[key] = (fitted, front.transform(list(texts[test])))
            x_train, x_test = features[key]
            last, classifier = pipeline.steps[-1]
            params = {
                name.partition("__")[2]: value[train]
                for name, value in candidate.fit_params(origins).items()
                if name.startswith(f"{last}__")
            }
            classifier.fit(x_train, intents[train], **params)
            probabilities = np.zeros((len(test), len(INTENTS)))
            columns = [sorted(INTENTS).index(str(c)) for c in classifier.classes_]
            probabilities[:, columns] = classifier.predict_proba(x_test)
            out[candidate.name] = probabilities
    return out


def truncated(data: LabeledPrompts, policy: TruncationPolicy) -> LabeledPrompts:
    return LabeledPrompts([policy.apply(t) for t in data.texts], list(data.intents))


def train(
    train_source: str | Path = TRAIN_FILE,
    test_source: str | Path = TEST_FILE,
    out_dir: Path = MODELS_DIR,
    candidates: Sequence[Candidate] | None = None,
    folds: int = CV_FOLDS,
    seed: int = SEED,
    text_column: str = "text",
    intent_column: str = "intent",
    log_to_mlflow: bool = True,
    real_dir: Path | None = None,
    split_file: Path | None = SPLIT_FILE,
    policy: TruncationPolicy | None = None,
) -> TrainResult:
    """Run the whole training pipeline and return where the model contract was written.

    Trains on the authored train split plus the real corpus's train side (``real_dir``, split
    by ``split_file``; a fresh split when None; no real data when ``real_dir`` is None, the
    default here: `make train` passes data/real) and
    reports the real test split first, the authored test split beside it."""
    candidates = list(candidates or default_candidates())
    policy = policy or TruncationPolicy()
    with stage("load data"):
        train_raw = load_prompts(train_source, text_column, intent_column)
        test_raw = load_prompts(test_source, text_column, intent_column)
        real_train, real_test = load_split_rows(real_dir, split_file) if real_dir else ([], [])
        train_set = training_set(train_raw, real_train, policy)
        test_data = truncated(test_raw, policy)
        print(
            f"  authored train {len(train_raw)}  authored test {len(test_data)}  "
            f"real train {len(real_train)}  real test {len(real_test)} "
            f"({len({r['source_repo'] for r in real_test})} repositories held out)"
        )
    with stage(f"cross-validate {len(candidates)} candidates ({folds} repository-grouped folds)"):
        cv = cross_validate(candidates, train_set, folds, seed)
        chosen, why = choose(cv.selection, candidates)
        print(f"  chosen: {chosen.name}: {why}")
    with stage(f"fit {chosen.name} on authored train + real train"):
        with threadpool_limits(1):  # BLAS threads on small L-BFGS vectors only contend
            pipeline = chosen.build(seed).fit(
                train_set.data.texts, train_set.data.intents, **chosen.fit_params(train_set.origins)
            )
        labels = [str(c) for c in pipeline.classes_]
    # The operating point is chosen on the rows the router meets: real rows when there are any.
    rows = train_set.is_real if train_set.is_real.any() else np.ones(len(train_set.is_real), bool)
    rows_name = "real training rows" if train_set.is_real.any() else "training rows"
    truth = np.array(train_set.data.intents)[rows].tolist()
    with stage(f"calibrate: temperature scaling on the out-of-fold {rows_name}"):
        calibration = fit_temperature(truth, cv.oof[chosen.name][rows], sorted(INTENTS))
        if not fold_temperature(pipeline.steps[-1][1], calibration.temperature):
            calibration = replace(
                calibration,
                temperature=1.0,
                ece_after=calibration.ece_before,
                nll_after=calibration.nll_before,
            )
            print("  the classifier is not a multinomial LogisticRegression: left uncalibrated")
        oof = scale(cv.oof[chosen.name], calibration.temperature)
        print(
            f"  temperature {calibration.temperature:.3f} on {calibration.rows} rows: ECE "
            f"{calibration.ece_before:.4f} -> {calibration.ece_after:.4f}, log loss "
            f"{calibration.nll_before:.4f} -> {calibration.nll_after:.4f} (folded into the "
            "classifier's coefficients, so into the ONNX graph)"
        )
    with stage("evaluate on the real test split, then the authored test split"):
        curve = ev.risk_coverage(truth, oof[rows], sorted(INTENTS))
        threshold = ev.recommend_threshold(curve)
        held_out = [HeldOut.authored(test_data.texts, test_data.intents)]
        if real_test:
            real_texts = [policy.apply(r["text"]) for r in real_test]
            held_out.insert(0, HeldOut.real(real_test, real_texts))
        reports = [
            report_split(h, pipeline.predict_proba(h.texts), labels, threshold) for h in held_out
        ]
        print(
            f"  recommended threshold {threshold} (the lowest whose calibrated out-of-fold "
            f"local accuracy on the {rows_name} reaches {ev.DEFAULT_TARGET_ACCURACY})"
        )
        for report in reports:
            print("\n".join(report.lines()))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, meta_path = out_dir / "intent.onnx", out_dir / "intent.json"
    previous_onnx = onnx_path.read_bytes() if onnx_path.exists() else None
    with stage("export to ONNX and check parity (LC_ALL=C)"):
        export_pipeline(pipeline, onnx_path)
        probes = list(test_raw.texts) + [r["text"] for r in real_test] + list(STRESS_CORPUS)
        parity = check_parity(pipeline, onnx_path, probes)
        print(
            f"  {parity.n_texts} texts: argmax agreement {parity.argmax_agreement:.4f}, "
            f"max |p_sklearn - p_onnx| {parity.max_abs_diff:.2e}, "
            f"{onnx_path.stat().st_size / 1e6:.2f} MB"
        )
        if not parity.passed:
            raise RuntimeError(f"ONNX parity failed: {parity}")
    metadata = _metadata(
        pipeline,
        chosen,
        cv,
        reports,
        threshold,
        train_set.data,
        policy,
        parity.max_abs_diff,
        calibration,
    )
    kept = _unchanged_metadata(previous_onnx, onnx_path, meta_path, metadata)
    if kept is not None:  # same model: keep its version and date, so git shows no change
        metadata = kept
        print(f"  the model is byte-identical to the one in {out_dir}: {meta_path.name} kept")
    else:
        meta_path.write_text(metadata.to_json(), encoding="utf-8")
    registration = "not logged"
    if log_to_mlflow:
        with stage("log to MLflow"):
            reliability = {
                "before": reliability_of(truth, cv.oof[chosen.name][rows], labels),
                "after": reliability_of(truth, oof[rows], labels),
            }
            registration = _log(
                metadata,
                candidates,
                cv,
                reports,
                test_data,
                held_out,
                labels,
                pipeline,
                curve,
                onnx_path,
                meta_path,
                chosen,
                why,
                reliability,
            )
            print(f"  {registration}")
    print(f"[train] wrote {onnx_path} and {meta_path} (model {metadata.model_version})")
    return TrainResult(metadata, onnx_path, meta_path, registration)


def _unchanged_metadata(
    previous_onnx: bytes | None, onnx_path: Path, meta_path: Path, new: ModelMetadata
) -> ModelMetadata | None:
    """The stored metadata when the exported model is byte-identical to the previous one and
    was trained on the same data with the same threshold and scored the same on the test
    splits; None when anything differs."""
    if previous_onnx is None or previous_onnx != onnx_path.read_bytes():
        return None
    try:
        old = load_metadata(meta_path)
    except ModelError:
        return None
    same = (
        old.training_data_sha256 == new.training_data_sha256
        and old.confidence_threshold == new.confidence_threshold
        and old.labels == new.labels
        and old.metrics == new.metrics
    )
    return old if same else None


def _metadata(
    pipeline: Pipeline,
    chosen: Candidate,
    cv: CrossValidation,
    reports: Sequence[SplitReport],
    threshold: float,
    train_data: LabeledPrompts,
    policy: TruncationPolicy,
    parity_diff: float,
    calibration: Calibration,
) -> ModelMetadata:
    created = datetime.now(UTC)
    data_hash = train_data.sha256()
    metrics = {k: round(v, 6) for r in reports for k, v in r.metrics().items()}
    metrics.update({f"cv_macro_f1_{k}": round(v, 6) for k, v in cv.overall.items()})
    metrics.update({f"cv_real_macro_f1_{k}": round(v, 6) for k, v in cv.real.items()})
    metrics["parity_max_abs_diff"] = parity_diff
    metrics.update({k: round(v, 6) for k, v in calibration.metrics().items()})
    return ModelMetadata(
        labels=tuple(str(c) for c in pipeline.classes_),
        model_version=f"{created:%Y%m%d%H%M%S}-{data_hash[:8]}",
        confidence_threshold=threshold,
        training_data_sha256=data_hash,
        created_at=created.isoformat(timespec="seconds"),
        metrics=metrics,
        library_versions=_library_versions(),
        estimator={
            "candidate": chosen.name,
            "description": chosen.description,
            "vocabulary_size": _vocabulary_size(pipeline.steps[0][1]),
            "sample_weights": {
                "authored": 1.0,
                "verbatim": chosen.weights.verbatim,
                "style_rewrite": chosen.weights.style_rewrite,
            },
            "calibration": {
                "method": "temperature scaling on out-of-fold real training rows",
                "temperature": calibration.temperature,
                "folded_into_graph": True,
            },
        },
        truncation=policy,
    )


def _vocabulary_size(features: object) -> int:
    if isinstance(features, FeatureUnion):
        return sum(len(t.vocabulary_) for _, t in features.transformer_list)
    return len(features.vocabulary_)  # type: ignore[attr-defined]


def _library_versions() -> dict[str, str]:
    names = ["scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "datasets"]
    versions = {name: version(name) for name in names}
    versions["python"] = platform.python_version()
    return versions


def _log(
    metadata: ModelMetadata,
    candidates: Sequence[Candidate],
    cv: CrossValidation,
    reports: Sequence[SplitReport],
    test_data: LabeledPrompts,
    held_out: Sequence[HeldOut],
    labels: list[str],
    pipeline: Pipeline,
    curve: list[ev.CoveragePoint],
    onnx_path: Path,
    meta_path: Path,
    chosen: Candidate,
    why: str,
    reliability: dict[str, list[tuple[float, float, int]]],
) -> str:
    from training.calibration import plot_reliability
    from training.plots import plot_confusion_matrix
    from training.tracking import log_training_run

    with tempfile.TemporaryDirectory() as tmp:
        artifacts = []
        for split, report in zip(held_out, reports, strict=True):
            text = Path(tmp) / f"{report.name}_classification_report.txt"
            text.write_text(
                "\n".join(report.lines())
                + "\n\n"
                + ev.classification_report_text(
                    split.intents, pipeline.predict_proba(split.texts), labels
                )
            )
            artifacts += [
                text,
                plot_confusion_matrix(
                    report.evaluation,
                    Path(tmp) / f"{report.name}_confusion_matrix.png",
                    report.name,
                ),
            ]
        temperature = metadata.estimator["calibration"]["temperature"]
        artifacts.append(
            plot_reliability(
                {
                    "out-of-fold, before (T=1)": reliability["before"],
                    f"out-of-fold, after (T={temperature:.2f})": reliability["after"],
                },
                Path(tmp) / "reliability_cv_real.png",
                "Reliability on out-of-fold real training rows",
            )
        )
        (Path(tmp) / "reliability_cv_real.json").write_text(json.dumps(reliability, indent=2))
        artifacts.append(Path(tmp) / "reliability_cv_real.json")
        coverage = Path(tmp) / "risk_coverage_cv.json"
        coverage.write_text(json.dumps([p.__dict__ for p in curve], indent=2))
        params = {
            "candidate": chosen.name,
            "selection": why,
            "seed": SEED,
            "cv_folds": CV_FOLDS,
            "cv": "StratifiedGroupKFold by repository (authored rows: one group each)",
        }
        params.update(chosen.params(SEED))
        selection_metric = f"{reports[0].name}_macro_f1"
        registration = log_training_run(
            params=params,
            metrics={**metadata.metrics, "confidence_threshold": metadata.confidence_threshold},
            artifacts=[*artifacts, coverage, onnx_path, meta_path],
            onnx_path=onnx_path,
            selection_metric=selection_metric,
            selection_value=reports[0].evaluation.macro_f1,
            candidate_table=[
                {
                    "candidate": c.name,
                    "cv_macro_f1": cv.overall[c.name],
                    "cv_real_macro_f1": cv.real.get(c.name, float("nan")),
                    "description": c.description,
                    "runtime_cost": c.runtime_cost,
                    "chosen": c.name == chosen.name,
                }
                for c in candidates
            ],
            tags={
                "model_version": metadata.model_version,
                "training_data_sha256": metadata.training_data_sha256,
            },
        )
    return (
        f"registered intent-classifier v{registration.version} as {registration.alias}: "
        f"{registration.reason} (run {registration.run_id})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(TRAIN_FILE), help="local file or hub dataset")
    parser.add_argument("--test", default=str(TEST_FILE), help="held-out split (local file)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--intent-column", default="intent")
    parser.add_argument("--out", default=str(MODELS_DIR), type=Path)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument(
        "--real-dir", default=str(REAL_DIR), help="real-prompt corpus ('' for none)"
    )
    parser.add_argument("--real-split", default=str(SPLIT_FILE), help="its repository split")
    parser.add_argument(
        "--head-chars",
        type=int,
        default=TruncationPolicy().head_chars,
        help="truncation: characters kept from a long prompt's start",
    )
    parser.add_argument(
        "--tail-chars",
        type=int,
        default=TruncationPolicy().tail_chars,
        help="truncation: characters kept from its end",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    train(
        args.data,
        args.test,
        args.out,
        text_column=args.text_column,
        intent_column=args.intent_column,
        log_to_mlflow=not args.no_mlflow,
        real_dir=Path(args.real_dir) if args.real_dir else None,
        split_file=Path(args.real_split),
        policy=TruncationPolicy(args.head_chars, args.tail_chars),
    )
    print(f"[train] finished in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
