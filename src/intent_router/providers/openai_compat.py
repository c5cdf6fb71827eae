"""The fast path: OpenAI-compatible deployments over one pooled aiohttp session.

OpenAI-compatible upstreams (OpenAI, Cloudflare's OpenAI-compatible endpoint, Together,
Ollama, a LiteLLM proxy) skip litellm (5.5 ms a call). The client is aiohttp, not httpx:
at concurrency 8 against a local upstream a pooled httpx request costs about 10x the CPU of an
aiohttp one (``make bench BENCH=client``: about 1,000 against 100 us); under load the httpx
client took 42% of a worker's CPU (py-spy), the chat path's hot spot.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from intent_router.config import Deployment, UpstreamLimits
from intent_router.exceptions import FatalProviderError, MissingKeyError, ProviderError
from intent_router.providers.upstream_validation import (
    SSELineSplitter,
    error_message,
    malformed,
    parse_completion,
    parse_retry_after,
)


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
    connecting and each read, as httpx's read timeout did; the chain walk bounds a whole call.
    ``limits`` bound what an upstream may send: the size of an answer and of one SSE line, the
    wait for each line of a stream and a whole stream's length. What comes back is checked by
    ``upstream_validation`` (a completion here; stream events by the dispatcher).
    """

    def __init__(
        self, max_connections: int = 200, limits: UpstreamLimits = UpstreamLimits()
    ) -> None:
        self._max_connections = max_connections
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def complete(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """Send a non-streaming request; return the checked completion or raise ProviderError."""
        body = {**request, "model": upstream_model(deployment), "stream": False}
        try:
            async with self._open().post(
                _url(deployment),
                json=body,
                headers=_headers(deployment),
                timeout=_timeout(timeout_s),
            ) as response:
                if response.status >= 400:
                    data = await _read_at_most(response, ERROR_BODY_BYTES)
                    raise _status_error(
                        response.status, response.headers, data, deployment, self.limits
                    )
                data = await _read_at_most(response, self.limits.max_body_bytes, refuse_more=True)
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, deployment) from exc
        return parse_completion(data)

    async def stream(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> AsyncGenerator[bytes, None]:
        """Yield the upstream's SSE lines; errors before the first line raise ProviderError."""
        body = {**request, "model": upstream_model(deployment), "stream": True}
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.limits.stream_total_s
        try:
            async with self._open().post(
                _url(deployment),
                json=body,
                headers=_headers(deployment),
                timeout=_timeout(timeout_s),
            ) as response:
                if response.status >= 400:
                    data = await _read_at_most(response, ERROR_BODY_BYTES)
                    raise _status_error(
                        response.status, response.headers, data, deployment, self.limits
                    )
                async for line in _lines(response.content, self.limits, ends_at):
                    yield line
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, deployment) from exc


#: What an error body is read up to: its message is all the router keeps.
ERROR_BODY_BYTES = 64 * 1024
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, HttpProcessingError)


async def _read_at_most(
    response: aiohttp.ClientResponse, limit: int, refuse_more: bool = False
) -> bytes:
    """The body, read no further than ``limit`` bytes: past it, malformed (``refuse_more``) or cut."""
    declared = response.content_length
    if refuse_more and declared is not None and declared > limit:
        raise malformed(f"a body of {declared} bytes, over the limit of {limit}")
    data = bytearray()
    async for chunk in response.content.iter_any():
        data += chunk
        if len(data) > limit:
            if refuse_more:
                raise malformed(f"a body over the limit of {limit} bytes")
            return bytes(data[:limit])
    return bytes(data)


async def _lines(
    content: aiohttp.StreamReader, limits: UpstreamLimits, ends_at: float
) -> AsyncIterator[bytes]:
    """The stream's lines, each within ``max_sse_line_bytes`` and ``stream_idle_s`` of the last
    (a stream trickling bytes without completing a line ends too), all before ``ends_at``."""
    splitter = SSELineSplitter(limits.max_sse_line_bytes)
    loop = asyncio.get_running_loop()
    while True:
        idle_until = loop.time() + limits.stream_idle_s
        lines: list[bytes] = []
        while not lines:
            try:
                async with asyncio.timeout_at(min(idle_until, ends_at)):
                    data = await content.readany()
            except TimeoutError:
                raise stream_timeout(limits, loop.time() >= ends_at) from None
            if not data:  # the upstream closed the stream
                for line in splitter.close():
                    yield line
                return
            lines = splitter.feed(data)
        for line in lines:
            yield line


def stream_timeout(limits: UpstreamLimits, total: bool) -> ProviderError:
    """The error of a stream past ``stream_total_s`` (``total``) or idle for ``stream_idle_s``."""
    if total:
        return ProviderError(
            f"upstream stream lasted over {limits.stream_total_s:g} s", kind="timeout"
        )
    return ProviderError(
        f"upstream sent no complete stream line for {limits.stream_idle_s:g} s", kind="timeout"
    )


def _url(deployment: Deployment) -> str:
    if not deployment.api_base:
        raise FatalProviderError(f"deployment {deployment.name!r} has no api_base", status=500)
    return deployment.api_base.rstrip("/") + "/chat/completions"


def _headers(deployment: Deployment) -> dict[str, str]:
    key = api_key(deployment)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=min(seconds, 5.0), sock_read=seconds)


def _status_error(
    status: int,
    headers: Mapping[str, str],
    data: bytes,
    deployment: Deployment,
    limits: UpstreamLimits,
) -> ProviderError:
    retry_after = parse_retry_after(headers.get("Retry-After"), limits.max_retry_after_s)
    message = error_message(data, lambda text: without_key(text, deployment))
    return ProviderError(f"HTTP {status}: {message}", status=status, retry_after_s=retry_after)


def _transport_error(exc: BaseException, deployment: Deployment) -> ProviderError:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return ProviderError("upstream timed out", kind="timeout")
    never_connected = unreachable(exc, deployment)
    if never_connected is not None:
        return never_connected
    if isinstance(
        exc, HttpProcessingError
    ):  # a response aiohttp cannot parse (a line too long, ...)
        return malformed(f"a response that is not valid HTTP ({type(exc).__name__})")
    return ProviderError(f"connection error: {type(exc).__name__}", kind="connection")


def unreachable(exc: BaseException, deployment: Deployment) -> ProviderError | None:
    """An ``unreachable`` error when ``exc`` (or what caused it: litellm wraps it twice) is a
    connection that was never made (refused, DNS failure, no route): nothing reached the upstream."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            return None
        if isinstance(cause, aiohttp.ClientConnectorError):
            reason = _reason(cause.os_error)
            return ProviderError(
                f"cannot connect to {public_url(deployment)} ({reason})", kind="unreachable"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _reason(error: OSError | None) -> str:
    """ "Connection refused", "Name or service not known", ...: what the system said."""
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    errno = getattr(error, "errno", None)
    return os.strerror(errno) if isinstance(errno, int) and errno > 0 else type(error).__name__


def public_url(deployment: Deployment) -> str:
    """The deployment's API base without credentials or query: safe in errors and logs."""
    parts = urlsplit(deployment.api_base or "")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    try:
        netloc += f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # a port that is not a number: the host says enough
        pass
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
