"""The real-prompt corpus (data/real/*.jsonl): load it through `datasets` and check every row
against data/real/LABELLING.md (schema, provenance, licence rule, ids, duplicates, secrets)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from intent_router.jsonl import json_objects
from intent_router.labels import INTENTS
from intent_router.routing.secrets import SecretDetector
from training.dataset import DATA_DIR, LabeledPrompts

REAL_DIR: Final[Path] = DATA_DIR / "real"
DOUBLE_LABELS_FILE: Final[Path] = REAL_DIR / "double_labels.jsonl"

#: Licences under which text may ship verbatim (LABELLING.md, "Licence rule").
PERMISSIVE_LICENCES: Final[frozenset[str]] = frozenset(
    {
        "MIT",
        "MIT-0",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "0BSD",
        "Unlicense",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-3.0",
        "Zlib",
        "BSL-1.0",
    }
)
SOURCE_TYPES: Final[frozenset[str]] = frozenset(
    {
        "aider_input_history",
        "aider_chat_history",
        "specstory_history",
        "prompt_file",
        "claude_command",
        "conversation_dump",
        "chat_export",
    }
)
ORIGINS: Final[tuple[str, ...]] = ("verbatim", "style_rewrite")
MAX_TEXT_CHARS: Final[int] = 4000
MAX_CONTEXT_TURNS: Final[int] = 2
MAX_CONTEXT_CHARS: Final[int] = 1000

_OPTIONAL_STR = (str, type(None))
#: field -> accepted Python types after json.loads (bool is checked before int).
SCHEMA: Final[dict[str, tuple[type, ...]]] = {
    "id": (str,),
    "text": (str,),
    "intent": (str,),
    "ambiguous": (bool,),
    "alt_intent": _OPTIONAL_STR,
    "context": (list,),
    "source_repo": (str,),
    "path": (str,),
    "commit": _OPTIONAL_STR,
    "license": (str,),
    "source_type": (str,),
    "origin": (str,),
    "turn": (int, type(None)),
    "cut": (str,),
    "redacted": (bool,),
    "labeler": (str,),
}
OPTIONAL_FIELDS: Final[dict[str, Any]] = {"note": ""}
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def text_id(text: str) -> str:
    """A row's id: the first 16 hex digits of the SHA-256 of its text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class CorpusError(ValueError):
    """The real-prompt corpus breaks a rule of LABELLING.md (the message lists where)."""


@dataclass(frozen=True)
class CorpusProblem:
    """One rule a row breaks, with where it is (``file:line``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def corpus_files(real_dir: Path = REAL_DIR) -> list[Path]:
    """Every corpus part, in a fixed order; the double labels are not corpus rows."""
    return sorted(p for p in Path(real_dir).glob("*.jsonl") if p.name != DOUBLE_LABELS_FILE.name)


def read_rows(real_dir: Path = REAL_DIR) -> list[tuple[str, dict[str, Any]]]:
    """(``file:line``, row) for every non-blank line of every corpus part."""
    return [pair for path in corpus_files(real_dir) for pair in json_objects(path, CorpusError)]


def row_problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with one row on its own (schema, provenance, licence rule, id, secrets)."""
    problems = [f"missing field {name!r}" for name in SCHEMA if name not in row]
    problems += [
        f"{name} must be {' or '.join(t.__name__ for t in types)}, not {type(row[name]).__name__}"
        for name, types in SCHEMA.items()
        if name in row
        and (
            not isinstance(row[name], types) or (bool not in types and isinstance(row[name], bool))
        )
    ]
    if problems:
        return problems
    return _label_problems(row) + _provenance_problems(row) + _text_problems(row)


def _label_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    if row["intent"] not in INTENTS:
        problems.append(f"unknown intent {row['intent']!r}")
    alt = row["alt_intent"]
    if row["ambiguous"] and (alt not in INTENTS or alt == row["intent"]):
        problems.append(f"ambiguous row needs an alt_intent other than its intent, has {alt!r}")
    if not row["ambiguous"] and alt is not None:
        problems.append("alt_intent set on a row that is not ambiguous")
    if not row["labeler"].strip():
        problems.append("empty labeler")
    return problems


