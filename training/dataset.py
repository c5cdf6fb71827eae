"""Load labeled prompts through the `datasets` library and make the fixed train/test split."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from intent_router.labels import INTENTS

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
AUTHORED_DIR = DATA_DIR / "authored"
TRAIN_FILE = DATA_DIR / "train.jsonl"
TEST_FILE = DATA_DIR / "test.jsonl"
TEST_SHARE = 0.2


@dataclass(frozen=True)
class LabeledPrompts:
    """Texts and their intents, in the same order."""

    texts: list[str]
    intents: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def sha256(self) -> str:
        """A content hash of the examples, independent of their order."""
        digest = hashlib.sha256()
        for line in sorted(json.dumps([t, i], ensure_ascii=False) for t, i in self.pairs()):
            digest.update(line.encode("utf-8"))
        return digest.hexdigest()

    def pairs(self) -> Iterable[tuple[str, str]]:
        return zip(self.texts, self.intents, strict=True)


def load_prompts(
    source: str | Path,
    text_column: str = "text",
    intent_column: str = "intent",
    split: str = "train",
) -> LabeledPrompts:
    """Load labeled prompts from a local JSONL/CSV/Parquet file or a hub dataset name.

    Local files are read with ``datasets``' json/csv/parquet builders; any other string is
    taken as a hub dataset name (this needs the network and is never used by the tests).
    Rows whose intent is not in the label set are rejected with a ValueError.
    """
    import datasets  # heavy import, only needed when loading

    datasets.disable_progress_bars()
    path = Path(source)
    if path.exists():
        builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
            path.suffix
        )
        if builder is None:
            raise ValueError(f"{path}: unsupported file type {path.suffix!r}")
        table = datasets.load_dataset(builder, data_files=str(path), split="train")
    else:
        table = datasets.load_dataset(str(source), split=split)
    for column in (text_column, intent_column):
        if column not in table.column_names:
            raise ValueError(f"{source}: no column {column!r} (has {table.column_names})")
    texts = [str(t) if t is not None else "" for t in table[text_column]]
    intents = [str(i) for i in table[intent_column]]
    unknown = sorted(set(intents) - set(INTENTS))
    if unknown:
        raise ValueError(f"{source}: unknown intents {unknown}; expected {list(INTENTS)}")
    return LabeledPrompts(texts, intents)


def read_jsonl(path: Path) -> list[dict[str, str]]:
    """Read a JSON Lines file into a list of objects (used by the split and the checks)."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, rows: Sequence[dict[str, str]]) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def stratified_split(
    rows: Sequence[dict[str, str]], test_share: float = TEST_SHARE
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split rows per intent by a hash of their text: fixed, stratified, and stable.

    Adding examples later never moves an existing example between train and test.
    """
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for intent in INTENTS:
        members = [r for r in rows if r["intent"] == intent]
        members.sort(key=lambda r: hashlib.sha256(r["text"].encode("utf-8")).hexdigest())
        cut = round(len(members) * test_share)
        test.extend(members[:cut])
        train.extend(members[cut:])
    return train, test


def build_split(authored_dir: Path = AUTHORED_DIR, data_dir: Path = DATA_DIR) -> tuple[int, int]:
    """Write data/train.jsonl and data/test.jsonl from every file in data/authored/."""
    rows: list[dict[str, str]] = []
    for path in sorted(Path(authored_dir).glob("*.jsonl")):
        rows.extend({"text": r["text"], "intent": r["intent"]} for r in read_jsonl(path))
    train, test = stratified_split(rows)
    write_jsonl(Path(data_dir) / "train.jsonl", train)
    write_jsonl(Path(data_dir) / "test.jsonl", test)
    return len(train), len(test)


if __name__ == "__main__":
    n_train, n_test = build_split()
    print(f"wrote {TRAIN_FILE.name} ({n_train}) and {TEST_FILE.name} ({n_test})")
