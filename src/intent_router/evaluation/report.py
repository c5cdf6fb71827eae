"""Log one routing evaluation as an MLflow run in experiment ``routing-eval``; the only module
of this package importing mlflow (lazily)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from intent_router.decisions.records import prompt_digest
from intent_router.evaluation.pipeline import RoutingEvaluation
from intent_router.evaluation.plots import (
    plot_ask_curve,
    plot_quality_vs_cost,
    plot_regret_curve,
    plot_risk_coverage,
)
from intent_router.evaluation.replay import PromptOutcome
from intent_router.evaluation.summary import tradeoff_curve
from intent_router.mlflow_store import default_tracking_uri

EXPERIMENT: Final[str] = "routing-eval"
PER_PROMPT_TABLE: Final[str] = "per_prompt.json"


def log_evaluation(evaluation: RoutingEvaluation, redact: bool = False) -> str:
    """Log params, metrics, the risk-coverage curve, figures and the per-prompt table; return
    the run id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # never phone home
    import mlflow

    summary, settings = evaluation.summary, evaluation.settings
    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment(EXPERIMENT)
    run_name = f"{data_name(evaluation.data_path)} {settings.escalation} t={settings.threshold:.2f}"
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(_params(evaluation, redact))
        mlflow.log_metrics(evaluation.metrics())
        for point in summary.risk_coverage:
            mlflow.log_metrics(
                {"rc_coverage": point.coverage, "rc_local_accuracy": point.accuracy},
                step=round(point.threshold * 100),
            )
        for step, regret in enumerate(evaluation.regret_curve):
            mlflow.log_metrics(
                {
                    "regret_curve_weight": regret.weight,
                    "regret_curve_under_routing": regret.under_routing_share,
                    "regret_curve_over_routing": regret.over_routing_share,
                    "regret_curve_cost_per_1k_usd": regret.cost_per_1k_usd,
                    "regret_curve_served_as_intended": regret.accuracy_served,
                    "regret_curve_under_routing_worst_intent": regret.under_routing_worst_intent,
                },
                step=step,
            )
        for step, ask in enumerate(evaluation.ask_curve):
            mlflow.log_metrics(
                {
                    "ask_curve_latency_usd_per_s": ask.latency_usd_per_s,
                    "ask_curve_escalation_share": ask.escalation_share,
                    "ask_curve_under_routing": ask.under_routing_share,
                    "ask_curve_under_routing_worst_intent": ask.under_routing_worst_intent,
                    "ask_curve_over_routing": ask.over_routing_share,
                    "ask_curve_cost_per_1k_usd": ask.cost_per_1k_usd,
                },
                step=step,
            )
        with tempfile.TemporaryDirectory() as tmp:
            for figure in _figures(evaluation, Path(tmp)):
                mlflow.log_artifact(str(figure))
        mlflow.log_table(per_prompt_table(evaluation.outcomes, redact), PER_PROMPT_TABLE)
        return str(run.info.run_id)


def log_session_replay(
    metrics: dict[str, float], params: dict[str, Any], per_session: dict[str, list[Any]]
) -> str:
    """Log the session replay (per-turn against sticky routing) as run ``session-replay``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # never phone home
    import mlflow

    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="session-replay") as run:
        mlflow.set_tag("intent_router.kind", "session-replay")
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.log_table(per_session, "per_session.json")
        return str(run.info.run_id)


def data_name(path: Path) -> str:
    """How a run names its data: ``real-test`` for the real split file, else the file name."""
    return "real-test" if path.suffix == ".json" else path.name


def per_prompt_table(
    outcomes: Sequence[PromptOutcome], redact: bool = False
) -> dict[str, list[Any]]:
    """One column per field; with ``redact`` the text is replaced by ``sha256:<hex>``."""
    return {
        "text": [f"sha256:{prompt_digest(o.text)}" if redact else o.text for o in outcomes],
        "true_intent": [o.true_intent for o in outcomes],
        "predicted_intent": [o.predicted_intent for o in outcomes],
        "final_intent": [o.final_intent for o in outcomes],
        "confidence": [o.confidence for o in outcomes],
        "escalated": [o.escalated for o in outcomes],
        "chain": [" > ".join(o.chain) for o in outcomes],
        "deployment": [o.deployment for o in outcomes],
        "cost_usd": [o.cost_usd for o in outcomes],
        "correct": [o.correct for o in outcomes],
        "routed_as": [o.routed_as for o in outcomes],
    }


def _params(evaluation: RoutingEvaluation, redact: bool) -> dict[str, Any]:
    settings = evaluation.settings
    return {
        "data": str(evaluation.data_path),
        "data_sha256": evaluation.data_sha256,
        "rows": evaluation.summary.rows,
        "config": str(evaluation.config_path),
        "model_version": evaluation.model_version,
        "threshold": settings.threshold,
        "escalation": settings.escalation,
        "premium_deployment": settings.premium,
        "primary_deployment": settings.primary,
        "llm_classifier": settings.config.llm_classifier,
        "target_accuracy": evaluation.target_accuracy,
        "routing_mode": settings.mode,
        "regret_weight": settings.config.routing.weight,
        "redact": redact,
    }


def _figures(evaluation: RoutingEvaluation, folder: Path) -> list[Path]:
    summary, settings = evaluation.summary, evaluation.settings
    curve = tradeoff_curve(evaluation.examples, evaluation.predictions, evaluation.tokens, settings)
    title = (
        f"Quality vs cost, {summary.rows} prompts, escalation {settings.escalation}, "
        f"model {evaluation.model_version}"
    )
    return [
        plot_quality_vs_cost(curve, settings.threshold, title, folder / "quality_vs_cost.png"),
        plot_risk_coverage(
            summary.risk_coverage,
            settings.threshold,
            summary.recommended_threshold,
            folder / "risk_coverage.png",
        ),
        plot_regret_curve(
            evaluation.regret_curve,
            evaluation.comparison["argmax_alone"],
            f"Regret routing over its weight (model alone), {summary.rows} prompts",
            folder / "regret_curve.png",
        ),
        plot_ask_curve(
            evaluation.ask_curve,
            evaluation.comparison["argmax"],
            f"Regret routing with the LLM classifier ({settings.escalation}) over the "
            f"price of its latency, {summary.rows} prompts",
            folder / "regret_ask_curve.png",
        ),
    ]
