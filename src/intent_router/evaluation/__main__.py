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

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
#: Without --data: the real test split first, then the authored test split beside it.
DEFAULT_DATA = (DATA_DIR / "real_split.json", DATA_DIR / "test.jsonl")
EXIT_USAGE = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m intent_router.evaluation", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="labeled JSONL, or a real split file (.json) for its test rows; "
        "repeatable (default: data/real_split.json, then data/test.jsonl)",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="router YAML")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument(
        "--escalation",
        choices=ESCALATION_MODES,
        default="local",
        help="local: escalated prompts keep the local label; oracle: the LLM "
        "classifier is assumed right",
    )
    parser.add_argument(
        "--premium",
        default=None,
        help="deployment that 'always premium' uses (default: first fallback_1)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=DEFAULT_TARGET_ACCURACY,
        help="local accuracy the recommended threshold must reach",
    )
    parser.add_argument(
        "--redact",
        action="store_true",
        help="log sha256:<hex> instead of prompt text in the per-prompt table",
    )
    parser.add_argument(
        "--write-threshold",
        action="store_true",
        help="write the recommended threshold into <models-dir>/intent.json",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; 0 on success, 2 on unusable input (data, config, model, names)."""
    args = parse_args(argv)
    if not 0.0 < args.target <= 1.0:
        return _fail("--target must lie in (0, 1]")
    from intent_router.evaluation.pipeline import evaluate_routing
    from intent_router.evaluation.report import data_name, log_evaluation

    evaluations, run_ids = [], []
    for data in args.data or DEFAULT_DATA:
        try:
            evaluation = evaluate_routing(
                data, args.config, args.models_dir, args.escalation, args.premium, args.target
            )
        except (DataFileError, ConfigError, ModelError) as exc:
            return _fail(str(exc))
        evaluations.append(evaluation)
        run_ids.append(log_evaluation(evaluation, redact=args.redact))
    print(
        format_columns(
            [data_name(e.data_path) for e in evaluations],
            [e.metrics() for e in evaluations],
            evaluations[0].settings.threshold,
            run_ids,
        )
    )
    for evaluation in evaluations:
        print()
        print(
            format_comparison(
                data_name(evaluation.data_path),
                evaluation.comparison,
                evaluation.settings.escalation,
            )
        )
    if args.write_threshold:
        from intent_router.evaluation.model_threshold import write_threshold

        first = evaluations[0]
        target = args.models_dir / "intent.json"
        written = write_threshold(target, first.summary.recommended_threshold)
        print(
            f"wrote confidence_threshold {written.confidence_threshold:.2f} to {target} "
            f"(recommended on {data_name(first.data_path)})"
        )
        if first.settings.config.confidence_threshold is not None:
            print("note: the router config sets confidence_threshold, which overrides the model's")
    return 0


_ROWS = (
    ("accuracy", "accuracy", "{:.4f}"),
    ("macro-F1", "macro_f1", "{:.4f}"),
    ("macro-F1 clear / ambiguous", ("macro_f1_clear", "macro_f1_ambiguous"), "{:.4f}"),
    ("escalation share", "escalation_share", "{:.4f}"),
    ("accuracy of the kept share", "kept_accuracy", "{:.4f}"),
    ("cost / 1k routed", "cost_per_1k_routed_usd", "${:.4f}"),
    ("cost / 1k always-premium", "cost_per_1k_premium_usd", "${:.4f}"),
    ("cost / 1k always-primary", "cost_per_1k_primary_usd", "${:.4f}"),
    ("savings vs premium", "savings_vs_premium", "{:.2f}x"),
    ("under-routing (high-stakes)", "under_routing_share", "{:.4f}"),
    ("over-routing (other intents)", "over_routing_share", "{:.4f}"),
    ("recommended threshold", "recommended_threshold", "{:.2f}"),
)


def format_columns(
    names: Sequence[str],
    metrics: Sequence[dict[str, float]],
    threshold: float,
    run_ids: Sequence[str],
) -> str:
    """The summary the CLI prints: one column per evaluated set, in the order given."""

    def cell(values: dict[str, float], keys: str | tuple[str, ...], pattern: str) -> str:
        keys = (keys,) if isinstance(keys, str) else keys
        if not all(k in values for k in keys):
            return "-"
        return " / ".join(pattern.format(values[k]) for k in keys)

    rows = [("", list(names)), ("threshold in use", [f"{threshold:.2f}"] * len(names))]
    rows += [(label, [cell(m, keys, pattern) for m in metrics]) for label, keys, pattern in _ROWS]
    sources = sorted({k for m in metrics for k in m if k.startswith("accuracy_source_")})
    rows += [
        (f"accuracy, {k.removeprefix('accuracy_source_')}", [cell(m, k, "{:.4f}") for m in metrics])
        for k in sources
    ]
    rows.append(("MLflow run id", list(run_ids)))
    width = max(len(label) for label, _ in rows)
    cols = [max(len(r[1][i]) for r in rows) for i in range(len(names))]
    return "\n".join(
        f"{label:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, cols)).rstrip()
        for label, values in rows
    )


_COMPARED = (
    ("under-routing, high-stakes", "under_routing_share", "{:.4f}"),
    ("  debugging", "under_routing_debugging", "{:.4f}"),
    ("  architecture_review", "under_routing_architecture_review", "{:.4f}"),
    ("  security_audit", "under_routing_security_audit", "{:.4f}"),
    ("  worst of the three", "under_routing_worst_intent", "{:.4f}"),
    ("over-routing, other intents", "over_routing_share", "{:.4f}"),
    ("cost / 1k requests", "cost_per_1k_usd", "${:.4f}"),
    ("escalation share", "escalation_share", "{:.4f}"),
)


def format_comparison(name: str, comparison: dict[str, dict[str, float]], escalation: str) -> str:
    """Argmax against regret routing on one set: the model alone, then with the LLM classifier
    (escalated prompts answered as the escalation mode says)."""
    variants = list(comparison)
    header = [
        f"{name}: routing",
        *(
            v.replace("_alone", " (model alone)")
            if v.endswith("_alone")
            else f"{v} (+LLM, {escalation})"
            for v in variants
        ),
    ]
    rows = [header] + [
        [label, *(pattern.format(comparison[v][key]) for v in variants)]
        for label, key, pattern in _COMPARED
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths[1:]))
        for r in rows
    )


def format_table(metrics: dict[str, float], threshold: float, run_id: str) -> str:
    """The summary of one evaluated set."""
    return format_columns(["this set"], [metrics], threshold, [run_id])


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
