"""`make baseline BEFORE=<git ref>`: the model shipped at a git ref against the one in models/
now, on the real test split (then the authored test split), each at its own threshold."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from training.dataset import TEST_FILE, load_prompts
from training.real_corpus import REAL_DIR
from training.real_split import SPLIT_FILE, load_split_rows
from training.split_report import HeldOut, SplitReport, report_split

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILES = ("intent.onnx", "intent.json")


def models_at(ref: str, folder: Path) -> Path:
    """Write models/intent.onnx + intent.json as they were at git ``ref`` into ``folder``."""
    for name in MODEL_FILES:
        blob = subprocess.run(
            ["git", "show", f"{ref}:models/{name}"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        (folder / name).write_bytes(blob)
    return folder


def score(classifier: IntentClassifier, held_out: HeldOut) -> SplitReport:
    """The classifier's report on a held-out split, at the classifier's own threshold (the
    runtime truncation applies, as in serving)."""
    predictions = classifier.predict_batch(held_out.texts)
    labels = list(classifier.labels)
    matrix = np.array([[p.probabilities[label] for label in labels] for p in predictions])
    return report_split(held_out, matrix, labels, classifier.threshold)


def held_out_splits() -> list[HeldOut]:
    _, real_test = load_split_rows(REAL_DIR, SPLIT_FILE)
    authored = load_prompts(TEST_FILE)
    splits = [HeldOut.authored(authored.texts, authored.intents)]
    if real_test:
        splits.insert(0, HeldOut.real(real_test, [r["text"] for r in real_test]))
    return splits


def compare(before: SplitReport, after: SplitReport) -> list[str]:
    """Rows of metric, before, after, change."""
    rows = [
        (k, before.metrics()[k], v)
        for k, v in after.metrics().items()
        if k in before.metrics() and "_precision_" not in k and "_recall_" not in k
    ]
    return [f"  {name:<48} {b:>8.4f} {a:>8.4f} {a - b:>+8.4f}" for name, b, a in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="git ref of the earlier model")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before = IntentClassifier.from_dir(models_at(args.before, Path(tmp)))
        after = IntentClassifier.from_dir(args.models_dir)
        print(f"before: {args.before} model {before.version} (threshold {before.threshold:.2f})")
        print(f"after:  {args.models_dir} model {after.version} (threshold {after.threshold:.2f})")
        for held_out in held_out_splits():
            print(
                f"{held_out.name} ({len(held_out.texts)} prompts)"
                f"{'':<{max(0, 30 - len(held_out.name))}}    before    after   change"
            )
            print("\n".join(compare(score(before, held_out), score(after, held_out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
