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
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from intent_router.labels import INTENTS
from intent_router.exceptions import ModelError
from intent_router.model_contract import ModelMetadata, TruncationPolicy, load_metadata
from training import evaluate as ev
from training.candidates import Candidate, choose, default_candidates
from training.dataset import TEST_FILE, TRAIN_FILE, LabeledPrompts, load_prompts
from training.export import export_pipeline
from training.parity import STRESS_CORPUS, check_parity

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SEED = 42
CV_FOLDS = 5


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


def cross_validate(
    candidates: Sequence[Candidate], data: LabeledPrompts, folds: int, seed: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Out-of-fold probabilities and macro-F1 for every candidate, on the same folds."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: dict[str, float] = {}
    oof: dict[str, np.ndarray] = {}
    for candidate in candidates:
        start = time.perf_counter()
        probabilities = cross_val_predict(
            candidate.build(seed), data.texts, data.intents, cv=splitter,
            method="predict_proba", n_jobs=2,
        )
        oof[candidate.name] = probabilities
        result = ev.evaluate(data.intents, probabilities, sorted(INTENTS))
        scores[candidate.name] = result.macro_f1
        print(
            f"  {candidate.name:<28} CV macro-F1 {result.macro_f1:.4f}  accuracy "
            f"{result.accuracy:.4f}  ({time.perf_counter() - start:.1f}s)  {candidate.description}",
            flush=True,
        )
    return scores, oof


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
) -> TrainResult:
    """Run the whole training pipeline and return where the model contract was written."""
    candidates = list(candidates or default_candidates())
    policy = TruncationPolicy()
    with stage("load data"):
        train_raw = load_prompts(train_source, text_column, intent_column)
        test_raw = load_prompts(test_source, text_column, intent_column)
        train_data, test_data = truncated(train_raw, policy), truncated(test_raw, policy)
        print(f"  train {len(train_data)}  test {len(test_data)}")
    with stage(f"cross-validate {len(candidates)} candidates ({folds} folds)"):
        scores, oof = cross_validate(candidates, train_data, folds, seed)
        chosen, why = choose(scores, candidates)
        print(f"  chosen: {chosen.name}: {why}")
    with stage(f"fit {chosen.name} on the training split"):
        pipeline = chosen.build(seed).fit(train_data.texts, train_data.intents)
        labels = [str(c) for c in pipeline.classes_]
    with stage("evaluate on the test split"):
        test_probabilities = pipeline.predict_proba(test_data.texts)
        evaluation = ev.evaluate(test_data.intents, test_probabilities, labels)
        curve = ev.risk_coverage(train_data.intents, oof[chosen.name], sorted(INTENTS))
        threshold = ev.recommend_threshold(curve)
        _print_evaluation(evaluation, threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, meta_path = out_dir / "intent.onnx", out_dir / "intent.json"
    previous_onnx = onnx_path.read_bytes() if onnx_path.exists() else None
    with stage("export to ONNX and check parity (LC_ALL=C)"):
        export_pipeline(pipeline, onnx_path)
        parity = check_parity(pipeline, onnx_path, list(test_raw.texts) + list(STRESS_CORPUS))
        print(
            f"  {parity.n_texts} texts: argmax agreement {parity.argmax_agreement:.4f}, "
            f"max |p_sklearn - p_onnx| {parity.max_abs_diff:.2e}, "
            f"{onnx_path.stat().st_size / 1e6:.2f} MB"
        )
        if not parity.passed:
            raise RuntimeError(f"ONNX parity failed: {parity}")
    metadata = _metadata(
        pipeline, chosen, scores, evaluation, threshold, train_raw, policy, parity.max_abs_diff
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
            registration = _log(
                metadata, candidates, scores, evaluation, test_data, test_probabilities,
                labels, curve, onnx_path, meta_path, chosen, why,
            )
            print(f"  {registration}")
    print(f"[train] wrote {onnx_path} and {meta_path} (model {metadata.model_version})")
    return TrainResult(metadata, onnx_path, meta_path, registration)


def _print_evaluation(evaluation: ev.Evaluation, threshold: float) -> None:
    print(
        f"  accuracy {evaluation.accuracy:.4f}  macro-F1 {evaluation.macro_f1:.4f}  "
        f"ECE {evaluation.expected_calibration_error:.4f}  recommended threshold {threshold}"
    )
    for label, scores in evaluation.per_label.items():
        print(
            f"    {label:<20} P {scores['precision']:.3f}  R {scores['recall']:.3f}  "
            f"F1 {scores['f1']:.3f}"
        )


def _unchanged_metadata(previous_onnx: bytes | None, onnx_path: Path, meta_path: Path,
                        new: ModelMetadata) -> ModelMetadata | None:
    """The stored metadata when the exported model is byte-identical to the previous one and
    was trained on the same data with the same threshold; None when anything differs."""
    if previous_onnx is None or previous_onnx != onnx_path.read_bytes():
        return None
    try:
        old = load_metadata(meta_path)
    except ModelError:
        return None
    same = (old.training_data_sha256 == new.training_data_sha256
            and old.confidence_threshold == new.confidence_threshold and old.labels == new.labels)
    return old if same else None


def _metadata(
    pipeline: Pipeline,
    chosen: Candidate,
    scores: dict[str, float],
    evaluation: ev.Evaluation,
    threshold: float,
    train_raw: LabeledPrompts,
    policy: TruncationPolicy,
    parity_diff: float,
) -> ModelMetadata:
    created = datetime.now(timezone.utc)
    data_hash = train_raw.sha256()
    metrics = {k: round(v, 6) for k, v in evaluation.as_metrics().items()}
    metrics.update({f"cv_macro_f1_{k}": round(v, 6) for k, v in scores.items()})
    metrics["parity_max_abs_diff"] = parity_diff
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
            "vocabulary_size": len(pipeline.steps[0][1].vocabulary_),
        },
        truncation=policy,
    )


