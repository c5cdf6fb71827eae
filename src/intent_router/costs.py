"""Prices and tokens -> money."""

from __future__ import annotations

from dataclasses import dataclass

from intent_router.config import Deployment


def cost_usd(deployment: Deployment, input_tokens: int, output_tokens: int) -> float:
    """What ``deployment`` charges for the given token counts."""
    return (
        input_tokens * deployment.input_cost_per_mtok
        + output_tokens * deployment.output_cost_per_mtok
    ) / 1_000_000


@dataclass(frozen=True)
class InputTokens:
    """A prompt's tokens by how the provider's prompt cache priced them: ``cached`` read from
    the cache, ``cache_write`` written to it, ``uncached`` the rest (all three within the
    provider's ``prompt_tokens``)."""

    uncached: int
    cached: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.uncached + self.cached + self.cache_write


def input_parts_usd(deployment: Deployment, tokens: InputTokens) -> tuple[float, float, float]:
    """USD of the (uncached, cached, cache-write) input at the deployment's prices; a cache
    price the config and cost map do not know is the input price."""
    per_mtok = deployment.input_cost_per_mtok
    read = deployment.cache_read_cost_per_mtok
    write = deployment.cache_write_cost_per_mtok
    return (
        tokens.uncached * per_mtok / 1_000_000,
        tokens.cached * (per_mtok if read is None else read) / 1_000_000,
        tokens.cache_write * (per_mtok if write is None else write) / 1_000_000,
    )


def cached_cost_usd(deployment: Deployment, tokens: InputTokens, output_tokens: int) -> float:
    """What ``deployment`` charges for a prompt split by the prompt cache, and the answer."""
    return (
        sum(input_parts_usd(deployment, tokens))
        + output_tokens * deployment.output_cost_per_mtok / 1_000_000
    )
