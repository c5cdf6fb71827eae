"""The committed models/intent.onnx honours the contract and runs under the C locale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from intent_router.classifier import DEFAULT_MODELS_DIR, IntentClassifier
from intent_router.exceptions import ModelContractError
from intent_router.labels import INTENTS
from training.parity import STRESS_CORPUS


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier.from_dir()


def test_committed_model_is_small_and_described() -> None:
    assert (DEFAULT_MODELS_DIR / "intent.onnx").stat().st_size < 10_000_000
    meta = json.loads((DEFAULT_MODELS_DIR / "intent.json").read_text())
    assert meta["metrics"]["parity_max_abs_diff"] <= 1e-4


def test_model_loads_and_predicts_with_only_the_c_locale() -> None:
    code = (
        "from intent_router.classifier import IntentClassifier\n"
        "c = IntentClassifier.from_dir()\n"
        "print(c.predict('Écrire une fonction naïve 修复 🙂').intent)\n"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() in INTENTS


@pytest.mark.parametrize("text", STRESS_CORPUS + ("\ud800 lone surrogate",))
def test_edge_inputs_give_a_distribution(classifier: IntentClassifier, text: str) -> None:
    prediction = classifier.predict(text)
    assert prediction.intent in INTENTS
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.confidence == max(prediction.probabilities.values())


def test_huge_prompts_are_truncated(classifier: IntentClassifier) -> None:
    huge = "please refactor this function " + "x = 1\n" * 200_000
    assert classifier.predict(huge).truncated
    assert not classifier.predict("short prompt").truncated


def test_non_string_input_is_rejected(classifier: IntentClassifier) -> None:
    with pytest.raises(TypeError):
        classifier.predict(123)  # type: ignore[arg-type]


def test_batch_equals_one_by_one(classifier: IntentClassifier) -> None:
    texts = ["add unit tests for the cart service", "why does this segfault", "", "hi"]
    batch = classifier.predict_batch(texts)
    for text, prediction in zip(texts, batch):
        single = classifier.predict(text)
        assert single.intent == prediction.intent
        assert single.confidence == pytest.approx(prediction.confidence, abs=1e-6)


def test_concurrent_calls_agree_with_serial_ones(classifier: IntentClassifier) -> None:
    texts = [f"fix the failing test number {i} in test_api.py" for i in range(50)]
    expected = [classifier.predict(t).probabilities for t in texts]
    results: dict[int, dict[str, float]] = {}

    def work(offset: int) -> None:
        for i in range(offset, len(texts), 4):
            results[i] = classifier.predict(texts[i]).probabilities

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(texts))] == expected


def test_canonical_prompts_get_their_intent(classifier: IntentClassifier) -> None:
    cases = {
        "rename getUser to fetchUser everywhere": "refactoring",
        "write a python function that validates an IBAN": "code_generation",
        "is this regex vulnerable to ReDoS? ^(a+)+$": "security_audit",
        "TypeError: Cannot read properties of undefined (reading 'map') in my React component": "debugging",
        "add docstrings to every public function in utils.py": "documentation",
        "should we split our monolith into microservices or keep a modular monolith?": "architecture_review",
        "thanks, that worked!": "general",
    }
    got = {text: classifier.predict(text).intent for text in cases}
    assert got == cases


def test_metadata_whose_labels_disagree_with_the_graph_is_refused(tmp_path) -> None:
    meta = json.loads((DEFAULT_MODELS_DIR / "intent.json").read_text())
    meta["labels"] = list(reversed(meta["labels"]))
    (tmp_path / "intent.json").write_text(json.dumps(meta))
    (tmp_path / "intent.onnx").write_bytes((DEFAULT_MODELS_DIR / "intent.onnx").read_bytes())
    with pytest.raises(ModelContractError, match="label order"):
        IntentClassifier.from_dir(tmp_path)


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_a_blank_prompt_gets_the_fallback_intent_below_any_threshold(
    classifier: IntentClassifier, text: str
) -> None:
    [batch] = classifier.predict_batch([text])
    assert batch == classifier.predict(text)
    assert batch.intent == "general"
    assert batch.confidence == pytest.approx(1 / len(INTENTS))
    assert batch.confidence < classifier.threshold
    assert set(batch.probabilities.values()) == {batch.confidence}


def test_a_temperature_in_the_metadata_softens_the_graph_probabilities(
    classifier: IntentClassifier, tmp_path
) -> None:
    meta = json.loads((DEFAULT_MODELS_DIR / "intent.json").read_text())
    assert meta.get("temperature", 1.0) == 1.0  # make train folds calibration into the graph
    (tmp_path / "intent.json").write_text(json.dumps({**meta, "temperature": 3.0}))
    (tmp_path / "intent.onnx").write_bytes((DEFAULT_MODELS_DIR / "intent.onnx").read_bytes())
    soft = IntentClassifier.from_dir(tmp_path)
    text = "why does this throw a NullPointerException"
    sharp, softened = classifier.predict(text), soft.predict(text)
    assert softened.intent == sharp.intent
    assert softened.confidence < sharp.confidence
    assert sum(softened.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    ratio = {k: (softened.probabilities[k] / sharp.probabilities[k] ** (1 / 3)) for k in INTENTS}
    assert max(ratio.values()) == pytest.approx(min(ratio.values()), rel=1e-3)
