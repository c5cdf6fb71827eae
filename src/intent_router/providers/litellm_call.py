"""How the router calls litellm, decided without importing it: which request fields litellm gets,
and which of its failures are a bug on our side rather than the provider's."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

#: The OpenAI chat fields litellm translates for other providers (tools into Anthropic's
#: ``tool_use``, ``response_format`` into its JSON mode, ...). Anything else a client sends
#: is dropped: litellm would take an unknown field as one of its own keyword arguments
#: (``api_base``, ``mock_response``, ``extra_headers``, ...) or fail on it.
LITELLM_FIELDS = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "functions",
        "function_call",
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "user",
        "stream_options",
        "reasoning_effort",
        "thinking",
        "web_search_options",
    }
)

#: Sampling hints that leave an answer's shape alone: left out for a provider that does not take
#: them (Anthropic has no ``seed``) rather than failing the request, as any routed agent sends them.
DROPPABLE_HINTS = frozenset(
    {
        "seed",
        "logit_bias",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "user",
    }
)

#: TypeError messages that say a function was called wrongly (by us, or by litellm on our behalf).
_CALL_MISTAKES = (
    "unexpected keyword argument",
    "got multiple values for",
    "required positional argument",
    "required keyword-only argument",
    "positional arguments but",
)


def litellm_arguments(
    request: dict[str, Any], supported: Collection[str] | None = None
) -> dict[str, Any]:
    """The fields of an OpenAI chat request that go to ``litellm.acompletion``: a ``null`` field
    is left out, as if absent, and so is a droppable hint outside the provider's ``supported``
    parameters (None: unknown, keep them). Tools or a response format a provider does not take
    are kept, for litellm to refuse with a 400 that names them."""
    return {
        k: v
        for k, v in request.items()
        if k in LITELLM_FIELDS
        and v is not None
        and (supported is None or k not in DROPPABLE_HINTS or k in supported)
    }


def client_bug(exc: BaseException, max_depth: int = 16) -> BaseException | None:
    """The exception behind ``exc`` that is a bug in how a provider client is built or called
    (a missing module, a wrong call signature), or None when ``exc`` is the provider's doing.

    litellm wraps everything it raises (an ``ImportError`` of an optional dependency becomes an
    ``APIConnectionError``), so the chain of causes and contexts is searched. Such a failure
    would repeat on every call: retrying it elsewhere or cooling the deployment down is wrong.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < max_depth:
        seen.add(id(current))
        if isinstance(current, ImportError):
            return current
        if isinstance(current, TypeError) and any(m in str(current) for m in _CALL_MISTAKES):
            return current
        current = current.__cause__ or current.__context__
    return None


def describe_bug(bug: BaseException) -> str:
    """A bug's type and, for a missing module, its name: never the rest of the message, which
    could carry request data."""
    name = getattr(bug, "name", None) if isinstance(bug, ImportError) else None
    return f"{type(bug).__name__} (module {name!r})" if name else type(bug).__name__
