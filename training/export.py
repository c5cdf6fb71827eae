"""Export a fitted TF-IDF + classifier pipeline to one ONNX graph, text in, probabilities out.

skl2onnx converts the text front end (StringNormalizer, Tokenizer, TfIdfVectorizer). What
follows is shaped for speed, because ONNX Runtime pays a few microseconds per node and the
dense [N, V] vector is touched once per node:

* idf weights go into the TfIdfVectorizer node itself (mode TFIDF, or IDF for binary tf);
* for a multinomial LogisticRegression the L2 norm is applied to the K scores, not to the V
  features: (z / |z|) . W = (z . W) / |z|. Three passes over V in all.

Other classifiers (and ``sublinear_tf``) take a generic path: TF-IDF written as ONNX arithmetic
(skl2onnx's own differs from scikit-learn for sublinear tf), then skl2onnx's classifier
converter. The graph needs only the C/POSIX locale: the token pattern is ASCII and
lowercasing runs in the "C" locale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from intent_router.model_contract import INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT
from training.features import CharNgrams

#: Token patterns that Python's ``re`` and ONNX Runtime's RE2 match identically (unlike
#: scikit-learn's default ``\b\w\w+\b``, whose \w and \b are Unicode in Python, ASCII in RE2).
#: Words of 2+ ASCII word characters ...
WORD_PATTERN = r"[a-zA-Z0-9_]{2,}"
#: ... or those plus single punctuation marks, which tell questions, code and paths apart.
WORD_PUNCT_PATTERN = r"[a-zA-Z0-9_]{2,}|[?!`{}()\[\];:=<>/\\#@$%&*+|~'\".,-]"
TOKEN_PATTERNS = (WORD_PATTERN, WORD_PUNCT_PATTERN)
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8
_WEIGHTED = "weighted_ngrams"
_FEATURES = "tfidf_features"
#: Tokenizer padding for short rows of a batch: two control characters, which no token
#: pattern here can match, so padding is never counted as an n-gram.
PAD_TOKEN = "\x01\x01"


def export_pipeline(pipeline: Pipeline, path: Path | None = None) -> onnx.ModelProto:
    """Convert ``pipeline`` (TfidfVectorizer, or a FeatureUnion of word and character
    TfidfVectorizers, then a classifier) and optionally save it."""
    if len(pipeline.steps) == 2 and isinstance(pipeline.steps[0][1], FeatureUnion):
        model = _union_graph(pipeline.steps[0][1], pipeline.steps[1][1])
        onnx.checker.check_model(model)
        if path is not None:
            Path(path).write_bytes(model.SerializeToString())
        return model
    vectorizer, classifier = _split_pipeline(pipeline)
    fold_idf = vectorizer.use_idf and not vectorizer.sublinear_tf
    front, padding = _ngram_graph(vectorizer, fold_idf=fold_idf)
    if fold_idf and _is_multinomial_lr(classifier) and vectorizer.norm in ("l2", None):
        parts = [front, _fast_lr_graph(vectorizer, classifier, padding)]
    else:
        parts = [
            front,
            _weighting_graph(vectorizer, idf_done=fold_idf, padding=padding),
            _classifier_graph(classifier, n_features=len(vectorizer.vocabulary_)),
        ]
    model = _chain(parts, n_labels=len(classifier.classes_))
    onnx.checker.check_model(model)
    if path is not None:
        Path(path).write_bytes(model.SerializeToString())
    return model


def _split_pipeline(pipeline: Pipeline) -> tuple[TfidfVectorizer, Any]:
    if len(pipeline.steps) != 2 or not isinstance(pipeline.steps[0][1], TfidfVectorizer):
        raise TypeError("expected Pipeline([('tfidf', TfidfVectorizer), ('clf', classifier)])")
    vectorizer = pipeline.steps[0][1]
    if vectorizer.analyzer != "word" or vectorizer.token_pattern not in TOKEN_PATTERNS:
        raise ValueError(f"the vectorizer must use analyzer='word' and one of {TOKEN_PATTERNS}")
    if vectorizer.norm not in ("l2", None):
        raise ValueError("only norm='l2' or None is exported")
    return vectorizer, pipeline.steps[1][1]


def _is_multinomial_lr(classifier: Any) -> bool:
    return isinstance(classifier, LogisticRegression) and len(classifier.classes_) > 2


def _ngram_graph(vectorizer: TfidfVectorizer, fold_idf: bool) -> tuple[onnx.ModelProto, int]:
    """Text [N, 1] -> n-gram counts [N, V + P] (times idf when ``fold_idf``), via skl2onnx.

    A pruned vocabulary may keep "euo pipefail" and drop "pipefail"; skl2onnx then takes the
    n-gram for one token containing a space, which never matches. Our tokens never contain a
    space, so every word of every n-gram is put in the vocabulary: the missing ones as P
    padding columns of weight 0 that the next stage ignores. Returns the graph and P.
    """
    # The converter sizes the n-gram table from ngram_range: use the orders really present,
    # or ONNX Runtime rejects the graph when pruning removed every n-gram of the top order.
    vocabulary = dict(vectorizer.vocabulary_)
    orders = {term.count(" ") + 1 for term in vocabulary}
    words = {w for term in vocabulary for w in term.split(" ")}
    for word in sorted(words - set(vocabulary)):
        vocabulary[word] = len(vocabulary)
    padding = len(vocabulary) - len(vectorizer.vocabulary_)
    counter = CountVectorizer(
        vocabulary=vocabulary,
        token_pattern=vectorizer.token_pattern,
        ngram_range=(min(orders), max(orders)),
        lowercase=vectorizer.lowercase,
        binary=False,
        dtype=np.float32,
    ).fit([""])
    model = to_onnx(
        counter,
        initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
        final_types=[(_WEIGHTED, FloatTensorType([None, len(vocabulary)]))],
        options={id(counter): {"locale": "C", "tokenexp": vectorizer.token_pattern}},
        target_opset=ONNX_OPSET,
    )
    tokenizer = next(n for n in model.graph.node if n.op_type == "Tokenizer")
    _set_attribute(tokenizer, "pad_value", PAD_TOKEN)
    node = next(n for n in model.graph.node if n.op_type == "TfIdfVectorizer")
    attrs = {a.name: a for a in node.attribute}
    if vectorizer.binary:
        _set_attribute(node, "mode", "IDF")
    if fold_idf:
        # weights are read by output coordinate: the idf of each vocabulary column.
        positions = list(attrs["ngram_indexes"].ints)
        idf = np.concatenate([vectorizer.idf_, np.zeros(padding)]).astype(np.float32)
        _set_attribute(node, "weights", [float(idf[i]) for i in positions])
        _set_attribute(node, "mode", "IDF" if vectorizer.binary else "TFIDF")
    return model, padding


def _set_attribute(node: onnx.NodeProto, name: str, value: Any) -> None:
    for index, attr in enumerate(node.attribute):
        if attr.name == name:
            del node.attribute[index]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _fast_lr_graph(
    vectorizer: TfidfVectorizer, classifier: LogisticRegression, padding: int
) -> onnx.ModelProto:
    """Weighted n-grams z [N, V] -> softmax((z . W) / |z| + b) and its arg-max label.

    With binary tf, z_j is idf_j or 0, so |z|^2 = z . idf: one MatMul against [W | idf]
    yields the scores and the squared norm together.
    """
    n_features = len(vectorizer.vocabulary_) + padding
    labels = [str(c) for c in classifier.classes_]
    coef = classifier.coef_.T.astype(np.float32)
    one_pass = vectorizer.norm == "l2" and vectorizer.binary
    if one_pass:
        coef = np.hstack([coef, vectorizer.idf_.astype(np.float32).reshape(-1, 1)])
    coef = np.vstack([coef, np.zeros((padding, coef.shape[1]), dtype=np.float32)])
    inits = [
        numpy_helper.from_array(coef, "coef"),
        numpy_helper.from_array(classifier.intercept_.astype(np.float32), "intercept"),
        numpy_helper.from_array(np.array([1e-30], dtype=np.float32), "tiny"),
        helper.make_tensor("label_names", TensorProto.STRING, [len(labels)], labels),
    ]
    nodes = [helper.make_node("MatMul", [_WEIGHTED, "coef"], ["products"])]
    scores = "products"
    if one_pass:
        sizes = np.array([len(labels), 1], dtype=np.int64)
        inits.append(numpy_helper.from_array(sizes, "split_sizes"))
        nodes += [
            helper.make_node(
                "Split", ["products", "split_sizes"], ["raw_scores", "sum_squares"], axis=1
            ),
            helper.make_node("Sqrt", ["sum_squares"], ["norm"]),
        ]
        scores = "raw_scores"
    elif vectorizer.norm == "l2":
        nodes.append(helper.make_node("ReduceL2", [_WEIGHTED], ["norm"], axes=[1], keepdims=1))
    if vectorizer.norm == "l2":
        nodes += [
            helper.make_node("Max", ["norm", "tiny"], ["safe_norm"]),
            helper.make_node("Div", [scores, "safe_norm"], ["scaled_scores"]),
        ]
        scores = "scaled_scores"
    nodes += [
        helper.make_node("Add", [scores, "intercept"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [PROBABILITIES_OUTPUT], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label_index"], axis=1, keepdims=0),
        helper.make_node("Gather", ["label_names", "label_index"], [LABEL_OUTPUT], axis=0),
    ]
    graph = helper.make_graph(
        nodes,
        "linear_softmax",
        [helper.make_tensor_value_info(_WEIGHTED, TensorProto.FLOAT, [None, n_features])],
        _output_infos(len(labels)),
        initializer=inits,
    )
    return _model(graph)


def _weighting_graph(vectorizer: TfidfVectorizer, idf_done: bool, padding: int) -> onnx.ModelProto:
    """Counts -> scikit-learn's TF-IDF features: 1 + log(tf) if sublinear, idf, L2 norm."""
    n_features = len(vectorizer.vocabulary_)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    current = _WEIGHTED
    if padding:
        inits += [
            numpy_helper.from_array(np.array([0], dtype=np.int64), "slice_start"),
            numpy_helper.from_array(np.array([n_features], dtype=np.int64), "slice_end"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "slice_axis"),
        ]
        nodes.append(
            helper.make_node(
                "Slice", [current, "slice_start", "slice_end", "slice_axis"], ["unpadded"]
            )
        )
        current = "unpadded"
    if vectorizer.sublinear_tf and not vectorizer.binary:
        inits.append(numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"))
        # 1 + log(c) for c >= 1 and 0 for c == 0, without a -inf: log(max(c, 1)) + min(c, 1).
        nodes += [
            helper.make_node("Max", [current, "one"], ["tf_at_least_one"]),
            helper.make_node("Log", ["tf_at_least_one"], ["log_tf"]),
            helper.make_node("Min", [current, "one"], ["tf_present"]),
            helper.make_node("Add", ["log_tf", "tf_present"], ["sublinear_tf"]),
        ]
        current = "sublinear_tf"
    if vectorizer.use_idf and not idf_done:
        idf = vectorizer.idf_.astype(np.float32).reshape(1, -1)
        inits.append(numpy_helper.from_array(idf, "idf"))
        nodes.append(helper.make_node("Mul", [current, "idf"], ["tfidf"]))
        current = "tfidf"
    if vectorizer.norm == "l2":
        inits.append(numpy_helper.from_array(np.array([1e-30], dtype=np.float32), "tiny"))
        nodes += [
            helper.make_node("ReduceL2", [current], ["norm"], axes=[1], keepdims=1),
            helper.make_node("Max", ["norm", "tiny"], ["safe_norm"]),
            helper.make_node("Div", [current, "safe_norm"], [_FEATURES]),
        ]
    else:
        nodes.append(helper.make_node("Identity", [current], [_FEATURES]))
    graph = helper.make_graph(
        nodes,
        "tfidf_weighting",
        [helper.make_tensor_value_info(_WEIGHTED, TensorProto.FLOAT, [None, n_features + padding])],
        [helper.make_tensor_value_info(_FEATURES, TensorProto.FLOAT, [None, n_features])],
        initializer=inits,
    )
    return _model(graph)


def _classifier_graph(classifier: Any, n_features: int) -> onnx.ModelProto:
    """Features [N, V] -> label [N] and probabilities [N, K], through skl2onnx."""
    model = to_onnx(
        classifier,
        initial_types=[(_FEATURES, FloatTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": False}},
        target_opset=ONNX_OPSET,
    )
    outputs = [o.name for o in model.graph.output]
    if outputs != [LABEL_OUTPUT, PROBABILITIES_OUTPUT]:
        raise ValueError(f"classifier graph outputs {outputs}, expected label/probabilities")
    return model


def _output_infos(n_labels: int) -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.STRING, [None]),
        helper.make_tensor_value_info(PROBABILITIES_OUTPUT, TensorProto.FLOAT, [None, n_labels]),
    ]


def _model(graph: onnx.GraphProto, opsets: dict[str, int] | None = None) -> onnx.ModelProto:
    return helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid(d, v) for d, v in sorted((opsets or ONNX_OPSET).items())
        ],
        ir_version=IR_VERSION,
        producer_name="intent-router",
    )


