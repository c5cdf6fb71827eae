"""Property tests: whatever a client or an upstream sends, the decision log can store it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from intent_router.decisions.storable import (
    FLOAT_MAX,
    INT_MAX,
    INT_MIN,
    REPLACEMENT,
    clean_float,
    clean_int,
    clean_json,
    clean_text,
)

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.text(), st.one_of(st.none(), st.integers(0, 300)))
def test_clean_text_is_valid_utf8_without_nul_and_within_length(
    text: str, limit: int | None
) -> None:
    cleaned = clean_text(text, limit)
    assert cleaned is not None
    cleaned.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in cleaned
    assert limit is None or len(cleaned) <= limit
    if limit is None and text.isascii() and "\x00" not in text:
        assert cleaned == text  # clean text is kept as it is


def test_clean_text_replaces_each_bad_character_in_place() -> None:
    assert clean_text("a\udfffb\x00c") == f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert clean_text("héllo ✓") == "héllo ✓"
    assert clean_text(None) is None


@given(anything)
def test_clean_int_is_in_range_or_default(value: object) -> None:
    cleaned = clean_int(value, default=None)
    assert cleaned is None or (isinstance(cleaned, int) and INT_MIN <= cleaned <= INT_MAX)
    if isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX:
        assert cleaned == value


@given(anything)
def test_clean_float_is_finite_or_default(value: object) -> None:
    cleaned = clean_float(value, default=None)
    assert cleaned is None or (math.isfinite(cleaned) and abs(cleaned) <= FLOAT_MAX)


def test_clean_numbers_of_hostile_upstreams() -> None:
    assert clean_int(10**300) == INT_MAX and clean_int(-(10**300)) == INT_MIN
    assert clean_int("many") == 0 and clean_int(True) == 0 and clean_int(float("nan")) == 0
    assert clean_float(10**400) == FLOAT_MAX and clean_float(float("inf")) == 0.0
    assert clean_float(-0.5) == -0.5


@given(json_like)
def test_clean_json_holds_only_storable_leaves(value: object) -> None:
    def leaves(node: object) -> list[object]:
        if isinstance(node, dict):
            return [*node.keys(), *(leaf for v in node.values() for leaf in leaves(v))]
        if isinstance(node, list):
            return [leaf for item in node for leaf in leaves(item)]
        return [node]

    for leaf in leaves(clean_json(value)):
        if isinstance(leaf, str):
            leaf.encode("utf-8")
            assert "\x00" not in leaf
        elif isinstance(leaf, float):
            assert math.isfinite(leaf)
        elif isinstance(leaf, int) and not isinstance(leaf, bool):
            assert INT_MIN <= leaf <= INT_MAX
