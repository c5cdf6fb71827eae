"""Pretrained word vectors as extra features (issue 13): a prototype for the experiment grid.

The exportable feature: a bounded word vocabulary (the word block's tokens, ``WORD_PATTERN``
lowercased), each word mapped offline to wordllama's embedding of that word; a prompt's feature
is the idf-weighted (or plain) mean of its distinct in-vocabulary words' vectors, L2-normalised.
In the ONNX graph that is the word block's key lookup, a binary presence vector times the idf,
one MatMul with the table (vocabulary x 256) and an L2 normalisation: no new runtime
dependency, only the table in the model file.

The vectors come from ``wordllama`` (MIT; its default l2_supercat 256-d weights ship in the
wheel). It is not a project dependency: install it into a scratch directory and build the
tables once, offline::

    uv pip install --target /tmp/wl-site wordllama==0.4.0.post1
    python -m training.word_vectors --site /tmp/wl-site

which writes ``WORDS_FILE`` (every train word and the tokenizer's whole-word pieces, with
vectors) and ``TEXTS_FILE`` (wordllama's own full-text embedding of each train row and
follow-up context, truncated as served: the reference ceiling, not exportable as such).
The experiment grid only reads these files.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from training.export import WORD_PATTERN

TABLE_DIR = Path("/tmp/intent-router-experiments-cache")
WORDS_FILE = TABLE_DIR / "wordllama-words.npz"
TEXTS_FILE = TABLE_DIR / "wordllama-texts.npz"
_WORD = re.compile(WORD_PATTERN)
_PIECE = re.compile(r"\u2581([a-zA-Z0-9_]{2,})")


def words_of(text: str) -> list[str]:
    """The word block's tokens of ``text``, lowercased."""
    return [w.lower() for w in _WORD.findall(text)]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class WordTable:
    """Words and their vectors (float32), plus which words are the tokenizer's own pieces."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray, generic: Sequence[str]) -> None:
        if len(words) != len(vectors):
            raise ValueError("one vector per word")
        self.words = list(words)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.generic = [w for w in generic if w in self.index]

    @classmethod
    def load(cls, path: Path = WORDS_FILE) -> WordTable:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: build it with `python -m training.word_vectors --site DIR`"
            )
        stored = np.load(path, allow_pickle=False)
        return cls(
            [str(w) for w in stored["words"]],
            stored["vectors"],
            [str(w) for w in stored["generic"]],
        )


@functools.cache
def _stored_table() -> WordTable:
    return WordTable.load(WORDS_FILE)


class WordVectorMean(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Fit: the vocabulary (the ``max_words`` train words of highest document frequency with
    df >= ``min_df``, plus the tokenizer's whole-word pieces if ``generic``) and its smooth idf
    (train df; words unseen in training get the largest idf). Transform: the (idf-weighted or
    plain) mean of each text's distinct in-vocabulary words' vectors, L2-normalised, times
    ``scale``. A text without a known word gets zeros."""

    def __init__(
        self,
        table: WordTable | None = None,
        max_words: int | None = 50_000,
        min_df: int = 1,
        idf: bool = True,
        generic: bool = True,
        scale: float = 1.0,
        norm: str = "l2",
        dims: int | None = None,
    ) -> None:
        self.table = table
        self.max_words = max_words
        self.min_df = min_df
        self.idf = idf
        self.generic = generic
        self.scale = scale
        self.norm = norm
        self.dims = dims

    def _table(self) -> WordTable:
        return self.table if self.table is not None else _stored_table()

    def fit(self, texts: Iterable[str], y: Any = None) -> WordVectorMean:
        table = self._table()
        counter = CountVectorizer(
            token_pattern=WORD_PATTERN, lowercase=True, binary=True, dtype=np.float32
        )
        docs = list(texts)
        counts = counter.fit_transform(docs)
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        names = counter.get_feature_names_out()
        known = [
            (int(d), str(w)) for w, d in zip(names, df) if d >= self.min_df and w in table.index
        ]
        known.sort(key=lambda t: (-t[0], t[1]))
        if self.max_words is not None:
            known = known[: self.max_words]
        vocabulary = [w for _, w in known]
        if self.generic:
            seen = set(vocabulary)
            vocabulary += [w for w in table.generic if w not in seen]
        train_df = dict((w, d) for d, w in known)
        n = len(docs)
        self.vocabulary_ = {w: i for i, w in enumerate(vocabulary)}
        self.idf_ = np.array(
            [np.log((n + 1) / (train_df.get(w, 0) + 1)) + 1 for w in vocabulary],
            dtype=np.float32,
        )
        self.vectors_ = table.vectors[[table.index[w] for w in vocabulary]][:, : self.dims]
        self.counter_ = CountVectorizer(
            token_pattern=WORD_PATTERN,
            lowercase=True,
            binary=True,
            dtype=np.float32,
            vocabulary=self.vocabulary_,
        )
        self.typical_ = 1.0
        if self.norm == "mean":  # one constant, so the typical train row has norm 1
            norms = np.linalg.norm(self._means(docs), axis=1)
            self.typical_ = float(np.median(norms[norms > 0])) if (norms > 0).any() else 1.0
        return self

    def _means(self, texts: Sequence[str]) -> np.ndarray:
        presence = self.counter_.transform(list(texts))
        if self.idf:
            presence = presence @ sp.diags(self.idf_)
        sums = np.asarray(presence @ self.vectors_, dtype=np.float32)
        if self.norm == "l2":
            return normalize(sums)
        if self.norm == "mean":
            # the weighted mean, not renormalised: linear in the presence vector once divided
            # by its total weight, so export can fold the classifier's coefficients into the
            # table (vocabulary x 7 instead of vocabulary x 256)
            total = np.asarray(presence.sum(axis=1), dtype=np.float32)
            return sums / np.maximum(total, np.float32(1e-12))
        raise ValueError(f"unknown norm {self.norm!r}")

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        means = self._means(list(texts)) / np.float32(self.typical_)
        return sp.csr_matrix(means * np.float32(self.scale))

    def table_megabytes(self, dtype: Any = np.float32) -> float:
        """The size of this vocabulary's table as the graph would ship it."""
        return float(self.vectors_.size * np.dtype(dtype).itemsize / 1e6)


