"""The labeled evaluation set: JSONL rows {"text": ..., "intent": ...}, validated line by line,
or the real test split (data/real_split.json: the corpus rows of data/real/ it holds out)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intent_router.jsonl import json_objects
from intent_router.labels import is_intent

#: The second labeler's file beside the corpus parts: labels, not prompts.
DOUBLE_LABELS = "double_labels.jsonl"


class DataFileError(ValueError):
    """The evaluation data file is missing, unreadable or has an invalid row (names the line)."""


@dataclass(frozen=True)
class LabeledPrompt:
    """One prompt and the intent a human gave it."""

    text: str
    intent: str
    source_type: str = ""  # real corpus rows: where the prompt came from
    ambiguous: bool = False  # real corpus rows: a second label is defensible


def load_labeled(path: Path) -> list[LabeledPrompt]:
    """Read a JSONL file of labeled prompts (blank lines skipped, other columns ignored), or,
    for a ``.json`` split file, the real test split it names."""
    if Path(path).suffix == ".json":
        return load_real_test(Path(path))
    try:
        objects = json_objects(Path(path), DataFileError)
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from exc
    rows = [_labeled(raw, f"{path}:{where.rpartition(':')[2]}") for where, raw in objects]
    if not rows:
        raise DataFileError(f"{path}: no labeled rows")
    return rows


def load_real_test(split_file: Path, corpus_dir: Path | None = None) -> list[LabeledPrompt]:
    """The rows of ``corpus_dir`` (default: ``real/`` beside the split file) whose ids the
    split's ``test_ids`` hold out, in corpus order."""
    try:
        split = json.loads(Path(split_file).read_text(encoding="utf-8"))
        test_ids = set(split["test_ids"])
    except FileNotFoundError as exc:
        raise DataFileError(f"{split_file}: no such file (make split writes it)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"{split_file}: not a split file with 'test_ids' ({exc})") from exc
    corpus = corpus_dir or Path(split_file).parent / "real"
    rows = []
    for part in sorted(p for p in corpus.glob("*.jsonl") if p.name != DOUBLE_LABELS):
        for where, raw in json_objects(part, DataFileError):
            if raw.get("id") in test_ids:
                example = _labeled(raw, where)
                source, ambiguous = str(raw.get("source_type", "")), bool(raw.get("ambiguous"))
                rows.append(LabeledPrompt(example.text, example.intent, source, ambiguous))
    if len(rows) != len(test_ids):
        raise DataFileError(
            f"{split_file}: {len(test_ids)} test ids, {len(rows)} found in {corpus} (make split)"
        )
    return rows


def examples_sha256(examples: list[LabeledPrompt]) -> str:
    """A hash of the labeled prompts themselves, for a set gathered from several files."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.text, example.intent]).encode("utf-8"))
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, to tie a run to the exact data it replayed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _labeled(raw: dict[str, Any], where: str) -> LabeledPrompt:
    text, intent = raw.get("text"), raw.get("intent")
    if not isinstance(text, str) or not text:
        raise DataFileError(f"{where}: missing or empty 'text'")
    if not isinstance(intent, str):
        raise DataFileError(f"{where}: missing 'intent'")
    if not is_intent(intent):
        raise DataFileError(f"{where}: unknown intent {intent!r}")
    return LabeledPrompt(text=text, intent=intent)
