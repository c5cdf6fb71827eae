"""Row rules of the real-prompt corpus (data/real/LABELLING.md), on made-up rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.real_corpus import (
    CorpusError,
    corpus_problems,
    load_real_rows,
    read_double_labels,
    row_problems,
    text_id,
)


def make_row(
    text: str = "why does `npm test` hang after the upgrade?", **fields: Any
) -> dict[str, Any]:
    """A valid corpus row; ``fields`` override any column."""
    row = {
        "id": text_id(text),
        "text": text,
        "intent": "debugging",
        "ambiguous": False,
        "alt_intent": None,
        "context": [],
        "source_repo": "octo/app",
        "path": ".aider.input.history",
        "commit": "a" * 40,
        "license": "MIT",
        "source_type": "aider_input_history",
        "origin": "verbatim",
        "turn": 3,
        "cut": "whole",
        "redacted": False,
        "labeler": "collector-1",
        "note": "",
    }
    row.update(fields)
    return row


def test_a_valid_row_has_no_problem() -> None:
    assert row_problems(make_row()) == []
    assert (
        row_problems(make_row(ambiguous=True, alt_intent="general", turn=None, commit=None)) == []
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"license": "GPL-3.0-only"}, "only a style_rewrite may ship"),
        ({"license": "NOASSERTION"}, "only a style_rewrite may ship"),
        ({"id": "0" * 16}, "is not sha256(text)[:16]"),
        ({"intent": "testing"}, "unknown intent"),
        ({"ambiguous": True}, "needs an alt_intent"),
        ({"ambiguous": True, "alt_intent": "debugging"}, "needs an alt_intent"),
        ({"alt_intent": "general"}, "not ambiguous"),
        ({"source_repo": "just-a-name"}, "not owner/name"),
        ({"commit": "abc"}, "40 hex digits"),
        ({"source_type": "slack"}, "unknown source_type"),
        ({"origin": "paraphrase"}, "origin must be one of"),
        ({"turn": True}, "turn must be int or NoneType"),
        ({"ambiguous": "no"}, "ambiguous must be bool"),
        ({"context": ["a", "b", "c"]}, "at most 2 strings"),
        ({"context": ["x" * 1001]}, "longer than 1000"),
        ({"path": " "}, "empty path"),
        ({"labeler": ""}, "empty labeler"),
    ],
)
def test_a_broken_rule_is_named(fields: dict[str, Any], expected: str) -> None:
    problems = row_problems(make_row(**fields))
    assert any(expected in p for p in problems), problems


def test_a_style_rewrite_may_imitate_any_licence() -> None:
    assert row_problems(make_row(license="GPL-3.0-only", origin="style_rewrite")) == []


def test_missing_provenance_is_reported() -> None:
    row = make_row()
    del row["commit"], row["license"]
    assert row_problems(row) == ["missing field 'commit'", "missing field 'license'"]


def test_secrets_in_text_or_context_are_refused() -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    text = f"why is s3 upload failing with {key}"
    assert any("aws_access_key_id" in p for p in row_problems(make_row(text)))
    assert any("secret" in p for p in row_problems(make_row(context=[f"key is {key}"])))
    assert row_problems(make_row("my password is [REDACTED] and login fails")) == []


def test_texts_longer_than_the_cut_are_refused() -> None:
    assert any("more than 4000" in p for p in row_problems(make_row("x" * 4001)))


def _write(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_exact_duplicates_across_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.jsonl", [make_row()])
    _write(
        tmp_path, "b.jsonl", [make_row("add a --dry-run flag"), make_row(source_repo="other/repo")]
    )
    with pytest.raises(CorpusError, match=r"b.jsonl:2: exact duplicate of a.jsonl:1"):
        load_real_rows(tmp_path)


def test_corpus_loads_typed_rows_through_datasets(tmp_path: Path) -> None:
    row = make_row(ambiguous=True, alt_intent="general", context=["earlier turn"])
    del row["note"]  # optional
    _write(tmp_path, "a.jsonl", [row, make_row("add a --dry-run flag", intent="code_generation")])
    _write(tmp_path, "double_labels.jsonl", [{"id": row["id"], "intent_b": "general"}])
    rows = load_real_rows(tmp_path)
    assert [r["intent"] for r in rows] == ["debugging", "code_generation"]
    assert rows[0]["context"] == ["earlier turn"] and rows[0]["note"] == ""
    assert rows[1]["alt_intent"] is None and rows[1]["turn"] == 3


def test_problems_name_the_file_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path, "a.jsonl", [make_row(), make_row("chmod 777 everything", license="AGPL-3.0-only")]
    )
    problems = corpus_problems([("a.jsonl:1", make_row()), ("a.jsonl:2", make_row(id="x"))])
    assert [p.where for p in problems] == ["a.jsonl:2", "a.jsonl:2"]  # bad id, duplicate text
    with pytest.raises(CorpusError, match=r"a\.jsonl:2: verbatim text under 'AGPL-3\.0-only'"):
        load_real_rows(tmp_path)


def test_invalid_json_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps(make_row()) + "\n{oops\n")
    with pytest.raises(CorpusError, match=r"a\.jsonl:2: not valid JSON"):
        load_real_rows(tmp_path)


def test_an_absent_corpus_or_double_label_file_is_empty(tmp_path: Path) -> None:
    assert load_real_rows(tmp_path / "none") == []
    assert read_double_labels(tmp_path / "double_labels.jsonl") is None


def test_a_broken_double_label_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "double_labels.jsonl"
    path.write_text('{"id": "a", "intent_b": "general"}\n\n[1]\n')
    with pytest.raises(CorpusError, match=r"double_labels\.jsonl:3: not a JSON object"):
        read_double_labels(path)
    path.write_text('{"id": "a", "intent_b": "general"}\n')
    assert read_double_labels(path) == [{"id": "a", "intent_b": "general"}]
