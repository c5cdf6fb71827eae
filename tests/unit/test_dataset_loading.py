from pathlib import Path

import pytest

from training.dataset import load_prompts


def test_csv_with_a_column_mapping_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text('prompt,label\n"fix the crash in app.py",debugging\nhi,general\n')
    data = load_prompts(path, text_column="prompt", intent_column="label")
    assert data.texts == ["fix the crash in app.py", "hi"]
    assert data.intents == ["debugging", "general"]


def test_unknown_intents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "hello", "intent": "chit_chat"}\n')
    with pytest.raises(ValueError, match="chit_chat"):
        load_prompts(path)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "hello", "intent": "general"}\n')
    with pytest.raises(ValueError, match="'label'"):
        load_prompts(path, intent_column="label")


def test_the_data_hash_ignores_row_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rows = ['{"text": "one", "intent": "general"}', '{"text": "two", "intent": "debugging"}']
    a.write_text("\n".join(rows) + "\n")
    b.write_text("\n".join(reversed(rows)) + "\n")
    assert load_prompts(a).sha256() == load_prompts(b).sha256()
    b.write_text(rows[0] + "\n")
    assert load_prompts(a).sha256() != load_prompts(b).sha256()
