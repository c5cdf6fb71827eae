"""The word-vector block: an idf-weighted mean of fixed word vectors, L2-normalised."""

from __future__ import annotations

import numpy as np
import pytest

from training.word_vectors import WordTable, WordVectorMean, words_of

TABLE = WordTable(
    ["fix", "crash", "readme", "docs", "unseen"],
    np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [5, 5, 5]], dtype=np.float32),
    generic=["unseen", "notintable"],
)


def test_words_are_the_word_blocks_tokens_lowercased() -> None:
    assert words_of("Fix a CRASH in foo_bar.py!") == ["fix", "crash", "in", "foo_bar", "py"]


def test_a_prompt_is_the_idf_weighted_mean_of_its_words_vectors() -> None:
    block = WordVectorMean(TABLE, generic=False).fit(["fix crash", "fix it", "readme docs"])
    assert set(block.vocabulary_) == {"fix", "crash", "readme", "docs"}
    x = block.transform(["Fix the crash, fix it"]).toarray()[0]
    idf = {w: np.log(4 / (d + 1)) + 1 for w, d in {"fix": 2, "crash": 1}.items()}
    expected = idf["fix"] * np.array([1, 0, 0]) + idf["crash"] * np.array([1, 1, 0])
    assert np.allclose(x, expected / np.linalg.norm(expected), atol=1e-6)


def test_plain_mean_scale_and_unknown_words() -> None:
    block = WordVectorMean(TABLE, idf=False, generic=False, scale=2.0).fit(["fix readme"])
    x = block.transform(["fix readme", "nothing known"]).toarray()
    assert np.allclose(x[0], 2.0 * np.array([1, 0, 1]) / np.sqrt(2))
    assert not x[1].any()


def test_generic_words_extend_the_vocabulary_beyond_the_train_rows() -> None:
    block = WordVectorMean(TABLE, generic=True).fit(["fix crash"])
    assert "unseen" in block.vocabulary_ and "notintable" not in block.vocabulary_
    assert block.transform(["unseen"]).toarray()[0] == pytest.approx(np.ones(3) / np.sqrt(3))
    assert block.table_megabytes() == pytest.approx(3 * 3 * 4 / 1e6)


def test_max_words_keeps_the_most_frequent_train_words() -> None:
    block = WordVectorMean(TABLE, max_words=1, generic=False).fit(["fix crash", "fix docs"])
    assert list(block.vocabulary_) == ["fix"]


def test_the_mean_norm_is_linear_in_the_words_and_scaled_to_the_train_rows() -> None:
    block = WordVectorMean(TABLE, idf=False, generic=False, norm="mean").fit(
        ["fix crash", "readme docs", "fix readme"]
    )
    raw = {"fix crash": [1, 0.5, 0], "readme docs": [0, 0.5, 1], "fix readme": [0.5, 0, 0.5]}
    typical = np.median([np.linalg.norm(v) for v in raw.values()])
    assert block.typical_ == pytest.approx(typical)
    x = block.transform(["crash fix"]).toarray()[0]
    assert np.allclose(x, np.array(raw["fix crash"]) / typical)


def test_dims_keep_the_first_components() -> None:
    block = WordVectorMean(TABLE, generic=False, dims=2).fit(["fix crash"])
    assert block.transform(["crash"]).toarray().shape == (1, 2)
