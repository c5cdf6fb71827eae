"""`make eval` on the real test split: its rows, its slices and the side-by-side table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intent_router.evaluation.__main__ import DEFAULT_DATA, format_columns
from intent_router.evaluation.data import DataFileError, LabeledPrompt, load_labeled
from intent_router.evaluation.summary import breakdown
from tests.conftest import FIXTURES

SAMPLE = [json.loads(line) for line in (FIXTURES / "real_sample.jsonl").read_text().splitlines()]


def _corpus(tmp_path: Path, test_ids: list[str]) -> Path:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SAMPLE))
    double = [
        {"id": i, "intent_b": "general", "ambiguous_b": False, "labeler_b": "b"} for i in test_ids
    ]
    (tmp_path / "real" / "double_labels.jsonl").write_text(
        "".join(json.dumps(d) + "\n" for d in double)
    )
    split = tmp_path / "real_split.json"
    split.write_text(json.dumps({"seed": 1, "test_ids": test_ids, "train_ids": []}))
    return split


def test_the_split_file_gives_its_held_out_corpus_rows(tmp_path: Path) -> None:
    chosen = SAMPLE[3:9]
    rows = load_labeled(_corpus(tmp_path, [r["id"] for r in chosen]))
    assert [(r.text, r.intent) for r in rows] == [(r["text"], r["intent"]) for r in chosen]
    assert [r.source_type for r in rows] == [r["source_type"] for r in chosen]
    assert [r.ambiguous for r in rows] == [r["ambiguous"] for r in chosen]


def test_a_stale_or_missing_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="1 test ids, 0 found"):
        load_labeled(_corpus(tmp_path, ["0000000000000000"]))
    with pytest.raises(DataFileError, match="no such file"):
        load_labeled(tmp_path / "none.json")


def test_make_eval_reports_the_real_split_first() -> None:
    assert [p.name for p in DEFAULT_DATA] == ["real_split.json", "test.jsonl"]


def test_slices_by_ambiguity_and_source_type() -> None:
    from intent_router.evaluation.replay import PromptOutcome

    def outcome(true: str, final: str, escalated: bool) -> PromptOutcome:
        return PromptOutcome(
            "t", true, final, 0.5, escalated, final, ("a",), "a", 1, 1, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0
        )

    examples = [
        LabeledPrompt("a", "debugging", "aider_chat_history", False),
        LabeledPrompt("b", "general", "prompt_file", True),
        LabeledPrompt("c", "general", "prompt_file", False),
    ]
    outcomes = [
        outcome("debugging", "debugging", False),
        outcome("general", "debugging", True),
        outcome("general", "general", False),
    ]
    out = breakdown(examples, outcomes)
    assert out["kept_accuracy"] == 1.0
    assert out["accuracy_source_prompt_file"] == 0.5
    assert out["macro_f1_ambiguous"] == 0.0 and out["macro_f1_clear"] == 1.0
    assert "macro_f1_clear" not in breakdown(examples[:1], outcomes[:1])


def test_the_table_has_one_column_per_set() -> None:
    table = format_columns(
        ["real-test", "test.jsonl"],
        [{"accuracy": 0.5, "macro_f1_clear": 0.7, "macro_f1_ambiguous": 0.4}, {"accuracy": 0.9}],
        0.8,
        ["run1", "run2"],
    )
    lines = table.splitlines()
    assert lines[0].split() == ["real-test", "test.jsonl"]
    assert "0.7000 / 0.4000" in table and lines[2].split()[-2:] == ["0.5000", "0.9000"]
    assert lines[-1].split()[-2:] == ["run1", "run2"]
