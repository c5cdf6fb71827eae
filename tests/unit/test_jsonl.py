"""The one JSON Lines reader shared by training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.jsonl import json_objects

_objects = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3)


@given(st.lists(_objects, max_size=6))
def test_every_object_comes_back_with_its_line(tmp_path_factory, rows) -> None:
    path = tmp_path_factory.mktemp("j") / "part.jsonl"
    path.write_text("\n\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    read = json_objects(path)
    assert [row for _, row in read] == rows
    assert [where for where, _ in read] == [f"part.jsonl:{2 * i + 1}" for i in range(len(rows))]


class _Custom(ValueError):
    pass


@pytest.mark.parametrize(
    ("line", "message"), [("{oops", "not valid JSON"), ("[1, 2]", "not a JSON object")]
)
def test_a_bad_line_raises_the_callers_error_naming_it(tmp_path: Path, line, message) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(_Custom, match=f"x.jsonl:2: {message}"):
        json_objects(path, _Custom)
