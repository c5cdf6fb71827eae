"""Export parity for every graph shape the exporter emits, on pruned vocabularies too."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from intent_router.classifier import IntentClassifier
from intent_router.model_contract import ModelMetadata, TruncationPolicy
from tests.conftest import FIXTURES
from training.candidates import _chars, _tfidf, _word_char
from training.export import WORD_PATTERN, export_pipeline
from training.features import CharNgrams
from training.parity import STRESS_CORPUS, check_parity

ROWS = [json.loads(line) for line in (FIXTURES / "small_train.jsonl").read_text().splitlines()]
TEXTS = [r["text"] for r in ROWS]
INTENTS = [r["intent"] for r in ROWS]
PROBES = TEXTS[:60] + list(STRESS_CORPUS) + ["set -euo pipefail", "euo pipefail euo"]


@pytest.mark.parametrize(
    "vectorizer_options",
    [
        {},  # binary, full vocabulary: the fast one-MatMul path
        {"max_features": 150},  # pruned: n-grams whose words were pruned away
        {"binary": False},  # counts with idf folded in, ReduceL2 path
        {"binary": False, "sublinear_tf": True},  # generic arithmetic path
        {"token_pattern": WORD_PATTERN, "ngram_range": (1, 3)},
    ],
)
def test_logistic_regression_exports_with_parity(vectorizer_options: dict, tmp_path) -> None:
    pipeline = Pipeline(
        [("tfidf", _tfidf(**vectorizer_options)), ("clf", LogisticRegression(C=10, max_iter=2000))]
    ).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    report = check_parity(pipeline, path, PROBES)
    assert report.passed, report


def test_calibrated_svm_exports_with_parity(tmp_path) -> None:
    pipeline = Pipeline(
        [("tfidf", _tfidf(max_features=300)), ("clf", CalibratedClassifierCV(LinearSVC(), cv=3))]
    ).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    assert check_parity(pipeline, path, PROBES).passed


def test_unsupported_token_pattern_is_refused() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(max_iter=500))]
    ).fit(TEXTS, INTENTS)
    with pytest.raises(ValueError, match="analyzer='word'"):
        export_pipeline(pipeline)


def test_batch_rows_do_not_leak_into_each_other(tmp_path) -> None:
    pipeline = Pipeline([("tfidf", _tfidf()), ("clf", LogisticRegression(max_iter=2000))]).fit(
        TEXTS, INTENTS
    )
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    texts = ["a", "x " * 500, TEXTS[0], ""]
    batch = session.run(None, {"text": np.array(texts, dtype=object).reshape(-1, 1)})[1]
    for text, row in zip(texts, batch):
        single = session.run(None, {"text": np.array([[text]], dtype=object)})[1][0]
        np.testing.assert_allclose(row, single, atol=1e-6)


CHAR_PROBES = PROBES + [
    "İstanbul \u212a KELVIN ÀB",  # Python lower-cases these to ASCII; the graph must not
    "Fix @src/app.ts:42\n```ts\nconst x = y?.z ?? 0;\n```",
    "    at Object.<anonymous> (/app/index.js:10:5)\n\tat Module._compile",
    "@@ -1,3 +1,4 @@\n-old\n+new",
]


@pytest.mark.parametrize(
    "char_options",
    [
        {},  # the shipped shape: word 1-2 grams + character 2-4 grams
        {"analyzer": CharNgrams((1, 3)), "min_df": 1},  # 1-grams, full vocabulary
        {"max_features": 200},  # pruned: whole n-gram orders may go missing
    ],
)
def test_word_and_character_ngrams_export_with_parity(char_options: dict, tmp_path) -> None:
    pipeline = _word_char(0, c=10.0, **char_options).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    report = check_parity(pipeline, path, CHAR_PROBES)
    assert report.passed, report


def test_character_block_counts_padding_of_short_batch_rows_as_nothing(tmp_path) -> None:
    pipeline = _word_char(0, c=10.0).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    texts = ["a", "# x " * 300, TEXTS[0], "", "##"]
    batch = session.run(None, {"text": np.array(texts, dtype=object).reshape(-1, 1)})[1]
    for text, row in zip(texts, batch):
        single = session.run(None, {"text": np.array([[text]], dtype=object)})[1][0]
        np.testing.assert_allclose(row, single, atol=1e-6)


def test_union_in_front_of_another_classifier_is_refused() -> None:
    pipeline = _word_char(0)
    pipeline.steps[-1] = ("clf", CalibratedClassifierCV(LinearSVC(), cv=3))
    pipeline.fit(TEXTS, INTENTS)
    with pytest.raises(ValueError, match="multinomial LogisticRegression"):
        export_pipeline(pipeline)


def test_word_and_character_graph_has_few_nodes_and_no_vocabulary_wide_pass() -> None:
    """ONNX Runtime pays about half a microsecond per node, and the n-gram lookup is one
    integer-key LabelEncoder; the only [N, V + 1] tensor is the count buffer."""
    pipeline = _word_char(0, c=10.0).fit(TEXTS, INTENTS)
    ops = [node.op_type for node in export_pipeline(pipeline).graph.node]
    assert len(ops) <= 43, ops
    assert ops.count("LabelEncoder") == 3  # the words, the characters, then key -> row
    assert ops.count("ScatterElements") == 1
    assert "TfIdfVectorizer" not in ops
    assert "Unique" not in ops  # ONNX Runtime's Unique: about 200 us per 1,000 keys


#: Texts where counting each n-gram once matters: the same n-grams many times over, in
#: and out of the vocabulary, and more than 32,767 times (beyond an int16 count).
REPEATS = [
    "the the the the the",
    "fix fix fix the bug bug bug",
    "aaaa" * 50,
    "abab" * 2000,
    "error " * 20_000,
    ("ab" * 50_000) + "?",
    "x",
    "ÀÀÀ éé 修修修 🙂🙂",
    "refactor\n\n\n\n    refactor\t\trefactor",
]


def test_word_and_character_graph_counts_each_ngram_once(tmp_path) -> None:
    pipeline = _word_char(0, c=10.0).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    export_pipeline(pipeline, path)
    report = check_parity(pipeline, path, REPEATS + ["", " ", "\x00"])
    assert report.passed, report


def test_classifier_on_the_word_and_character_graph_matches_sklearn(tmp_path) -> None:
    """Through the runtime classifier: truncation, lone surrogates replaced, batches."""
    pipeline = _word_char(0, c=10.0).fit(TEXTS, INTENTS)
    export_pipeline(pipeline, tmp_path / "intent.onnx")
    labels = tuple(str(c) for c in pipeline.classes_)
    metadata = ModelMetadata(labels, "test", 0.5, "0" * 64, "2026-12-07T00:00:00+00:00")
    (tmp_path / "intent.json").write_text(metadata.to_json())
    classifier = IntentClassifier.from_dir(tmp_path)
    texts = [*REPEATS, "\ud800 lone surrogate \udfff", "a" * 3000 + " the end", TEXTS[0]]
    policy = TruncationPolicy()
    expected = pipeline.predict_proba(
        [policy.apply(t).encode("utf-8", "replace").decode("utf-8") for t in texts]
    )
    for got in (classifier.predict_batch(texts), [classifier.predict(t) for t in texts]):
        for prediction, row in zip(got, expected, strict=True):
            assert labels[int(row.argmax())] == prediction.intent
            np.testing.assert_allclose(
                [prediction.probabilities[label] for label in labels], row, atol=1e-4
            )


def test_wide_blocks_whose_keys_cannot_be_numbered_apart_export_with_parity(tmp_path) -> None:
    """Character 2-5 grams put the word block's numbering past 2 ** 62 (word 3-grams of
    ids above 5-character keys): its keys get an offset Add instead."""
    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("word", _tfidf(token_pattern=WORD_PATTERN, ngram_range=(1, 3))),
                        ("char", _chars(analyzer=CharNgrams((2, 5)), min_df=1)),
                    ]
                ),
            ),
            ("clf", LogisticRegression(C=10, max_iter=2000)),
        ]
    ).fit(TEXTS, INTENTS)
    path = tmp_path / "m.onnx"
    model = export_pipeline(pipeline, path)
    offsets = [n for n in model.graph.node if n.op_type == "Add" and n.input[1].endswith("offset")]
    assert len(offsets) == 3  # the word block's 1-, 2- and 3-grams
    report = check_parity(pipeline, path, CHAR_PROBES + REPEATS)
    assert report.passed, report