def _provenance_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    if not _REPO.match(row["source_repo"]):
        problems.append(f"source_repo {row['source_repo']!r} is not owner/name")
    if not row["path"].strip():
        problems.append("empty path")
    if row["commit"] is not None and not _COMMIT.match(row["commit"]):
        problems.append(f"commit {row['commit']!r} is not 40 hex digits")
    if not row["license"].strip():
        problems.append("empty license (NOASSERTION when none was found)")
    if row["source_type"] not in SOURCE_TYPES:
        problems.append(f"unknown source_type {row['source_type']!r}")
    if row["origin"] not in ORIGINS:
        problems.append(f"origin must be one of {list(ORIGINS)}, not {row['origin']!r}")
    elif row["origin"] == "verbatim" and row["license"] not in PERMISSIVE_LICENCES:
        problems.append(f"verbatim text under {row['license']!r}: only a style_rewrite may ship")
    if row["turn"] is not None and row["turn"] < 0:
        problems.append("turn must be >= 0")
    if not row["cut"].strip():
        problems.append("empty cut")
    return problems


def _text_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    text, context = row["text"], row["context"]
    if not text.strip():
        problems.append("empty text")
    if row["id"] != text_id(text):
        problems.append(f"id {row['id']!r} is not sha256(text)[:16] ({text_id(text)})")
    if len(text) > MAX_TEXT_CHARS:
        problems.append(f"text of {len(text)} characters, more than {MAX_TEXT_CHARS}")
    if len(context) > MAX_CONTEXT_TURNS or not all(isinstance(c, str) for c in context):
        problems.append(f"context must be at most {MAX_CONTEXT_TURNS} strings")
    elif any(len(c) > MAX_CONTEXT_CHARS for c in context):
        problems.append(f"a context turn longer than {MAX_CONTEXT_CHARS} characters")
    kinds = _DETECTOR.kinds([text, *(c for c in context if isinstance(c, str))])
    if kinds:
        problems.append(f"secret found by the project's detector: {', '.join(kinds)}")
    return problems


_DETECTOR = SecretDetector()


def corpus_problems(located: Sequence[tuple[str, dict[str, Any]]]) -> list[CorpusProblem]:
    """Every row's problems, plus exact duplicates (same text, hence same id) across files."""
    problems = [
        CorpusProblem(where, message) for where, row in located for message in row_problems(row)
    ]
    first_seen: dict[str, str] = {}
    for where, row in located:
        text = row.get("text")
        if not isinstance(text, str):
            continue
        if text in first_seen:
            problems.append(CorpusProblem(where, f"exact duplicate of {first_seen[text]}"))
        else:
            first_seen[text] = where
    return problems


def load_real_rows(real_dir: Path = REAL_DIR) -> list[dict[str, Any]]:
    """Validated corpus rows (through ``datasets``, typed by FEATURES), in file order.

    Raises CorpusError listing every problem; an absent or empty directory gives []."""
    located = read_rows(real_dir)
    problems = corpus_problems(located)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:50])
        raise CorpusError(f"{len(problems)} problem(s) in {real_dir}:\n  {shown}")
    if not located:
        return []
    import datasets  # heavy import, only needed when loading

    datasets.disable_progress_bars()
    columns = [*SCHEMA, *OPTIONAL_FIELDS]
    table = datasets.Dataset.from_list(
        [
            {name: row.get(name, OPTIONAL_FIELDS.get(name)) for name in columns}
            for _, row in located
        ],
        features=features(),
    )
    return table.to_list()


def features() -> Any:
    """The corpus's `datasets.Features` (nullable columns stay null)."""
    from datasets import Features, Sequence, Value

    string, boolean = Value("string"), Value("bool")
    return Features(
        {
            "id": string,
            "text": string,
            "intent": string,
            "ambiguous": boolean,
            "alt_intent": string,
            "context": Sequence(string),
            "source_repo": string,
            "path": string,
            "commit": string,
            "license": string,
            "source_type": string,
            "origin": string,
            "turn": Value("int32"),
            "cut": string,
            "redacted": boolean,
            "labeler": string,
            "note": string,
        }
    )


def as_prompts(rows: Iterable[dict[str, Any]]) -> LabeledPrompts:
    """Texts and intents of corpus rows, for training and evaluation."""
    rows = list(rows)
    return LabeledPrompts([r["text"] for r in rows], [r["intent"] for r in rows])


def read_double_labels(path: Path = DOUBLE_LABELS_FILE) -> list[dict[str, Any]] | None:
    """The second labeler's rows ({"id", "intent_b", "ambiguous_b", "labeler_b"}), or None
    when the file is absent. Raises CorpusError on a line that is not a JSON object."""
    if not Path(path).exists():
        return None
    return [row for _, row in json_objects(Path(path), CorpusError)]
