"""Deployments that are not OpenAI-compatible (Anthropic, Bedrock, ...) go through litellm.

The only module importing litellm. litellm's exceptions are mapped once, in
``map_litellm_error``, to our ProviderError with the HTTP status, the kind and Retry-After;
a failure that is our bug, not the provider's (``client_bug``), becomes a ProviderClientBug.
litellm gets only the request fields it translates (``litellm_arguments``).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
import os
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from intent_router.config import Deployment
from intent_router.exceptions import ProviderClientBug, ProviderError, RouterError
from intent_router.providers.litellm_call import client_bug, describe_bug, litellm_arguments
from intent_router.providers.openai_compat import api_key, unreachable, without_key
from intent_router.providers.upstream_validation import parse_retry_after

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map

import litellm

litellm.suppress_debug_info = True
litellm.telemetry = False
_log = logging.getLogger(__name__)

#: What litellm 1.106 imports on its first call rather than at import (found by diffing
#: ``sys.modules`` around a first call): about 2 s of a loaded 2-core machine, charged to the
#: first request's deployment timeout unless ``warm`` imports them first.
_FIRST_CALL_MODULES = (
    "litellm._service_logger",
    "litellm.litellm_core_utils.default_encoding",
    "litellm.proxy._types",
    "litellm.proxy.types_utils.utils",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "litellm.llms.anthropic.completion",
    "litellm.llms.litellm_proxy.chat",
    "litellm.llms.openai_like.dynamic_config",
)
_WARM_MESSAGES = [{"role": "user", "content": "warm-up"}]


def warm(models: Iterable[str]) -> None:
    """Pay litellm's first-call costs before any request does: its lazily imported modules,
    and for each model one offline call (``mock_response``: nothing leaves the process) in
    each mode, which builds the provider's config and litellm's response models. Never
    raises: a model litellm cannot place is reported by its first real call instead."""
    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # another litellm version: its first call pays instead
            _log.debug("litellm warm-up: no module %s", name)
    for model in dict.fromkeys(models):
        supported_params(model)
        for stream in (False, True):
            try:
                response = litellm.completion(
                    model=model,
                    messages=_WARM_MESSAGES,
                    stream=stream,
                    mock_response="ok",
                    api_key="warm-up",
                )
                if stream:
                    for _ in response:
                        pass
            except Exception as exc:
                _log.debug("litellm warm-up of %s failed: %s", model, type(exc).__name__)


def map_litellm_error(exc: Exception, deployment: Deployment | None = None) -> ProviderError:
    """Turn any litellm exception into a ProviderError that the retry rules understand (without
    the deployment's key, should the upstream's message echo it)."""
    never_connected = unreachable(exc, deployment) if deployment is not None else None
    if never_connected is not None:  # litellm reports a refused connection as a 500
        return never_connected
    if isinstance(exc, litellm.exceptions.Timeout):
        return ProviderError("upstream timed out", kind="timeout")
    if isinstance(exc, litellm.exceptions.APIConnectionError):
        return ProviderError(f"connection error: {_short(exc, deployment)}", kind="connection")
    if isinstance(exc, litellm.exceptions.ContextWindowExceededError):
        return ProviderError(f"context window exceeded: {_short(exc, deployment)}", status=400)
    status = _status(exc)
    return ProviderError(
        f"HTTP {status}: {_short(exc, deployment)}", status=status, retry_after_s=_retry_after(exc)
    )


def _status(exc: Exception) -> int:
    """The upstream's own status: litellm reports Anthropic's 529 as a 500."""
    response = getattr(exc, "response", None)
    candidates = [getattr(response, "status_code", None), getattr(exc, "status_code", None)]
    status = next((s for s in candidates if isinstance(s, int) and 100 <= s <= 599), 500)
    if status == 500 and "overloaded_error" in str(exc):
        return 529
    return status


def _short(exc: Exception, deployment: Deployment | None = None) -> str:
    message = str(getattr(exc, "message", exc))
    return (without_key(message, deployment) if deployment is not None else message)[:300]


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    response = getattr(exc, "response", None)
    if not headers and response is not None:
        headers = getattr(response, "headers", {}) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    # seconds or an HTTP date; the cooldown tracker caps it (router.upstream.max_retry_after_s)
    return parse_retry_after(value, cap_s=math.inf) if isinstance(value, str) else None


def map_call_failure(exc: Exception, deployment: Deployment) -> RouterError:
    """A failure of a litellm call as the chain walk must see it: the provider's (a
    ProviderError, retried or not by the retry rules) or our own (never retried)."""
    bug = client_bug(exc)
    if bug is not None:
        return ProviderClientBug(deployment.name, describe_bug(bug))
    return map_litellm_error(exc, deployment)


@functools.lru_cache(maxsize=256)
def supported_params(model: str) -> frozenset[str] | None:
    """The OpenAI parameters litellm translates for ``model``'s provider (None: unknown)."""
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
        params = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider)
    except Exception:  # an id litellm cannot place: keep every field, litellm will say
        return None
    return frozenset(params) if params else None


async def _acompletion(
    deployment: Deployment, request: dict[str, Any], timeout_s: float, stream: bool
) -> Any:
    return await litellm.acompletion(
        model=deployment.model,
        api_base=deployment.api_base,
        api_key=api_key(deployment),
        timeout=timeout_s,
        num_retries=0,
        stream=stream,
        # litellm (1.106) imports the optional `mcp` package for any request with tools, to
        # look for MCP tools of a LiteLLM proxy's gateway, which the router never uses.
        _skip_mcp_handler=True,
        **litellm_arguments(request, supported_params(deployment.model)),
    )


class LitellmClient:
    """Chat completions through ``litellm.acompletion`` for any provider it knows."""

    async def complete(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        try:
            response = await _acompletion(deployment, request, timeout_s, stream=False)
        except RouterError:
            raise
        except Exception as exc:  # every litellm error is mapped, once, here
            raise map_call_failure(exc, deployment) from exc
        return dict(response.model_dump())

    async def stream(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> AsyncGenerator[bytes, None]:
        """Yield OpenAI-style SSE lines (``data: {...}``, then ``data: [DONE]``)."""
        try:
            response = await _acompletion(deployment, request, timeout_s, stream=True)
            async for chunk in response:
                yield b"data: " + json.dumps(chunk.model_dump(exclude_none=True)).encode()
        except RouterError:
            raise
        except Exception as exc:
            raise map_call_failure(exc, deployment) from exc
        yield b"data: [DONE]"
