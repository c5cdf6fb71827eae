"""How litellm is called: the fields it gets, and which of its failures are our bugs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_router.providers.litellm_call import (
    LITELLM_FIELDS,
    client_bug,
    describe_bug,
    litellm_arguments,
)


class WrappedError(Exception):
    """Stands for litellm's APIConnectionError, raised while handling the real failure."""


def _wrapped(inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException:
            raise WrappedError("litellm.APIConnectionError: ...")  # noqa: B904 (litellm's way)
    except WrappedError as outer:
        return outer


def test_tools_and_structured_output_fields_reach_litellm() -> None:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function"}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "stream_options": {"include_usage": True},
        "seed": 1,
    }
    assert litellm_arguments(request) == request


def test_fields_that_would_steer_litellm_itself_are_dropped() -> None:
    hostile = {
        "messages": [],
        "api_base": "http://attacker.example",
        "base_url": "http://x",
        "api_key": "k",
        "mock_response": "faked",
        "extra_headers": {"x": "y"},
        "model": "gpt-4o",
        "stream": True,
        "timeout": 999,
        "metadata": {"repo": "r"},
        "custom_llm_provider": "openai",
        "_skip_mcp_handler": False,
    }
    assert litellm_arguments(hostile) == {"messages": []}


def test_null_fields_are_left_out() -> None:
    assert litellm_arguments({"messages": [], "tool_choice": None, "stop": None}) == {
        "messages": []
    }


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=30) | st.sampled_from(sorted(LITELLM_FIELDS)),
        st.none() | st.integers() | st.text(max_size=5),
    )
)
def test_only_allowed_non_null_fields_pass_and_all_of_them_do(request: dict[str, Any]) -> None:
    arguments = litellm_arguments(request)
    assert set(arguments) <= LITELLM_FIELDS
    assert arguments == {k: v for k, v in request.items() if k in LITELLM_FIELDS and v is not None}


def test_a_missing_module_behind_litellms_wrapper_is_a_bug() -> None:
    bug = client_bug(_wrapped(ModuleNotFoundError("No module named 'mcp'", name="mcp")))
    assert isinstance(bug, ModuleNotFoundError)
    assert describe_bug(bug) == "ModuleNotFoundError (module 'mcp')"


@pytest.mark.parametrize(
    "message",
    [
        "acompletion() got an unexpected keyword argument 'toolz'",
        "acompletion() got multiple values for keyword argument 'api_base'",
        "f() missing 1 required positional argument: 'model'",
    ],
)
def test_a_wrong_call_signature_is_a_bug(message: str) -> None:
    bug = client_bug(_wrapped(TypeError(message)))
    assert isinstance(bug, TypeError) and describe_bug(bug) == "TypeError"


@pytest.mark.parametrize(
    "inner",
    [
        ConnectionRefusedError("refused"),
        TypeError("'NoneType' object is not subscriptable"),  # a malformed upstream body: theirs
        KeyError("content"),
        ValueError("Expecting value: line 1 column 1"),
    ],
)
def test_the_providers_failures_are_not_bugs(inner: BaseException) -> None:
    assert client_bug(_wrapped(inner)) is None
    assert client_bug(inner) is None


def test_a_cycle_of_causes_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert client_bug(first) is None


def test_a_missing_module_message_is_never_repeated_beyond_its_name() -> None:
    bug = ImportError("cannot import name 'x' from 'y' (/home/user/secret-path/y.py)")
    assert describe_bug(bug) == "ImportError"


def test_a_sampling_hint_the_provider_does_not_take_is_left_out() -> None:
    anthropic = {"messages", "tools", "tool_choice", "temperature", "response_format", "user"}
    request = {
        "messages": [],
        "seed": 7,
        "presence_penalty": 0.5,
        "temperature": 0.2,
        "user": "ana",
    }
    assert litellm_arguments(request, anthropic) == {
        "messages": [],
        "temperature": 0.2,
        "user": "ana",
    }
    assert litellm_arguments(request, None) == request  # unknown provider: keep them


def test_tools_and_formats_are_kept_even_when_unsupported_for_litellm_to_refuse() -> None:
    request = {
        "messages": [],
        "tools": [{"type": "function"}],
        "response_format": {"type": "json_object"},
        "n": 2,
    }
    assert litellm_arguments(request, {"messages"}) == request