def _chain(parts: list[onnx.ModelProto], n_labels: int) -> onnx.ModelProto:
    """Join models in sequence: each one's first output feeds the next one's input."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    opsets: dict[str, int] = {}
    upstream = INPUT_NAME
    for index, part in enumerate(parts):
        graph = onnx.compose.add_prefix(part, f"s{index}_").graph
        nodes.append(helper.make_node("Identity", [upstream], [graph.input[0].name]))
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        for opset in part.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        upstream = graph.output[0].name
    last = len(parts) - 1
    for name in (LABEL_OUTPUT, PROBABILITIES_OUTPUT):
        nodes.append(helper.make_node("Identity", [f"s{last}_{name}"], [name]))
    graph = helper.make_graph(
        nodes,
        "intent_classifier",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.STRING, [None, 1])],
        _output_infos(n_labels),
        initializer=inits,
    )
    return _model(graph, opsets)


# --- word + character n-grams (a FeatureUnion of TfidfVectorizers) -----------------------


def _union_graph(union: FeatureUnion, classifier: Any) -> onnx.ModelProto:
    """Text [N, 1] -> probabilities of a multinomial LogisticRegression over the concatenated,
    separately L2-normalised binary tf-idf blocks of ``union`` (word and character n-grams).

    Nothing here reads the whole vocabulary per prompt, and no string is hashed twice:

    1. the text is lower-cased once (StringNormalizer, C locale) and tokenized into words
       (the word block's pattern) and into characters (``training.features``);
    2. each token becomes an integer: a LabelEncoder maps block b's alphabet (the words, or
       the characters, its vocabulary is made of) to o_b + 1 .. o_b + A_b, anything else to 0;
    3. n-gram keys are integer arithmetic on those, base B_b = o_b + A_b + 1 digits:
       g_n = g_(n-1) * B_b + t shifted by n - 1 (t padded with zeros at the end). A
       vocabulary n-gram's digits are all >= o_b + 1, so no key with a 0 digit matches one,
       except leading zeros: (0, a, b) has the key of (a, b), which the text holds right
       there too, and binary features count a column once. The blocks go highest n-gram
       order first, and o_b + 1 is above every key of the blocks before, so the blocks' keys
       never meet and need no offset of their own (a block whose keys would then pass 2 ** 62
       is numbered from 1 and gets an Add of that offset instead);
    4. one int64 LabelEncoder maps every key to its vocabulary row (a miss: row V). Rows go
       by document frequency, most frequent first, so the rows a prompt touches share cache
       lines;
    5. binary tf counts each row once: ScatterElements (reduction add) counts each row's
       occurrences in the prompt into an [N, V + 1] buffer, and each occurrence weighs
       1 / its row's count;
    6. one Gather fetches, per occurrence, the table row [per block b: idf_j * W_j in its
       K slots, idf_j ** 2 in its norm slot] (row V: zeros), and one MatMul against the
       weights sums them: per block, z_b . W_b and |z_b| ** 2, so the logits are
       sum_b (z_b . W_b) / |z_b| + intercept.

    The work is the prompt's n-grams, plus one [N, V + 1] count buffer (filled, not read in
    full). A temperature already folded into W and the intercept rides along.
    """
    if not _is_multinomial_lr(classifier):
        raise ValueError(
            "a FeatureUnion is exported only in front of a multinomial LogisticRegression"
        )
    if union.transformer_weights:
        raise ValueError("FeatureUnion transformer_weights are not exported")
    labels = [str(c) for c in classifier.classes_]
    k = len(labels)
    blocks = []
    offset = 0
    for name, vectorizer in union.transformer_list:
        if vectorizer in ("drop", "passthrough") or not isinstance(vectorizer, TfidfVectorizer):
            raise ValueError(f"FeatureUnion block {name!r} must be a TfidfVectorizer")
        if not (
            vectorizer.binary
            and vectorizer.use_idf
            and vectorizer.norm == "l2"
            and not vectorizer.sublinear_tf
        ):
            raise ValueError(f"block {name!r}: only binary, idf, l2-normalised blocks are exported")
        if not isinstance(vectorizer.analyzer, CharNgrams):
            _split_pipeline(Pipeline([("tfidf", vectorizer), ("clf", classifier)]))  # validates
            if not vectorizer.lowercase:
                raise ValueError(f"block {name!r} must lower-case (the graph lower-cases once)")
        blocks.append(_Block(len(blocks), vectorizer, offset))
        offset += len(vectorizer.vocabulary_)
    n_blocks = len(blocks)
    width = n_blocks * (k + 1)
    n_columns = offset
    if n_columns != classifier.coef_.shape[1]:
        raise ValueError(
            f"the classifier has {classifier.coef_.shape[1]} features, the union {n_columns}"
        )
    # Table rows by document frequency (lowest idf first); the miss row last.
    idf = np.concatenate([b.vectorizer.idf_ for b in blocks]).astype(np.float32)
    row_of = np.empty(n_columns, dtype=np.int64)
    row_of[np.argsort(idf, kind="stable")] = np.arange(n_columns)
    coef = classifier.coef_.T.astype(np.float64)
    table = np.zeros((n_columns + 1, width), dtype=np.float64)
    for block in blocks:
        columns = np.arange(block.offset, block.offset + len(block.vectorizer.vocabulary_))
        weights = idf[columns].astype(np.float64)
        slots = block.index * (k + 1)
        table[row_of[columns], slots : slots + k] = coef[columns] * weights[:, None]
        table[row_of[columns], slots + k] = weights**2
    nodes = [
        helper.make_node("Shape", [INPUT_NAME], ["input_shape"]),  # [N, 1]
        helper.make_node("Reshape", [INPUT_NAME, "flat_shape"], ["flat"]),
        helper.make_node(
            "StringNormalizer",
            ["flat"],
            ["lower"],
            case_change_action="LOWER",
            is_case_sensitive=0,
            locale="C",
        ),
    ]
    inits = [
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    all_keys: list[int] = []
    all_rows: list[int] = []
    key_parts: list[str] = []
    above = 1  # above every key of the blocks so far
    for block in sorted(blocks, key=lambda b: -b.top):
        if (above + len(block.alphabet)) ** block.top < 2**62:
            first_id, key_offset = above, 0  # tokens numbered from o_b + 1 = above
        else:  # too wide: tokens from 1, and an Add per order moves the keys above
            first_id, key_offset = 1, above
        base = first_id + len(block.alphabet)
        key_parts += _block_key_nodes(block, first_id, key_offset, nodes, inits)
        for term, column in block.vectorizer.vocabulary_.items():
            key = 0
            for token in block.grams[term]:
                key = key * base + first_id + block.token_id[token]
            all_keys.append(key_offset + key)
            all_rows.append(int(row_of[block.offset + column]))
        above = key_offset + base**block.top
        if above >= 2**62:
            raise ValueError(f"block {block.index}: its n-gram keys do not fit in int64")
    if len(set(all_keys)) != len(all_keys):
        raise ValueError("two n-grams share a key")
    nodes += [
        helper.make_node("Concat", key_parts, ["keys"], axis=1),
        helper.make_node(
            "LabelEncoder",
            ["keys"],
            ["rows"],
            domain="ai.onnx.ml",
            keys_int64s=all_keys,
            values_int64s=all_rows,
            default_int64=n_columns,
        ),
        helper.make_node("Mul", ["input_shape", "count_row_shape"], ["counts_shape"]),
        helper.make_node(
            "ConstantOfShape",
            ["counts_shape"],
            ["no_counts"],  # [N, V + 1]
            value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
        ),
        helper.make_node("Shape", ["rows"], ["rows_shape"]),
        helper.make_node(
            "ConstantOfShape",
            ["rows_shape"],
            ["ones"],
            value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node(
            "ScatterElements", ["no_counts", "rows", "ones"], ["counts"], axis=1, reduction="add"
        ),
        helper.make_node("GatherElements", ["counts", "rows"], ["occurrences"], axis=1),
        helper.make_node("Reciprocal", ["occurrences"], ["shares"]),  # a row weighs 1 in all
        helper.make_node("Unsqueeze", ["shares", "axis1"], ["shares3d"]),
        helper.make_node("Gather", ["table", "rows"], ["weights"], axis=0),
        helper.make_node("MatMul", ["shares3d", "weights"], ["sums"]),  # [N, 1, width]
        helper.make_node("Reshape", ["sums", "blocks_shape"], ["block_sums"]),  # [N, B, K + 1]
        helper.make_node(
            "Split", ["block_sums", "split_sizes"], ["block_scores", "sum_squares"], axis=2
        ),
        helper.make_node("Max", ["sum_squares", "tiny"], ["safe_sum_squares"]),
        helper.make_node("Sqrt", ["safe_sum_squares"], ["block_norms"]),
        helper.make_node("Div", ["block_scores", "block_norms"], ["scaled_scores"]),
        helper.make_node("ReduceSum", ["scaled_scores", "axis1"], ["summed"], keepdims=0),
        helper.make_node("Add", ["summed", "intercept"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [PROBABILITIES_OUTPUT], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label_index"], axis=1, keepdims=0),
        helper.make_node("Gather", ["label_names", "label_index"], [LABEL_OUTPUT], axis=0),
    ]
    inits += [
        numpy_helper.from_array(np.array([1, n_columns + 1], dtype=np.int64), "count_row_shape"),
        numpy_helper.from_array(np.array([-1, n_blocks, k + 1], dtype=np.int64), "blocks_shape"),
        numpy_helper.from_array(np.array([k, 1], dtype=np.int64), "split_sizes"),
        numpy_helper.from_array(np.array([1e-30], dtype=np.float32), "tiny"),
        numpy_helper.from_array(table.astype(np.float32), "table"),
        numpy_helper.from_array(classifier.intercept_.astype(np.float32), "intercept"),
        helper.make_tensor("label_names", TensorProto.STRING, [k], labels),
    ]
    graph = helper.make_graph(
        nodes,
        "intent_classifier",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.STRING, [None, 1])],
        _output_infos(k),
        initializer=inits,
    )
    return _model(graph, {**ONNX_OPSET, "com.microsoft": 1})


class _Block:
    """One TfidfVectorizer of the union: its n-grams as token tuples, and its alphabet."""

    def __init__(self, index: int, vectorizer: TfidfVectorizer, offset: int) -> None:
        self.index = index
        self.vectorizer = vectorizer
        self.offset = offset  # its first column in the classifier's features
        self.is_char = isinstance(vectorizer.analyzer, CharNgrams)
        self.grams = {
            term: (tuple(term) if self.is_char else tuple(term.split(" ")))
            for term in vectorizer.vocabulary_
        }
        self.alphabet = sorted({token for tokens in self.grams.values() for token in tokens})
        self.token_id = {token: i for i, token in enumerate(self.alphabet)}
        self.orders = sorted({len(tokens) for tokens in self.grams.values()})
        self.top = max(self.orders)


def _block_key_nodes(
    block: _Block,
    first_id: int,
    key_offset: int,
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
) -> list[str]:
    """Append the nodes that turn the lower-cased text into ``block``'s n-gram keys (tokens
    numbered from ``first_id``, base ``first_id + A``, plus ``key_offset``); return the key
    tensors' names."""
    prefix = f"b{block.index}_"
    base = first_id + len(block.alphabet)
    top = block.top
    tokenizer = (
        dict(separators=[""]) if block.is_char else dict(tokenexp=block.vectorizer.token_pattern)
    )
    nodes += [
        helper.make_node(
            "Tokenizer",
            ["lower"],
            [f"{prefix}tokens"],
            domain="com.microsoft",
            mark=0,
            mincharnum=1,
            pad_value=PAD_TOKEN,
            **tokenizer,
        ),
        helper.make_node(
            "LabelEncoder",
            [f"{prefix}tokens"],
            [f"{prefix}g1"],
            domain="ai.onnx.ml",
            keys_strings=block.alphabet,
            values_int64s=list(range(first_id, base)),
            default_int64=0,
        ),
    ]
    if top > 1:
        nodes.append(helper.make_node("Pad", [f"{prefix}g1", f"{prefix}pads"], [f"{prefix}padded"]))
        inits += [
            numpy_helper.from_array(np.array(base, dtype=np.int64), f"{prefix}base"),
            numpy_helper.from_array(np.array([0, 0, 0, top - 1], dtype=np.int64), f"{prefix}pads"),
        ]
    for n in range(2, top + 1):
        ends = np.array([n - top if n < top else np.iinfo(np.int64).max], dtype=np.int64)
        inits += [
            numpy_helper.from_array(np.array([n - 1], dtype=np.int64), f"{prefix}from{n}"),
            numpy_helper.from_array(ends, f"{prefix}until{n}"),
        ]
        nodes += [
            helper.make_node(
                "Slice",
                [f"{prefix}padded", f"{prefix}from{n}", f"{prefix}until{n}", "axis1"],
                [f"{prefix}next{n}"],
            ),
            helper.make_node(
                "Mul", [f"{prefix}g{n - 1}", f"{prefix}base"], [f"{prefix}shifted{n}"]
            ),
            helper.make_node("Add", [f"{prefix}shifted{n}", f"{prefix}next{n}"], [f"{prefix}g{n}"]),
        ]
    if not key_offset:
        return [f"{prefix}g{n}" for n in block.orders]
    inits.append(numpy_helper.from_array(np.array(key_offset, dtype=np.int64), f"{prefix}offset"))
    for n in block.orders:
        nodes.append(
            helper.make_node("Add", [f"{prefix}g{n}", f"{prefix}offset"], [f"{prefix}k{n}"])
        )
    return [f"{prefix}k{n}" for n in block.orders]
