"""The multi-turn conversation set of the session replay (``data/conversations.jsonl``), built
from the real corpus: the recorded user turns of one agent session, in order.

Only the real **test** split's repositories are used (the classifier never trained on them).
The rows of one file (repository, path, commit) are sorted by ``turn``; a run of rows whose
turns are at most ``MAX_GAP`` apart is one conversation, cut into pieces of at most
``MAX_TURNS`` turns and kept when it has at least ``MIN_TURNS``. A turn missing between two
recorded rows is taken from the later row's ``context`` when that covers the gap (the corpus
recorded it, cut to 1,000 characters, and rewrote it like its row when the licence required);
otherwise the gap stays (``turn`` shows it). No text is written here: every turn is a corpus
row's text or context, verbatim or ``style_rewrite`` as the corpus has it, with the row's
provenance (repository, path, commit, licence, origin, row id).

``python -m training.conversations`` rewrites the file; a test checks it is current.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from training.real_corpus import REAL_DIR, read_rows

DATA_DIR: Final[Path] = REAL_DIR.parent
CONVERSATIONS_FILE: Final[Path] = DATA_DIR / "conversations.jsonl"
SPLIT_FILE: Final[Path] = DATA_DIR / "real_split.json"
MAX_GAP: Final[int] = 3
MIN_TURNS: Final[int] = 3
MAX_TURNS: Final[int] = 12
#: Provenance every conversation keeps from its rows (one file: the same for all of them).
FILE_FIELDS: Final[tuple[str, ...]] = (
    "source_repo",
    "path",
    "commit",
    "license",
    "source_type",
    "origin",
)
#: What each turn keeps of the row it comes from.
TURN_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "turn",
    "text",
    "intent",
    "ambiguous",
    "cut",
    "redacted",
)


def build_conversations(rows: Iterable[dict[str, Any]], test_ids: set[str]) -> list[dict[str, Any]]:
    """The conversations of the test rows, ordered by repository, path and first turn."""
    files: dict[tuple[str, str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("id") in test_ids and row.get("turn") is not None:
            files[(row["source_repo"], row["path"], row.get("commit"))].append(row)
    conversations = []
    for key in sorted(files, key=lambda k: (k[0], k[1], k[2] or "")):
        ordered = sorted(files[key], key=lambda r: r["turn"])
        for run in _runs(ordered):
            for piece in _pieces(_with_context_turns(run)):
                conversations.append(_conversation(piece))
    return conversations


def _runs(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows split where two turns are more than ``MAX_GAP`` apart."""
    runs: list[list[dict[str, Any]]] = []
    for row in rows:
        if runs and row["turn"] - runs[-1][-1]["turn"] <= MAX_GAP:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _with_context_turns(run: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's turns, with a gap filled from the next row's ``context`` where it covers it."""
    turns = [_turn(run[0])]
    for previous, row in itertools.pairwise(run):
        missing = row["turn"] - previous["turn"] - 1
        context = row.get("context") or []
        if 0 < missing <= len(context):
            for offset, text in enumerate(context[len(context) - missing :]):
                turns.append(
                    {
                        "id": None,
                        "turn": previous["turn"] + 1 + offset,
                        "text": text,
                        "intent": None,
                        "ambiguous": None,
                        "cut": "context of the next turn (at most 1,000 chars)",
                        "redacted": row.get("redacted", False),
                        "from_context_of": row["id"],
                    }
                )
        turns.append(_turn(row))
    return turns


def _turn(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in TURN_FIELDS} | {"row": _row_fields(row)}


def _row_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in FILE_FIELDS}


def _pieces(turns: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """At most ``MAX_TURNS`` turns each; a piece under ``MIN_TURNS`` is dropped."""
    pieces = [list(turns[i : i + MAX_TURNS]) for i in range(0, len(turns), MAX_TURNS)]
    return [p for p in pieces if len(p) >= MIN_TURNS]


def _conversation(turns: list[dict[str, Any]]) -> dict[str, Any]:
    provenance = next(t["row"] for t in turns if "row" in t)
    clean = [{k: v for k, v in t.items() if k != "row"} for t in turns]
    digest = hashlib.sha256("\n".join(f"{t['turn']}:{t['text']}" for t in clean).encode("utf-8"))
    return {"id": f"conv-{digest.hexdigest()[:12]}", **provenance, "split": "test", "turns": clean}


def write_conversations(
    target: Path = CONVERSATIONS_FILE, real_dir: Path = REAL_DIR, split_file: Path = SPLIT_FILE
) -> list[dict[str, Any]]:
    test_ids = set(json.loads(split_file.read_text(encoding="utf-8"))["test_ids"])
    conversations = build_conversations((row for _, row in read_rows(real_dir)), test_ids)
    target.write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8"
    )
    return conversations


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.conversations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=CONVERSATIONS_FILE)
    args = parser.parse_args(argv)
    conversations = write_conversations(args.out)
    turns = sum(len(c["turns"]) for c in conversations)
    print(f"wrote {len(conversations)} conversations, {turns} turns, to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
