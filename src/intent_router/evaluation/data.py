"""The labeled evaluation set: JSONL rows {"text": ..., "intent": ...}, validated line by line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from intent_router.labels import is_intent


class DataFileError(ValueError):
    """The evaluation data file is missing, unreadable or has an invalid row (names the line)."""


@dataclass(frozen=True)
class LabeledPrompt:
    """One prompt and the intent a human gave it."""

    text: str
    intent: str


def load_labeled(path: Path) -> list[LabeledPrompt]:
    """Read a JSONL file of labeled prompts; blank lines are skipped, other columns ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from exc
    rows = [_row(line, f"{path}:{number}") for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise DataFileError(f"{path}: no labeled rows")
    return rows


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, to tie a run to the exact data it replayed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _row(line: str, where: str) -> LabeledPrompt:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict):
        raise DataFileError(f"{where}: expected a JSON object with 'text' and 'intent'")
    text, intent = raw.get("text"), raw.get("intent")
    if not isinstance(text, str) or not text:
        raise DataFileError(f"{where}: missing or empty 'text'")
    if not isinstance(intent, str):
        raise DataFileError(f"{where}: missing 'intent'")
    if not is_intent(intent):
        raise DataFileError(f"{where}: unknown intent {intent!r}")
    return LabeledPrompt(text=text, intent=intent)
