"""Pick the client for a deployment: pooled httpx for OpenAI-compatible APIs, litellm else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from intent_router.config import Deployment
from intent_router.providers.openai_compat import OpenAICompatClient


class ProviderClients:
    """Owns the provider clients; ``complete`` routes each call by ``api_style``."""

    def __init__(self) -> None:
        self.openai = OpenAICompatClient()
        self._litellm: Any = None

    async def complete(self, deployment: Deployment, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if deployment.api_style == "openai":
            return await self.openai.complete(deployment, request, timeout_s)
        return await self._litellm_client().complete(deployment, request, timeout_s)

    def stream(self, deployment: Deployment, request: dict[str, Any], timeout_s: float) -> AsyncIterator[bytes]:
        if deployment.api_style == "openai":
            return self.openai.stream(deployment, request, timeout_s)
        return self._litellm_client().stream(deployment, request, timeout_s)

    def _litellm_client(self) -> Any:
        if self._litellm is None:  # importing litellm costs seconds: only when first needed
            from intent_router.providers.litellm_client import LitellmClient

            self._litellm = LitellmClient()
        return self._litellm

    async def aclose(self) -> None:
        await self.openai.aclose()
