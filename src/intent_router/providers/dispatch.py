"""Pick the client for a deployment: pooled aiohttp for OpenAI-compatible APIs, litellm else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from functools import partial
from typing import Any

from intent_router.config import Deployment, UpstreamLimits
from intent_router.exceptions import MissingKeyError
from intent_router.providers.openai_compat import (
    OpenAICompatClient,
    api_key,
    stream_timeout,
    without_key,
)
from intent_router.providers.upstream_validation import (
    checked_completion,
    checked_events,
    encodable,
    malformed,
)


async def _bounded(
    lines: AsyncGenerator[bytes, None], limits: UpstreamLimits
) -> AsyncIterator[bytes]:
    """litellm's stream within the limits the fast path keeps while reading bytes: each line
    within ``stream_idle_s`` of the last and ``max_sse_line_bytes`` long, all within
    ``stream_total_s`` (litellm's own timeout bounds each read, so a trickle never ends)."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + limits.stream_total_s
    async with aclosing(lines) as upstream:
        iterator = aiter(upstream)
        while True:
            try:
                async with asyncio.timeout_at(min(loop.time() + limits.stream_idle_s, ends_at)):
                    line = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise stream_timeout(limits, loop.time() >= ends_at) from None
            if len(line) > limits.max_sse_line_bytes:
                raise malformed(f"a stream line longer than {limits.max_sse_line_bytes} bytes")
            yield line


def _has_key(deployment: Deployment) -> bool:
    try:
        api_key(deployment)
    except MissingKeyError:
        return False
    return True


def needs_litellm(deployments: Iterable[Deployment]) -> bool:
    """Whether some deployment that may be called (its key is set, or it needs none) goes
    through litellm: such a worker loads litellm at start, the others never do."""
    return any(d.api_style == "litellm" and _has_key(d) for d in deployments)


def _load_litellm_client(models: tuple[str, ...] = ()) -> Any:
    from intent_router.providers.litellm_client import LitellmClient, warm

    warm(models)
    return LitellmClient()


class ProviderClients:
    """Owns the provider clients; ``complete`` and ``stream`` route each call by ``api_style``
    and check what comes back (``upstream_validation``), whichever path it came by.

    litellm is about 130 MB of a worker and seconds to import (about 5.6 s on the 2-core
    development machine), so a worker loads it only on its first call to an ``api_style:
    litellm`` deployment, in a background thread (the event loop keeps serving); that call and
    any other arriving meanwhile wait for it. ``load_for(chain)`` waits for it before a chain
    that may need it is walked, so the import is not charged to a deployment's timeout.
    """

    def __init__(self, limits: UpstreamLimits = UpstreamLimits()) -> None:
        self.openai = OpenAICompatClient(limits=limits)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litellm-import")
        self._litellm: Future[Any] | None = None

    @property
    def warm(self) -> bool:
        """litellm is loaded (or failed to load: the first call that needs it says why)."""
        return self._litellm is not None and self._litellm.done()

    def warm_up(self, deployments: Iterable[Deployment] = ()) -> None:
        """Start loading litellm in the background (idempotent), with its first-call costs
        paid for the litellm models of ``deployments``."""
        if self._litellm is None:
            models = tuple(d.model for d in deployments if d.api_style == "litellm")
            self._litellm = self._loader.submit(_load_litellm_client, models)

    async def load_for(self, chain: Iterable[Deployment]) -> None:
        """Load litellm now if it is not loaded yet and some deployment of ``chain`` that may be
        called (one with its key: the others are skipped) goes through it: the import then
        counts against no deployment's timeout, and a fallback never fails for it."""
        chain = tuple(chain)
        if not self.warm and needs_litellm(chain):
            self.warm_up(chain)
            await self._litellm_client()

    async def complete(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        if deployment.api_style == "openai":
            return await self.openai.complete(deployment, request, timeout_s)  # checked as decoded
        api_key(deployment)  # a missing key is known at once, without waiting for litellm
        client = await self._litellm_client()
        completion = checked_completion(dict(await client.complete(deployment, request, timeout_s)))
        return encodable(completion, self.openai.limits.max_body_bytes)  # litellm read it whole

    def stream(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> AsyncIterator[bytes]:
        redact = partial(without_key, deployment=deployment)  # an error event may echo the key
        if deployment.api_style == "openai":
            return checked_events(self.openai.stream(deployment, request, timeout_s), redact)
        return checked_events(self._litellm_stream(deployment, request, timeout_s), redact)

    async def _litellm_stream(
        self, deployment: Deployment, request: dict[str, Any], timeout_s: float
    ) -> AsyncGenerator[bytes, None]:
        api_key(deployment)
        client = await self._litellm_client()
        async for line in _bounded(
            client.stream(deployment, request, timeout_s), self.openai.limits
        ):
            yield line

    async def _litellm_client(self) -> Any:
        self.warm_up()
        assert self._litellm is not None
        return await asyncio.wrap_future(self._litellm)

    async def aclose(self) -> None:
        await self.openai.aclose()
        self._loader.shutdown(wait=False)
