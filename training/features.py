"""Character n-grams that scikit-learn computes in training and ONNX Runtime computes in the
exported graph, identically.

scikit-learn's ``analyzer="char_wb"`` has no ONNX converter, and its lower-casing is Unicode
(``"İ".lower()`` is ``"i̇"``, ``"\u212a".lower()`` is ``"k"``) while ONNX Runtime's
StringNormalizer in the C locale lower-cases ASCII letters only (checked over every code
point). So the analyzer here is defined by what the graph does exactly:

1. lower-case ASCII letters only (StringNormalizer LOWER, locale "C");
2. one token per code point (com.microsoft Tokenizer with ``separators=[""]``, its character
   mode; a regex ``tokenexp`` per character was three times slower);
3. count the n-grams of ``ngram_range`` over those characters (TfIdfVectorizer over the
   character tokens: an n-gram of characters is an n-gram of tokens).

Whitespace is kept as written (no collapsing), so indentation, blank lines and "\n+" of a
diff are n-grams like any other.
"""

from __future__ import annotations

import string
from typing import Final

_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def kept_characters(text: str) -> str:
    """The characters the graph tokenizes ``text`` into, in order: ``text`` with its ASCII
    letters lower-cased."""
    return text.translate(_ASCII_LOWER)


class CharNgrams:
    """A picklable ``TfidfVectorizer(analyzer=...)`` callable: the character n-grams of a text
    as the ONNX graph counts them (see the module docstring)."""

    def __init__(self, ngram_range: tuple[int, int] = (2, 4)) -> None:
        low, high = ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"bad ngram_range {ngram_range}")
        self.ngram_range = (int(low), int(high))

    def __call__(self, text: str) -> list[str]:
        chars = kept_characters(text)
        low, high = self.ngram_range
        return [chars[i : i + n] for n in range(low, high + 1) for i in range(len(chars) - n + 1)]

    def __repr__(self) -> str:
        return f"CharNgrams(ngram_range={self.ngram_range})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharNgrams) and other.ngram_range == self.ngram_range

    def __hash__(self) -> int:
        return hash(self.ngram_range)
