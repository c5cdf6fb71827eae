"""Train on a small fixture set (authored rows plus a real-corpus sample split by repository):
the model contract, the real test split reported first, parity and MLflow registration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from mlflow import MlflowClient

from intent_router.classifier import IntentClassifier
from intent_router.labels import INTENTS
from tests.conftest import FIXTURES, MlflowStoreMaker
from training.candidates import default_candidates, extra_candidates
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
    real_dir = root / "real"
    real_dir.mkdir()
    shutil.copy(FIXTURES / "real_sample.jsonl", real_dir / "sample.jsonl")
    names = ("lr_word12_baseline", "lr_word12_char24_10k_real3", "svm_calibrated_wordpunct12_8k")
    candidates = [c for c in default_candidates() + extra_candidates() if c.name in names]
    result = train(
        FIXTURES / "small_train.jsonl",
        FIXTURES / "small_test.jsonl",
        out_dir=root / "models",
        candidates=candidates,
        folds=3,
        real_dir=real_dir,
        split_file=None,
    )
    yield {"result": result, "uri": uri, "root": root, "candidates": candidates}
    mp.undo()


def test_training_writes_the_model_contract(trained: dict) -> None:
    result = trained["result"]
    meta = json.loads(result.metadata_path.read_text())
    assert sorted(meta["labels"]) == sorted(INTENTS)
    assert 0.3 <= meta["confidence_threshold"] <= 0.95
    assert len(meta["training_data_sha256"]) == 64
    for split in ("real_test", "authored_test"):
        for key in (
            "macro_f1",
            "accuracy",
            "ece",
            "escalation_share",
            "kept_accuracy",
            "under_routing",
            "over_routing",
            "f1_debugging",
        ):
            assert 0.0 <= meta["metrics"][f"{split}_{key}"] <= 1.0, key
    assert meta["metrics"]["real_test_rows"] >= 0.2 * 98  # the sample's held-out repositories
    assert {"real_test_macro_f1_clear", "real_test_macro_f1_ambiguous"} <= set(meta["metrics"])
    assert any(k.startswith("real_test_macro_f1_source_") for k in meta["metrics"])
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
    for name in ("real_test_macro_f1", "authored_test_macro_f1", "real_test_under_routing"):
        assert run.data.metrics[name] == pytest.approx(
            trained["result"].metadata.metrics[name], abs=1e-6
        )
    for candidate in trained["candidates"]:
        assert f"cv_macro_f1_{candidate.name}" in run.data.metrics
        assert f"cv_real_macro_f1_{candidate.name}" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "real_test_confusion_matrix.png",
        "real_test_classification_report.txt",
        "authored_test_confusion_matrix.png",
        "intent.onnx",
        "intent.json",
    } <= artifacts
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
        # No real data: the choice falls back to the authored test split's macro-F1.
        result = train(
            small,
            FIXTURES / "small_test.jsonl",
            out_dir=tmp_path / "m",
            candidates=trained["candidates"][:1],
            folds=2,
            real_dir=None,
        )
    finally:
        mp.undo()
    assert "challenger" in result.registration
    client = MlflowClient(tracking_uri=trained["uri"])
    challenger = client.get_model_version_by_alias("intent-classifier", "challenger")
    assert int(challenger.version) == 2
