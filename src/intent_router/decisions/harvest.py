"""`make harvest`: what the LLM classifier and users taught, as labeled JSONL for `make train`.

Exports decisions the LLM classifier labeled (escalations) and decisions a user corrected
through POST /v1/feedback (the latest correction wins over the LLM's label). Only decisions
whose prompt text is stored can be exported: the decision log keeps a hash unless
``storage.store_prompts: true`` (the privacy switch), and the others are counted, not exported.

    python -m intent_router.decisions.harvest --out data/harvested.jsonl [--base data/train.jsonl]

With ``--base``, the output is the base set plus the harvested rows (a harvested label replaces
the base's for the same text), ready for ``make train DATA=data/harvested.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from intent_router.config import load_config
from intent_router.decisions.store import DecisionStore
from intent_router.exceptions import ConfigError
from intent_router.labels import INTENTS
from intent_router.settings import ServiceSettings


@dataclass(frozen=True)
class HarvestReport:
    written: int
    from_llm: int
    from_feedback: int
    without_text: int
    from_base: int


def harvest(store: DecisionStore, out: Path, base: Path | None = None) -> HarvestReport:
    """Write the harvested (and base) rows to ``out`` as {"text", "intent", "source"} lines."""
    rows: dict[str, dict[str, str]] = {}
    from_base = 0
    if base is not None:
        for number, line in enumerate(base.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                if item.get("intent") not in INTENTS or not isinstance(item.get("text"), str):
                    raise ValueError(f"{base}:{number}: needs 'text' and a known 'intent'")
                rows[item["text"]] = {
                    "text": item["text"],
                    "intent": item["intent"],
                    "source": "base",
                }
                from_base += 1
    counts = {"llm": 0, "feedback": 0, "without_text": 0}
    for item in store.harvestable():
        if item["intent"] not in INTENTS:
            continue
        if not item.get("prompt_text"):
            counts["without_text"] += 1
            continue
        rows[item["prompt_text"]] = {
            "text": item["prompt_text"],
            "intent": item["intent"],
            "source": item["how"],
            "request_id": item["request_id"],
        }
        counts[item["how"]] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows.values():
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return HarvestReport(
        len(rows), counts["llm"], counts["feedback"], counts["without_text"], from_base
    )


def main(argv: list[str] | None = None) -> int:
    settings = ServiceSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m intent_router.decisions.harvest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("data/harvested.jsonl"))
    parser.add_argument("--base", type=Path, default=None, help="a labeled JSONL to merge into")
    parser.add_argument("--config", type=Path, default=settings.config_path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"harvest: bad config {args.config}: {exc}", file=sys.stderr)
        return 2
    store = DecisionStore(config.storage.resolved_url(settings.database_url))
    try:
        report = harvest(store, args.out, args.base)
    except (OSError, ValueError) as exc:
        print(f"harvest: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(
        f"wrote {report.written} rows to {args.out}: {report.from_llm} labeled by the LLM classifier, "
        f"{report.from_feedback} corrected by users, {report.from_base} from the base set"
    )
    if report.without_text:
        print(
            f"{report.without_text} decisions had only a prompt hash (storage.store_prompts is off) "
            "and were not exported"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
