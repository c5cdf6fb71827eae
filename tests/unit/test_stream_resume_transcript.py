"""What a stream has sent (service/streaming.py ``StreamTranscript``): the text a continuation starts from, whether
it may be resumed, and the continuation's chunks re-written to carry the first id and model."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from intent_router.service.streaming import StreamTranscript as _Sent


def _chunk(id_: str, model: str, delta: dict) -> bytes:
    return (
        b"data: "
        + json.dumps(
            {"id": id_, "model": model, "choices": [{"index": 0, "delta": delta}]}
        ).encode()
    )


@given(
    st.lists(
        st.tuples(st.text(max_size=8), st.text(max_size=8), st.text(max_size=12)),
        min_size=1,
        max_size=12,
    )
)
def test_every_chunk_passed_on_carries_the_first_id_and_model_and_the_text_is_kept(
    chunks: list[tuple[str, str, str]],
) -> None:
    first_id, first_model, first_text = chunks[0]
    sent = _Sent(_chunk(first_id, first_model, {"role": "assistant", "content": first_text}))
    sent.resumed = True  # another deployment continues
    for id_, model, text in chunks[1:]:
        out = json.loads(
            sent.pass_on(_chunk(id_, model, {"role": "assistant", "content": text}))[6:]
        )
        assert (out["id"], out["model"]) == (first_id, first_model)
        assert out["choices"][0]["delta"] == {"content": text}
    assert sent.text == "".join(text for _, _, text in chunks)
    assert sent.resumable() == bool(sent.text)


def test_before_a_resume_lines_pass_as_they_came() -> None:
    sent = _Sent(_chunk("a", "m", {"role": "assistant", "content": "x"}))
    line = _chunk("b", "n", {"content": "y"})
    assert sent.pass_on(line) is line and sent.text == "xy"


def test_done_comments_and_non_json_lines_pass_unchanged() -> None:
    sent = _Sent(_chunk("a", "m", {"content": "x"}))
    for line in (b"data: [DONE]", b": keep-alive", b"data: {not json", b"data: [1, 2]"):
        assert sent.pass_on(line) == line
    assert sent.text == "x"


def test_a_stream_with_a_tool_call_or_no_text_yet_is_not_resumable() -> None:
    assert not _Sent(_chunk("a", "m", {"role": "assistant", "content": ""})).resumable()
    sent = _Sent(_chunk("a", "m", {"content": "let me look"}))
    sent.pass_on(_chunk("a", "m", {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}))
    assert not sent.resumable()
