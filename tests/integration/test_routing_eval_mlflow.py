"""``python -m intent_router.evaluation`` end to end: the committed ONNX model over 40 rows of the
test split, logged to a fresh MLflow store on SQLite, read back through MlflowClient."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from intent_router.evaluation.__main__ import main
from intent_router.evaluation.pipeline import evaluate_routing
from intent_router.thresholds import THRESHOLD_GRID
from tests.conftest import REPO_ROOT, MlflowStoreMaker

ARTIFACTS = {
    "quality_vs_cost.png",
    "risk_coverage.png",
    "regret_curve.png",
    "regret_ask_curve.png",
    "per_prompt.json",
}


def _run_cli(root: Path, args: list[str], fresh_mlflow_store: MlflowStoreMaker) -> dict[str, Any]:
    """Run the CLI in-process against its own MLflow store under ``root``."""
    root.mkdir()
    uri = fresh_mlflow_store(root / "mlflow.db", root)
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        with contextlib.redirect_stdout(stdout):
            status = main(args)
    assert status == 0
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("routing-eval")
    runs = client.search_runs([experiment.experiment_id])
    return {"client": client, "runs": runs, "stdout": stdout.getvalue(), "root": root}


def _table(client: MlflowClient, run_id: str, dst: Path) -> dict[str, list[Any]]:
    raw = json.loads(
        Path(client.download_artifacts(run_id, "per_prompt.json", str(dst))).read_text()
    )
    return {name: [row[i] for row in raw["data"]] for i, name in enumerate(raw["columns"])}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 rows spread over the whole (intent-ordered) test split, so every intent occurs."""
    lines = (REPO_ROOT / "data" / "test.jsonl").read_text().splitlines()[::23][:40]
    path = tmp_path_factory.mktemp("data") / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def plain(
    data: Path, tmp_path_factory: pytest.TempPathFactory, fresh_mlflow_store: MlflowStoreMaker
) -> dict[str, Any]:
    return _run_cli(
        tmp_path_factory.mktemp("plain") / "store", ["--data", str(data)], fresh_mlflow_store
    )


@pytest.fixture(scope="module")
def redacted(
    data: Path, tmp_path_factory: pytest.TempPathFactory, fresh_mlflow_store: MlflowStoreMaker
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("redacted")
    models = root / "models"
    models.mkdir()
    for name in ("intent.onnx", "intent.json"):
        shutil.copy(REPO_ROOT / "models" / name, models / name)
    before = json.loads((models / "intent.json").read_text())
    result = _run_cli(
        root / "store",
        [
            "--data",
            str(data),
            "--models-dir",
            str(models),
            "--escalation",
            "oracle",
            "--redact",
            "--write-threshold",
        ],
        fresh_mlflow_store,
    )
    return {**result, "models": models, "before": before}


def test_one_run_logs_what_the_summary_computes(plain: dict[str, Any], data: Path) -> None:
    [run] = plain["runs"]
    expected = evaluate_routing(data).summary
    metrics = run.data.metrics
    for name, value in expected.metrics().items():
        assert metrics[name] == pytest.approx(value), name
    assert {f"f1_{label}" for label in expected.f1_per_label} <= set(metrics)
    assert len(expected.f1_per_label) == 7
    params = run.data.params
    assert params["rows"] == "40" and params["escalation"] == "local"
    assert params["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (params["premium_deployment"], params["primary_deployment"]) == (
        "claude-sonnet-4",
        "kimi-k2.6",
    )
    assert params["threshold"] == str(
        json.loads((REPO_ROOT / "models/intent.json").read_text())["confidence_threshold"]
    )
    assert run.info.run_id in plain["stdout"] and "savings vs premium" in plain["stdout"]


def test_the_risk_coverage_curve_is_logged_by_step(plain: dict[str, Any], data: Path) -> None:
    [run] = plain["runs"]
    client: MlflowClient = plain["client"]
    expected = evaluate_routing(data).summary.risk_coverage
    for key, field in (("rc_coverage", "coverage"), ("rc_local_accuracy", "accuracy")):
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [round(t * 100) for t in THRESHOLD_GRID]
        assert [m.value for m in history] == pytest.approx([getattr(p, field) for p in expected])


def test_the_regret_curve_is_logged_by_step_beside_the_argmax_comparison(
    plain: dict[str, Any], data: Path
) -> None:
    [run] = plain["runs"]
    client: MlflowClient = plain["client"]
    evaluation = evaluate_routing(data)
    for key, field in (
        ("regret_curve_weight", "weight"),
        ("regret_curve_under_routing", "under_routing_share"),
        ("regret_curve_cost_per_1k_usd", "cost_per_1k_usd"),
    ):
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.value for m in history] == pytest.approx(
            [getattr(p, field) for p in evaluation.regret_curve]
        )
    shares = sorted(
        client.get_metric_history(run.info.run_id, "ask_curve_escalation_share"),
        key=lambda m: m.step,
    )
    assert [m.value for m in shares] == pytest.approx(
        [p.escalation_share for p in evaluation.ask_curve]
    )
    metrics = run.data.metrics
    for variant in ("argmax_alone", "regret_alone", "argmax", "regret"):
        assert metrics[f"routing_{variant}_under_routing_share"] == pytest.approx(
            evaluation.comparison[variant]["under_routing_share"]
        )
    assert "regret (model alone)" in plain["stdout"]


