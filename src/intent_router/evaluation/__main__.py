"""CLI: ``python -m intent_router.evaluation`` replays a labeled set through the routing
decision, logs one MLflow run (experiment ``routing-eval``) and prints a short table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from intent_router.classifier import DEFAULT_MODELS_DIR
from intent_router.config import DEFAULT_CONFIG
from intent_router.evaluation.data import DataFileError
from intent_router.evaluation.replay import ESCALATION_MODES
from intent_router.exceptions import ConfigError, ModelError
from intent_router.thresholds import DEFAULT_TARGET_ACCURACY

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "data" / "test.jsonl"
EXIT_USAGE = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m intent_router.evaluation",
                                     description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labeled JSONL")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="router YAML")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--escalation", choices=ESCALATION_MODES, default="local",
                        help="local: escalated prompts keep the local label; oracle: the LLM "
                             "classifier is assumed right")
    parser.add_argument("--premium", default=None,
                        help="deployment that 'always premium' uses (default: first fallback_1)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET_ACCURACY,
                        help="local accuracy the recommended threshold must reach")
    parser.add_argument("--redact", action="store_true",
                        help="log sha256:<hex> instead of prompt text in the per-prompt table")
    parser.add_argument("--write-threshold", action="store_true",
                        help="write the recommended threshold into <models-dir>/intent.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; 0 on success, 2 on unusable input (data, config, model, names)."""
    args = parse_args(argv)
    if not 0.0 < args.target <= 1.0:
        return _fail("--target must lie in (0, 1]")
    from intent_router.evaluation.pipeline import evaluate_routing

    try:
        evaluation = evaluate_routing(args.data, args.config, args.models_dir, args.escalation,
                                      args.premium, args.target)
    except (DataFileError, ConfigError, ModelError) as exc:
        return _fail(str(exc))
    from intent_router.evaluation.report import log_evaluation

    run_id = log_evaluation(evaluation, redact=args.redact)
    print(format_table(evaluation.summary.metrics(), evaluation.settings.threshold, run_id))
    if args.write_threshold:
        from intent_router.evaluation.model_threshold import write_threshold

        target = args.models_dir / "intent.json"
        written = write_threshold(target, evaluation.summary.recommended_threshold)
        print(f"wrote confidence_threshold {written.confidence_threshold:.2f} to {target}")
        if evaluation.settings.config.confidence_threshold is not None:
            print("note: the router config sets confidence_threshold, which overrides the model's")
    return 0


def format_table(metrics: dict[str, float], threshold: float, run_id: str) -> str:
    """The short summary the CLI prints."""
    rows = [
        ("threshold in use", f"{threshold:.2f}"),
        ("accuracy", f"{metrics['accuracy']:.4f}"),
        ("macro-F1", f"{metrics['macro_f1']:.4f}"),
        ("escalation share", f"{metrics['escalation_share']:.4f}"),
        ("cost / 1k routed", f"${metrics['cost_per_1k_routed_usd']:.4f}"),
        ("cost / 1k always-premium", f"${metrics['cost_per_1k_premium_usd']:.4f}"),
        ("cost / 1k always-primary", f"${metrics['cost_per_1k_primary_usd']:.4f}"),
        ("savings vs premium", f"{metrics['savings_vs_premium']:.2f}x"),
        ("under-routing (high-stakes)", f"{metrics['under_routing_share']:.4f}"),
        ("over-routing (other intents)", f"{metrics['over_routing_share']:.4f}"),
        ("recommended threshold", f"{metrics['recommended_threshold']:.2f}"),
        ("MLflow run id", run_id),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