class TextVectors(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """wordllama's own embedding of each (truncated) text, looked up in ``TEXTS_FILE``: the
    reference ceiling of this kind of feature; it needs wordllama's tokenizer, so it is not
    exportable as it stands."""

    def __init__(self, path: Path = TEXTS_FILE, scale: float = 1.0) -> None:
        self.path = path
        self.scale = scale

    def fit(self, texts: Iterable[str], y: Any = None) -> TextVectors:
        stored = np.load(self.path, allow_pickle=False)
        self.lookup_ = {str(d): i for i, d in enumerate(stored["digests"])}
        self.vectors_ = stored["vectors"].astype(np.float32)
        return self

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        rows = []
        for text in texts:
            key = text_digest(text)
            if key not in self.lookup_:
                raise KeyError(f"no stored wordllama vector for a text (digest {key})")
            rows.append(self.lookup_[key])
        return sp.csr_matrix(normalize(self.vectors_[rows]) * np.float32(self.scale))


# --- building the tables (needs wordllama, from a scratch --site) -------------------------------


def _wordllama(site: Path) -> Any:
    """wordllama's bundled default model, loaded from the wheel's own files with no network
    (WordLlama.load() looks for the tokenizer in ``tokenizer/`` while the wheel ships it in
    ``tokenizers/``, then tries Hugging Face)."""
    sys.path.append(str(site))  # after the venv: its numpy stays the one imported
    import wordllama
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    root = Path(wordllama.__file__).parent
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        embedding = f.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    return WordLlamaInference(embedding, tokenizer, binary=False)


def build(site: Path, words_file: Path = WORDS_FILE, texts_file: Path = TEXTS_FILE) -> str:
    from training.experiments import SHIPPED, earlier_texts, load_data

    model = _wordllama(site)
    data = load_data()  # train rows only
    train_words = sorted({w for t in data.texts for w in words_of(t)})
    generic = sorted(
        {m.group(1).lower() for p in model.tokenizer.get_vocab() if (m := _PIECE.fullmatch(p))}
    )
    words = sorted(set(train_words) | set(generic))
    vectors = model.embed(words, norm=False, batch_size=512).astype(np.float32)
    words_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(words_file, words=np.array(words), vectors=vectors, generic=np.array(generic))
    policy = SHIPPED.policy()
    texts = sorted(
        {policy.apply(t) for t in data.texts}
        | {policy.apply(t) for t in earlier_texts(data).values()}
    )
    text_vectors = model.embed(texts, norm=False, batch_size=64).astype(np.float32)
    np.savez(
        texts_file,
        digests=np.array([text_digest(t) for t in texts]),
        vectors=text_vectors,
    )
    return (
        f"{len(words)} words ({len(train_words)} from train rows, {len(generic)} tokenizer "
        f"pieces) -> {words_file}; {len(texts)} texts -> {texts_file}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the wordllama word and text tables")
    parser.add_argument("--site", type=Path, required=True, help="where wordllama is installed")
    args = parser.parse_args(argv)
    print(build(args.site), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
