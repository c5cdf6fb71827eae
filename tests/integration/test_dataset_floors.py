"""The shipped dataset meets every floor `make data-check` enforces, and the split is current."""

from training.data_check import main as data_check
from training.dataset import AUTHORED_DIR, TEST_FILE, TRAIN_FILE, read_jsonl, stratified_split


def test_shipped_dataset_meets_the_floors(capsys) -> None:
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
