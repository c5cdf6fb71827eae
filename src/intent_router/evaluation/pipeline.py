"""Run the routing evaluation over a labeled file: load, classify with the ONNX model, replay,
summarize. No MLflow here, so tests and the CLI share exactly what gets logged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import DEFAULT_CONFIG, load_config
from intent_router.evaluation.data import (
    LabeledPrompt,
    examples_sha256,
    file_sha256,
    load_labeled,
)
from intent_router.evaluation.replay import (
    PromptOutcome,
    PromptTokens,
    ReplaySettings,
    baseline_deployments,
    measure_tokens,
    replay,
)
from intent_router.evaluation.summary import (
    AskPoint,
    RegretPoint,
    RoutingSummary,
    ask_curve,
    breakdown,
    compare_routing,
    regret_curve,
    summarize,
)
from intent_router.thresholds import DEFAULT_TARGET_ACCURACY
from intent_router.types import Prediction


@dataclass(frozen=True)
class RoutingEvaluation:
    """Inputs, per-prompt outcomes and summary of one evaluation: everything a report needs."""

    data_path: Path
    data_sha256: str
    config_path: Path
    model_version: str
    target_accuracy: float
    settings: ReplaySettings
    examples: list[LabeledPrompt]
    predictions: list[Prediction]
    tokens: list[PromptTokens]
    outcomes: list[PromptOutcome]
    summary: RoutingSummary
    breakdown: dict[str, float]  # kept-share accuracy; clear/ambiguous and source-type slices
    comparison: dict[str, dict[str, float]]  # argmax vs regret routing (summary.compare_routing)
    regret_curve: list[RegretPoint]
    ask_curve: list[AskPoint]

    def metrics(self) -> dict[str, float]:
        """Everything logged as MLflow metrics."""
        compared = {
            f"routing_{variant}_{name}": value
            for variant, values in self.comparison.items()
            for name, value in values.items()
        }
        return {**self.summary.metrics(), **self.breakdown, **compared}


def evaluate_routing(
    data_path: Path,
    config_path: Path = DEFAULT_CONFIG,
    models_dir: Path = DEFAULT_MODELS_DIR,
    escalation: str = "local",
    premium: str | None = None,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
) -> RoutingEvaluation:
    """Replay ``data_path`` through the real routing decision: the ONNX classifier, the
    config's threshold (else the model's) and the config's intent policy."""
    examples = load_labeled(data_path)
    config = load_config(config_path)
    premium_name, primary_name = baseline_deployments(config, premium)
    classifier = IntentClassifier.from_dir(models_dir)
    threshold = (
        config.confidence_threshold
        if config.confidence_threshold is not None
        else classifier.threshold
    )
    settings = ReplaySettings(
        config, threshold, premium_name, primary_name, escalation, mode=config.routing.mode
    )
    predictions = classifier.predict_batch([e.text for e in examples])
    tokens = measure_tokens([e.text for e in examples])
    outcomes = replay(examples, predictions, tokens, settings)
    return RoutingEvaluation(
        data_path=Path(data_path),
        data_sha256=(
            examples_sha256(examples)
            if Path(data_path).suffix == ".json"
            else file_sha256(data_path)
        ),
        config_path=Path(config_path),
        model_version=classifier.version,
        target_accuracy=target_accuracy,
        settings=settings,
        examples=examples,
        predictions=predictions,
        tokens=tokens,
        outcomes=outcomes,
        summary=summarize(outcomes, target_accuracy),
        breakdown=breakdown(examples, outcomes),
        comparison=compare_routing(examples, predictions, tokens, settings),
        regret_curve=regret_curve(examples, predictions, tokens, settings),
        ask_curve=ask_curve(examples, predictions, tokens, settings),
    )
