"""The runtime intent classifier: models/intent.onnx + models/intent.json -> Prediction.

One ONNX Runtime session per classifier; ``InferenceSession.run`` is thread-safe, so one
instance serves many concurrent requests. Prompts longer than the metadata's truncation
policy keep only their head and tail, which bounds the work on huge inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from intent_router.exceptions import ModelContractError, ModelError
from intent_router.labels import FALLBACK_INTENT
from intent_router.model_contract import (
    INPUT_NAME,
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    ModelMetadata,
    load_metadata,
)
from intent_router.types import Prediction

DEFAULT_MODELS_DIR: Final[Path] = Path(__file__).resolve().parents[2] / "models"
#: Prompts per ONNX Runtime call in predict_batch.
BATCH_ROWS: Final[int] = 32
_PROBES: Final[tuple[str, ...]] = (
    "",
    "write a python function that parses a csv file",
    "why does this throw a NullPointerException",
    "is this login form vulnerable to sql injection",
)


class IntentClassifier:
    """Predict the intent of prompts with the exported ONNX model."""

    def __init__(self, model_path: Path, metadata_path: Path, threads: int = 1) -> None:
        self.metadata: ModelMetadata = load_metadata(metadata_path)
        self._labels = list(self.metadata.labels)
        self._session = _open_session(model_path, threads)
        self._outputs = [PROBABILITIES_OUTPUT]
        self._check_contract()

    @classmethod
    def from_dir(cls, models_dir: Path = DEFAULT_MODELS_DIR, threads: int = 1) -> IntentClassifier:
        """Load ``intent.onnx`` and ``intent.json`` from ``models_dir``."""
        return cls(Path(models_dir) / "intent.onnx", Path(models_dir) / "intent.json", threads)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._labels)

    @property
    def version(self) -> str:
        return self.metadata.model_version

    @property
    def threshold(self) -> float:
        return self.metadata.confidence_threshold

    def predict(self, text: str) -> Prediction:
        """Classify one prompt."""
        prepared, truncated = self._prepare(text)
        batch = np.array([[prepared]], dtype=object)
        row = self._session.run(self._outputs, {INPUT_NAME: batch})[0][0]
        if self.metadata.temperature != 1.0:
            row = _with_temperature(row.reshape(1, -1), self.metadata.temperature)[0]
        return self._prediction(row, truncated) if text.strip() else self._no_text()

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify several prompts, ``BATCH_ROWS`` per ONNX call (the graph keeps one
        vocabulary-wide buffer per row of a call)."""
        out: list[Prediction] = []
        for start in range(0, len(texts), BATCH_ROWS):
            out += self._predict_chunk(texts[start : start + BATCH_ROWS])
        return out

    def _predict_chunk(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        prepared = [self._prepare(t) for t in texts]
        batch = np.array([p for p, _ in prepared], dtype=object).reshape(-1, 1)
        probabilities = self._session.run(self._outputs, {INPUT_NAME: batch})[0]
        if self.metadata.temperature != 1.0:
            probabilities = _with_temperature(probabilities, self.metadata.temperature)
        return [
            self._prediction(row, truncated) if text.strip() else self._no_text()
            for row, (text, truncated) in zip(probabilities, prepared, strict=True)
        ]

    def _prepare(self, text: str) -> tuple[str, bool]:
        if not isinstance(text, str):
            raise TypeError(f"prompt must be str, not {type(text).__name__}")
        bounded = self.metadata.truncation.apply(text)
        truncated = len(bounded) != len(text)
        if not bounded.isascii():
            # Lone surrogates cannot cross into ONNX Runtime (UTF-8); replace them.
            bounded = bounded.encode("utf-8", "replace").decode("utf-8")
        return bounded, truncated

    def _prediction(self, row: np.ndarray, truncated: bool) -> Prediction:
        values = row.tolist()
        best = values.index(max(values))  # the first of the highest, as argmax
        return Prediction(
            intent=self._labels[best],
            confidence=values[best],
            probabilities=dict(zip(self._labels, values)),
            truncated=truncated,
        )

    def _no_text(self) -> Prediction:
        """A blank prompt (``content: null`` too) carries no evidence: the model would answer
        its training set's class prior, so it gets a uniform distribution and the fallback
        intent, below any threshold."""
        share = 1.0 / len(self._labels)
        return Prediction(FALLBACK_INTENT, share, dict.fromkeys(self._labels, share))

    def _check_contract(self) -> None:
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(string)":
            raise ModelContractError(f"the graph must take one string tensor {INPUT_NAME!r}")
        if outputs != [LABEL_OUTPUT, PROBABILITIES_OUTPUT]:
            raise ModelContractError(f"graph outputs {outputs}, expected label, probabilities")
        batch = np.array(_PROBES, dtype=object).reshape(-1, 1)
        labels, probabilities = self._session.run(None, {INPUT_NAME: batch})
        if probabilities.shape != (len(_PROBES), len(self._labels)):
            raise ModelContractError(
                f"probabilities have shape {probabilities.shape}, metadata names "
                f"{len(self._labels)} labels"
            )
        for label, row in zip(labels, probabilities):
            if self._labels[int(row.argmax())] != str(label):
                raise ModelContractError(
                    "the metadata's label order differs from the graph's probability columns"
                )


def _with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from softmax(logits): p ** (1 / T), renormalised per row."""
    scaled = np.power(np.clip(probabilities.astype(np.float64), 1e-30, 1.0), 1.0 / temperature)
    tempered: np.ndarray = (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)
    return tempered


def _open_session(model_path: Path, threads: int) -> Any:  # an onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc
