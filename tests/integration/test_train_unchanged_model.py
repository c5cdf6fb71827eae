"""`make train` twice on the same data: the second run finds a byte-identical model and leaves
models/intent.json as it was (same version, same date), so git shows no change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from training.candidates import default_candidates
from training.train import train

pytestmark = pytest.mark.slow


def test_retraining_on_the_same_data_leaves_the_metadata_untouched(tmp_path: Path) -> None:
    rows = (FIXTURES / "small_train.jsonl").read_text().splitlines()
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(rows[::4]) + "\n")
    candidates = [c for c in default_candidates() if c.name == "lr_word12_baseline"]
    models = tmp_path / "models"

    def run() -> None:
        train(
            data,
            FIXTURES / "small_test.jsonl",
            out_dir=models,
            candidates=candidates,
            folds=2,
            log_to_mlflow=False,
        )

    run()
    first = (models / "intent.json").read_bytes(), (models / "intent.onnx").read_bytes()
    run()
    assert ((models / "intent.json").read_bytes(), (models / "intent.onnx").read_bytes()) == first
    # Other data: a new model, a new intent.json.
    data.write_text("\n".join(rows[1::4]) + "\n")
    run()
    assert (models / "intent.json").read_bytes() != first[0]
