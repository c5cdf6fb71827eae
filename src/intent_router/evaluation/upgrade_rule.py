"""How sure the classifier must be to upgrade a sticky session: among the real test split's
prompts the bundled model predicts high-stakes, how many truly are, at each confidence.

    python -m intent_router.evaluation.upgrade_rule [data/real_split.json]

An upgrade moves a session to a high-stakes chain for good (routing/sessions.py), so its
precision is what a wrong upgrade risks and its recall what a missed one does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.evaluation.data import LabeledPrompt, load_real_test
from intent_router.labels import HIGH_STAKES_INTENTS

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def upgrade_table(
    rows: list[LabeledPrompt], classifier: IntentClassifier
) -> list[tuple[float, int, float, float]]:
    """(threshold, upgrades, precision, recall) per threshold: an upgrade is a high-stakes
    prediction at or above it; precision: truly high-stakes; recall: of the truly high-stakes."""
    predictions = classifier.predict_batch([r.text for r in rows])
    truly = sum(r.intent in HIGH_STAKES_INTENTS for r in rows)
    table = []
    for threshold in THRESHOLDS:
        chosen = [
            r
            for p, r in zip(predictions, rows, strict=True)
            if p.intent in HIGH_STAKES_INTENTS and p.confidence >= threshold
        ]
        right = sum(r.intent in HIGH_STAKES_INTENTS for r in chosen)
        table.append((threshold, len(chosen), right / max(1, len(chosen)), right / max(1, truly)))
    return table


def main(argv: list[str]) -> None:
    split = Path(argv[0]) if argv else Path("data/real_split.json")
    rows = load_real_test(split)
    print(
        f"{len(rows)} real test rows; {sum(r.intent in HIGH_STAKES_INTENTS for r in rows)} high-stakes"
    )
    print(f"{'min confidence':>14}{'upgrades':>10}{'precision':>11}{'recall':>8}")
    for threshold, count, precision, recall in upgrade_table(
        rows, IntentClassifier.from_dir(DEFAULT_MODELS_DIR)
    ):
        print(f"{threshold:>14.2f}{count:>10}{precision:>11.3f}{recall:>8.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
