"""Conversation-aware classification measured: accuracy on the real test rows that carry
``context`` (earlier user turns), with the latest turn alone and with the configured rule.

``python -m intent_router.evaluation.conversation`` prints both, also per follow-up length.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.config import DEFAULT_CONFIG, ConversationRule, load_config
from intent_router.evaluation.data import DOUBLE_LABELS
from intent_router.routing.conversation import mix_predictions, select_turns
from intent_router.types import Prediction

DATA_DIR = Path(__file__).resolve().parents[3] / "data"


def rows_with_context(split_file: Path, side: str = "test") -> list[dict[str, Any]]:
    """The real corpus rows of ``side`` of the split that carry earlier user turns."""
    ids = set(json.loads(split_file.read_text(encoding="utf-8"))[f"{side}_ids"])
    rows = []
    for part in sorted(
        p for p in (split_file.parent / "real").glob("*.jsonl") if p.name != DOUBLE_LABELS
    ):
        for line in part.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and row.get("id") in ids and row.get("context"):
                rows.append(row)
    return rows


def classify(
    classifier: IntentClassifier, turns: Sequence[str], rule: ConversationRule
) -> Prediction:
    """What the router's classification of ``turns`` (oldest first) is under ``rule``."""
    selection = select_turns(turns, rule)
    if not selection.earlier:
        return classifier.predict(selection.latest)
    latest, earlier = classifier.predict_batch([selection.latest, selection.earlier])
    return mix_predictions(latest, earlier, rule.latest_weight)


def accuracy(
    classifier: IntentClassifier, rows: Sequence[dict[str, Any]], rule: ConversationRule
) -> float:
    hits = [
        classify(classifier, [*r["context"], r["text"]], rule).intent == r["intent"] for r in rows
    ]
    return sum(hits) / len(hits) if hits else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m intent_router.evaluation.conversation", description=__doc__
    )
    parser.add_argument("--split", type=Path, default=DATA_DIR / "real_split.json")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    args = parser.parse_args(argv)
    rule = load_config(args.config).conversation
    classifier = IntentClassifier.from_dir(args.models_dir)
    alone = replace(rule, enabled=False)
    rows = rows_with_context(args.split)
    print(f"rule: {rule}")
    print(
        f"{'real test rows with context':<36} {'rows':>5} {'latest alone':>13} {'with context':>13}"
    )
    for label, cut in (
        ("all", None),
        ("latest turn <= 32 chars", 32),
        ("latest turn <= 80 chars", 80),
    ):
        chosen = [r for r in rows if cut is None or len(r["text"].strip()) <= cut]
        print(
            f"{label:<36} {len(chosen):>5} {accuracy(classifier, chosen, alone):>13.4f} "
            f"{accuracy(classifier, chosen, rule):>13.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
