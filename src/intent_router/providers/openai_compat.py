"""The fast path: OpenAI-compatible deployments over one pooled aiohttp session.

OpenAI-compatible upstreams (OpenAI, Cloudflare's OpenAI-compatible endpoint, Together,
Ollama, a LiteLLM proxy) skip litellm (5.5 ms a call). The client is aiohttp, not httpx:
at concurrency 8 against a local upstream a pooled httpx request costs about 10x the CPU of an
aiohttp one (``make bench BENCH=client``: about 1,000 against 100 us); under load the httpx
client took 42% of a worker's CPU (py-spy), the chat path's hot spot.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from intent_router.config import Deployment
from intent_router.exceptions import FatalProviderError, MissingKeyError, ProviderError


def upstream_model(deployment: Deployment) -> str:
    """The model name the upstream expects: the litellm id without its provider prefix."""
    return deployment.model.split("/", 1)[1]


def api_key(deployment: Deployment, environ: Mapping[str, str] = os.environ) -> str | None:
    """The deployment's key from its environment variable; a missing key is a clear error."""
    if deployment.api_key_env is None:
        return None
    key = environ.get(deployment.api_key_env)
    if not key:
        raise MissingKeyError(deployment.name, deployment.api_key_env)
    return key


def without_key(text: str, deployment: Deployment) -> str:
    """``text`` (an upstream's error) without the deployment's key, should the upstream echo it."""
    key = os.environ.get(deployment.api_key_env) if deployment.api_key_env else None
    return text.replace(key, "[REDACTED:api_key]") if key else text


class OpenAICompatClient:
    """Chat completions against ``{api_base}/chat/completions`` with a shared connection pool.

    The session is opened on first use, inside the serving event loop. ``timeout_s`` bounds
    connecting and each read (between two chunks of a stream), as httpx's read timeout did;
    the chain walk bounds a whole call.
    """

    def __init__(self, max_connections: int = 200) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0,
                                             ttl_dns_cache=300, enable_cleanup_closed=True)
            # read_bufsize bounds one SSE line (a large tool-call chunk fits in 1 MiB).
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**20)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def complete(self, deployment: Deployment, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send a non-streaming request; return the parsed completion or raise ProviderError."""
        body = {**request, "model": upstream_model(deployment), "stream": False}
        try:
            async with self._open().post(_url(deployment), json=body, headers=_headers(deployment),
                                         timeout=_timeout(timeout_s)) as response:
                data = await response.read()
                if response.status >= 400:
                    raise _status_error(response.status, response.headers, data, deployment)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _transport_error(exc) from exc
        try:
            completion = json.loads(data)
        except ValueError as exc:
            raise ProviderError("upstream sent a body that is not JSON", kind="malformed") from exc
        if not isinstance(completion, dict) or not completion.get("choices"):
            raise ProviderError("upstream sent a completion without choices", kind="malformed")
        return completion

    async def stream(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> AsyncIterator[bytes]:
        """Yield the upstream's SSE lines; errors before the first line raise ProviderError."""
        body = {**request, "model": upstream_model(deployment), "stream": True}
        try:
            async with self._open().post(_url(deployment), json=body, headers=_headers(deployment),
                                         timeout=_timeout(timeout_s)) as response:
                if response.status >= 400:
                    raise _status_error(response.status, response.headers, await response.read(), deployment)
                async for raw in response.content:
                    line = raw.rstrip(b"\r\n")
                    if line:
                        yield line
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _transport_error(exc) from exc
        except ValueError as exc:  # a line longer than read_bufsize
            raise ProviderError("upstream sent a stream line too long", kind="malformed") from exc


def _url(deployment: Deployment) -> str:
    if not deployment.api_base:
        raise FatalProviderError(f"deployment {deployment.name!r} has no api_base", status=500)
    return deployment.api_base.rstrip("/") + "/chat/completions"


def _headers(deployment: Deployment) -> dict[str, str]:
    key = api_key(deployment)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=min(seconds, 5.0), sock_read=seconds)


def _status_error(status: int, headers: Mapping[str, str], data: bytes, deployment: Deployment) -> ProviderError:
    retry_after = _retry_after(headers.get("Retry-After"))
    try:
        message = without_key(str(json.loads(data)["error"]["message"]), deployment)
    except (ValueError, KeyError, TypeError):
        message = without_key(data.decode("utf-8", "replace"), deployment)[:300]
    return ProviderError(f"HTTP {status}: {message}", status=status, retry_after_s=retry_after)


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


def _transport_error(exc: Exception) -> ProviderError:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return ProviderError("upstream timed out", kind="timeout")
    return ProviderError(f"connection error: {type(exc).__name__}", kind="connection")