def test_artifacts_and_the_per_prompt_table_agree_with_the_metrics(
    plain: dict[str, Any], data: Path
) -> None:
    [run] = plain["runs"]
    client: MlflowClient = plain["client"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= ARTIFACTS
    table = _table(client, run.info.run_id, plain["root"])
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines()]
    assert table["text"] == texts
    metrics = run.data.metrics
    assert sum(table["correct"]) / 40 == pytest.approx(metrics["accuracy"])
    assert sum(table["escalated"]) / 40 == pytest.approx(metrics["escalation_share"])
    assert 1000 * sum(table["cost_usd"]) / 40 == pytest.approx(metrics["cost_per_1k_routed_usd"])
    assert all(c.split(" > ")[0] == d for c, d in zip(table["chain"], table["deployment"]))


def test_redact_hides_prompt_text(redacted: dict[str, Any], data: Path) -> None:
    [run] = redacted["runs"]
    assert run.data.params["escalation"] == "oracle"
    table = _table(redacted["client"], run.info.run_id, redacted["root"])
    texts = {json.loads(line)["text"] for line in data.read_text().splitlines()}
    assert all(t.startswith("sha256:") for t in table["text"])
    assert not texts & set(table["text"])
    assert not any(text in json.dumps(table) for text in texts)


def test_write_threshold_changes_only_the_threshold(redacted: dict[str, Any]) -> None:
    [run] = redacted["runs"]
    after = json.loads((redacted["models"] / "intent.json").read_text())
    recommended = run.data.metrics["recommended_threshold"]
    assert after["confidence_threshold"] == recommended
    before = redacted["before"]
    assert {k: v for k, v in after.items() if k != "confidence_threshold"} == {
        k: v for k, v in before.items() if k != "confidence_threshold"
    }
    assert (redacted["models"] / "intent.onnx").read_bytes() == (
        REPO_ROOT / "models/intent.onnx"
    ).read_bytes()
    assert "wrote confidence_threshold" in redacted["stdout"]


def test_unusable_data_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "intent": "general"}\n{"text": "x", "intent": "poetry"}\n')
    assert main(["--data", str(bad)]) == 2
    assert "bad.jsonl:2: unknown intent 'poetry'" in capsys.readouterr().err
    assert main(["--data", str(bad), "--premium", "nope"]) == 2  # data is checked first
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "hello", "intent": "general"}\n')
    assert main(["--data", str(good), "--premium", "nope"]) == 2
    assert "unknown deployment 'nope'" in capsys.readouterr().err


def test_the_real_split_and_an_authored_file_are_logged_side_by_side(
    data: Path, tmp_path: Path, fresh_mlflow_store: MlflowStoreMaker
) -> None:
    from tests.conftest import FIXTURES

    sample = [
        json.loads(line) for line in (FIXTURES / "real_sample.jsonl").read_text().splitlines()
    ]
    (tmp_path / "real").mkdir()
    shutil.copy(FIXTURES / "real_sample.jsonl", tmp_path / "real" / "part.jsonl")
    held_out = sample[::4]
    split = tmp_path / "real_split.json"
    split.write_text(json.dumps({"seed": 0, "test_ids": [r["id"] for r in held_out]}))
    result = _run_cli(
        tmp_path / "store", ["--data", str(split), "--data", str(data)], fresh_mlflow_store
    )
    runs = {run.data.params["data"]: run for run in result["runs"]}
    real = runs[str(split)]
    assert real.info.run_name.startswith("real-test ")
    assert real.data.params["rows"] == str(len(held_out))
    metrics = real.data.metrics
    assert {"macro_f1_clear", "macro_f1_ambiguous", "kept_accuracy"} <= set(metrics)
    sources = {r["source_type"] for r in held_out}
    assert {f"accuracy_source_{s}" for s in sources} <= set(metrics)
    assert "macro_f1_clear" not in runs[str(data)].data.metrics
    header = result["stdout"].splitlines()[0].split()
    assert header == ["real-test", data.name]  # the real split first, as asked
