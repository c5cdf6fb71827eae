"""Character n-grams that scikit-learn computes in training and ONNX Runtime computes in the
exported graph, identically.

scikit-learn's ``analyzer="char_wb"`` has no ONNX converter, and its lower-casing is Unicode
(``"İ".lower()`` is ``"i̇"``, ``"\\u212a".lower()`` is ``"k"``) while ONNX Runtime's
StringNormalizer in the C locale lower-cases ASCII only. So the analyzer here is defined by
what the graph can do exactly:

1. lower-case ASCII letters only (StringNormalizer LOWER, locale "C");
2. keep the characters matched by ``CHAR_PATTERN``, one token each (com.microsoft Tokenizer
   with that single-character ``tokenexp``; the class is ASCII, so Python's ``re`` on ``str``
   and RE2 on UTF-8 bytes match the same characters);
3. count the n-grams of ``ngram_range`` over the kept characters (TfIdfVectorizer over the
   character tokens: an n-gram of characters is an n-gram of tokens).

Characters outside the class (non-ASCII, control characters other than tab and newline) are
dropped, so n-grams span them; both sides do the same.
"""

from __future__ import annotations

import re
import string
from typing import Final

#: One kept character: lower-case letters, digits, space, tab, newline and ASCII punctuation.
CHAR_PATTERN: Final[str] = r"[a-z0-9_ \t\n?!`{}()\[\];:=<>/\\#@$%&*+|~'\".,^-]"
_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_KEPT: Final = re.compile(CHAR_PATTERN)


def kept_characters(text: str) -> str:
    """The characters the graph tokenizes ``text`` into, in order."""
    return "".join(_KEPT.findall(text.translate(_ASCII_LOWER)))


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