def _library_versions() -> dict[str, str]:
    names = ["scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "datasets"]
    versions = {name: version(name) for name in names}
    versions["python"] = platform.python_version()
    return versions


def _log(
    metadata: ModelMetadata,
    candidates: Sequence[Candidate],
    scores: dict[str, float],
    evaluation: ev.Evaluation,
    test_data: LabeledPrompts,
    test_probabilities: np.ndarray,
    labels: list[str],
    curve: list[ev.CoveragePoint],
    onnx_path: Path,
    meta_path: Path,
    chosen: Candidate,
    why: str,
) -> str:
    from training.plots import plot_confusion_matrix
    from training.tracking import log_training_run

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "classification_report.txt"
        report.write_text(
            ev.classification_report_text(test_data.intents, test_probabilities, labels)
        )
        confusion = plot_confusion_matrix(evaluation, Path(tmp) / "confusion_matrix.png")
        coverage = Path(tmp) / "risk_coverage_cv.json"
        coverage.write_text(json.dumps([p.__dict__ for p in curve], indent=2))
        params = {"candidate": chosen.name, "selection": why, "seed": SEED, "cv_folds": CV_FOLDS}
        params.update(chosen.params(SEED))
        registration = log_training_run(
            params=params,
            metrics={**evaluation.as_metrics(), "confidence_threshold": metadata.confidence_threshold,
                     **{f"cv_macro_f1_{k}": v for k, v in scores.items()}},
            artifacts=[report, confusion, coverage, onnx_path, meta_path],
            onnx_path=onnx_path,
            test_macro_f1=evaluation.macro_f1,
            candidate_table=[
                {"candidate": c.name, "cv_macro_f1": scores[c.name], "description": c.description,
                 "runtime_cost": c.runtime_cost, "chosen": c.name == chosen.name}
                for c in candidates
            ],
            tags={"model_version": metadata.model_version,
                  "training_data_sha256": metadata.training_data_sha256},
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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    train(
        args.data, args.test, args.out, text_column=args.text_column,
        intent_column=args.intent_column, log_to_mlflow=not args.no_mlflow,
    )
    print(f"[train] finished in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
