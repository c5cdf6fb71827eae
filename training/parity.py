"""Parity between a scikit-learn pipeline and its ONNX export, run under the C/POSIX locale.

ONNX Runtime is run in a child process with LC_ALL=C and LANG=C, so a graph that needs
en_US.UTF-8 (skl2onnx's default StringNormalizer locale) fails here rather than in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_ABS_DIFF = 1e-4

#: Inputs that break naive exports: empty, blank, emoji, CJK, accents, code, control
#: characters, and a 100,000-character prompt.
STRESS_CORPUS: tuple[str, ...] = (
    "",
    " ",
    "   \t\n  ",
    "🙂🚀🔥 can u fix 🐛 pls",
    "修复这个函数里的空指针异常",
    "このコードをリファクタリングしてください",
    "Écrire une fonction naïve qui crée un résumé — déjà vu, Ångström, Straße",
    "ÜBER-LANGE FUNKTION REFAKTORISIEREN İstanbul",
    "def f(x):\n    return x + 1  # TODO: handle None\n",
    "SELECT * FROM users WHERE id = '1' OR '1'='1'; --",
    "Traceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'id'",
    "a",
    "!!!???...",
    "x" * 100_000,
    ("refactor this loop please " * 4000)[:100_000],
    "tab\tseparated\x00nul byte\x07bell",
    "MiXeD CaSe ReFaCtOr ThE ParSer",
)


@dataclass(frozen=True)
class ParityReport:
    """How closely the ONNX graph reproduced scikit-learn."""

    n_texts: int
    max_abs_diff: float
    argmax_agreement: float
    label_agreement: float

    @property
    def passed(self) -> bool:
        return (
            self.argmax_agreement == 1.0
            and self.label_agreement == 1.0
            and self.max_abs_diff <= MAX_ABS_DIFF
        )


def onnx_probabilities_in_c_locale(
    model_path: Path, texts: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Run the ONNX graph over ``texts`` in a child process whose locale is C/POSIX."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "texts.npy"
        outputs = Path(tmp) / "out.npz"
        np.save(inputs, np.array(list(texts), dtype=object), allow_pickle=True)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "LANGUAGE": ""}
        subprocess.run(
            [sys.executable, "-m", "training.parity", str(model_path), str(inputs), str(outputs)],
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
        result = np.load(outputs, allow_pickle=True)
        return result["probabilities"], [str(x) for x in result["labels"]]


def check_parity(pipeline: object, model_path: Path, texts: Sequence[str]) -> ParityReport:
    """Compare ``pipeline.predict_proba`` with the ONNX graph on ``texts`` (C locale)."""
    expected = np.asarray(pipeline.predict_proba(list(texts)), dtype=np.float64)  # type: ignore[attr-defined]
    got, labels = onnx_probabilities_in_c_locale(model_path, texts)
    classes = [str(c) for c in pipeline.classes_]  # type: ignore[attr-defined]
    expected_labels = [classes[i] for i in expected.argmax(axis=1)]
    return ParityReport(
        n_texts=len(texts),
        max_abs_diff=float(np.abs(expected - got).max()),
        argmax_agreement=float((expected.argmax(axis=1) == got.argmax(axis=1)).mean()),
        label_agreement=float(np.mean([a == b for a, b in zip(expected_labels, labels)])),
    )


def _run_child(model_path: str, inputs: str, outputs: str) -> None:
    import onnxruntime as ort

    texts = np.load(inputs, allow_pickle=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    # In chunks: the graph keeps one vocabulary-wide buffer per row of a call.
    parts = [
        session.run(None, {"text": texts[i : i + 64].reshape(-1, 1)})
        for i in range(0, len(texts), 64)
    ]
    labels = np.concatenate([p[0] for p in parts]) if parts else np.array([], dtype=object)
    probabilities = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 0))
    np.savez(outputs, probabilities=probabilities.astype(np.float64), labels=labels)


if __name__ == "__main__":
    _run_child(*sys.argv[1:4])
