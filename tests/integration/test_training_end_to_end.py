"""Train on a small fixture set: the model contract, parity and MLflow registration."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from mlflow import MlflowClient

from intent_router.classifier import IntentClassifier
from intent_router.labels import INTENTS
from tests.conftest import FIXTURES, MlflowStoreMaker
from training.candidates import default_candidates
from training.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fresh_mlflow_store: MlflowStoreMaker) -> dict:
    """One training run on the fixture set, with its own MLflow store."""
    root = tmp_path_factory.mktemp("train")
    uri = fresh_mlflow_store(root / "mlflow.db", root)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(root)
    candidates = [c for c in default_candidates() if c.name in ("lr_word12_baseline", "lr_wordpunct12_8k", "svm_calibrated_wordpunct12_8k")]
    result = train(
        FIXTURES / "small_train.jsonl",
        FIXTURES / "small_test.jsonl",
        out_dir=root / "models",
        candidates=candidates,
        folds=3,
    )
    yield {"result": result, "uri": uri, "root": root, "candidates": candidates}
    mp.undo()


def test_training_writes_the_model_contract(trained: dict) -> None:
    result = trained["result"]
    meta = json.loads(result.metadata_path.read_text())
    assert sorted(meta["labels"]) == sorted(INTENTS)
    assert 0.3 <= meta["confidence_threshold"] <= 0.95
    assert len(meta["training_data_sha256"]) == 64
    for key in ("test_macro_f1", "test_accuracy", "test_ece", "parity_max_abs_diff"):
        assert key in meta["metrics"]
    assert meta["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert {"scikit-learn", "skl2onnx", "onnxruntime"} <= set(meta["library_versions"])
    graph = onnx.load(str(result.onnx_path)).graph
    assert [i.name for i in graph.input] == ["text"]
    assert [o.name for o in graph.output] == ["label", "probabilities"]


def test_the_trained_model_classifies_through_the_runtime(trained: dict) -> None:
    models = trained["result"].onnx_path.parent
    classifier = IntentClassifier.from_dir(models)
    prediction = classifier.predict("rename getUser to fetchUser everywhere")
    assert prediction.intent in INTENTS
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_mlflow_has_the_run_artifacts_and_a_champion(trained: dict) -> None:
    client = MlflowClient(tracking_uri=trained["uri"])
    version = client.get_model_version_by_alias("intent-classifier", "champion")
    run = client.get_run(version.run_id)
    assert run.data.metrics["test_macro_f1"] == pytest.approx(
        trained["result"].metadata.metrics["test_macro_f1"], abs=1e-6
    )
    for candidate in trained["candidates"]:
        assert f"cv_macro_f1_{candidate.name}" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "classification_report.txt", "intent.onnx", "intent.json"} <= artifacts
    assert "champion" in trained["result"].registration


def test_a_worse_model_becomes_challenger(trained: dict, tmp_path: Path) -> None:
    # Train on a third of the fixture: its test macro-F1 cannot beat the champion's.
    rows = (FIXTURES / "small_train.jsonl").read_text().splitlines()
    small = tmp_path / "tiny.jsonl"
    small.write_text("\n".join(rows[::4]) + "\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    mp.chdir(trained["root"])
    try:
        result = train(small, FIXTURES / "small_test.jsonl", out_dir=tmp_path / "m",
                       candidates=trained["candidates"][:1], folds=2)
    finally:
        mp.undo()
    assert "challenger" in result.registration
    client = MlflowClient(tracking_uri=trained["uri"])
    challenger = client.get_model_version_by_alias("intent-classifier", "challenger")
    assert int(challenger.version) == 2
