"""The shipped datasets: `make data-check` passes (the authored set and the real-prompt corpus
meet every floor), the authored split is current, the real corpus keeps every row rule of
data/real/LABELLING.md and its committed repository split is current."""

import pytest

from training.data_check import main as data_check
from training.dataset import AUTHORED_DIR, TEST_FILE, TRAIN_FILE, read_jsonl, stratified_split
from training.real_corpus import PERMISSIVE_LICENCES, load_real_rows, text_id
from training.real_split import MIN_TEST_SHARE, read_split, rows_by_side, split_problems


def test_shipped_datasets_meet_the_floors(capsys: pytest.CaptureFixture[str]) -> None:
    assert data_check([]) == 0, capsys.readouterr().out


def test_committed_split_is_the_one_build_split_makes() -> None:
    rows = [
        {"text": r["text"], "intent": r["intent"]}
        for p in sorted(AUTHORED_DIR.glob("*.jsonl"))
        for r in read_jsonl(p)
    ]
    train, test = stratified_split(rows)
    assert train == read_jsonl(TRAIN_FILE)
    assert test == read_jsonl(TEST_FILE)


@pytest.fixture(scope="module")
def real_rows() -> list[dict]:
    return load_real_rows()  # raises, listing every problem, if any row breaks a rule


def test_real_rows_keep_the_licence_rule_ids_and_provenance(real_rows: list[dict]) -> None:
    assert real_rows
    for row in real_rows:
        assert row["origin"] == "style_rewrite" or row["license"] in PERMISSIVE_LICENCES, row["id"]
        assert row["id"] == text_id(row["text"])
        assert row["source_repo"] and row["path"] and row["source_type"] and row["cut"]
    assert len({r["text"] for r in real_rows}) == len(real_rows)


def test_the_committed_real_split_is_current_and_grouped_by_repository(
    real_rows: list[dict],
) -> None:
    split = read_split()
    assert split is not None
    assert split_problems(real_rows, split) == []
    train, test = rows_by_side(real_rows, split)
    assert {r["source_repo"] for r in train}.isdisjoint({r["source_repo"] for r in test})
    assert len(test) / len(real_rows) >= MIN_TEST_SHARE
    assert len(test) == len(split.test_ids)
