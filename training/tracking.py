"""Log a training run to MLflow and register the model; the only training module importing mlflow."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intent_router.mlflow_store import default_tracking_uri

REGISTERED_MODEL = "intent-classifier"
EXPERIMENT = "intent-training"


@dataclass(frozen=True)
class Registration:
    """Which version was registered, the alias it got, and why."""

    version: str
    alias: str
    reason: str
    run_id: str


def log_training_run(
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: list[Path],
    onnx_path: Path,
    selection_metric: str,
    selection_value: float,
    candidate_table: list[dict[str, Any]],
    tags: dict[str, str],
) -> Registration:
    """Log one run, register its ONNX model, and give the version champion or challenger by
    ``selection_metric`` (the real test split's macro-F1 when there is one)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # never phone home
    import mlflow
    import onnx
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        mlflow.log_table(
            {k: [row[k] for row in candidate_table] for k in candidate_table[0]}, "candidates.json"
        )
        info = mlflow.onnx.log_model(
            onnx.load(str(onnx_path)),
            name="intent_onnx",
            registered_model_name=REGISTERED_MODEL,
            save_as_external_data=False,
        )
        version = str(info.registered_model_version)
        alias, reason = _assign_alias(MlflowClient(), version, selection_metric, selection_value)
        return Registration(version=version, alias=alias, reason=reason, run_id=run.info.run_id)


def _assign_alias(client: Any, version: str, metric: str, value: float) -> tuple[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
    except MlflowException:
        champion = None
    if champion is None:
        client.set_registered_model_alias(REGISTERED_MODEL, "champion", version)
        return "champion", "no champion existed yet"
    champion_value = client.get_run(champion.run_id).data.metrics.get(metric, float("-inf"))
    if value >= champion_value:
        client.set_registered_model_alias(REGISTERED_MODEL, "champion", version)
        return "champion", (
            f"{metric} {value:.4f} >= champion v{champion.version}'s {champion_value:.4f}"
        )
    client.set_registered_model_alias(REGISTERED_MODEL, "challenger", version)
    return "challenger", (
        f"{metric} {value:.4f} < champion v{champion.version}'s {champion_value:.4f}"
    )
