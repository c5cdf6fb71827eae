"""The character analyzer the ONNX graph reproduces: ASCII lower-casing only, one token per
code point, n-grams over them."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.features import CharNgrams, kept_characters


def test_only_ascii_letters_are_lower_cased() -> None:
    # Python's str.lower maps these to ASCII ("i" + U+0307, "k"); the C-locale graph does not.
    assert kept_characters("İstanbul \u212a KELVIN") == "İstanbul \u212a kelvin"
    assert kept_characters("ÀB🙂c\x00d\te\n") == "Àb🙂c\x00d\te\n"


def test_ngrams_are_over_code_points_and_cover_the_range() -> None:
    assert CharNgrams((2, 3))("aé-B") == ["aé", "é-", "-b", "aé-", "é-b"]
    assert CharNgrams((1, 2))("") == []


def test_bad_range_is_refused() -> None:
    with pytest.raises(ValueError):
        CharNgrams((3, 2))


def test_analyzer_pickles_and_compares_by_range() -> None:
    analyzer = CharNgrams((2, 4))
    assert pickle.loads(pickle.dumps(analyzer)) == analyzer
    assert analyzer != CharNgrams((1, 4))


@given(st.text(max_size=60), st.integers(1, 3), st.integers(0, 2))
def test_ngram_count_follows_kept_length(text: str, low: int, extra: int) -> None:
    high = low + extra
    kept = len(kept_characters(text))
    grams = CharNgrams((low, high))(text)
    assert len(grams) == sum(max(kept - n + 1, 0) for n in range(low, high + 1))
    assert all(low <= len(g) <= high for g in grams)
