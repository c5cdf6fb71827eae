"""A LinearSVC served as a linear-softmax model (candidates.SvmSoftmax) exports through the
word + character graph with parity, its temperature folded in."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES
from training.calibration import fold_temperature
from training.candidates import svm_softmax_candidates
from training.export import export_pipeline
from training.parity import STRESS_CORPUS, check_parity

ROWS = [json.loads(line) for line in (FIXTURES / "small_train.jsonl").read_text().splitlines()]
TEXTS = [r["text"] for r in ROWS]
INTENTS = [r["intent"] for r in ROWS]


def test_svm_softmax_exports_with_parity_after_temperature_folding(tmp_path) -> None:
    candidate = svm_softmax_candidates()[0]
    pipeline = candidate.build(0).fit(TEXTS, INTENTS)
    assert fold_temperature(pipeline.steps[-1][1], 0.25)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    report = check_parity(pipeline, path, TEXTS[:60] + list(STRESS_CORPUS))
    assert report.passed, report
