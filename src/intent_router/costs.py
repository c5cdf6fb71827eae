"""Prices and tokens -> money."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from intent_router.config import Deployment

#: Rough characters per token for estimates before a provider reports real usage.
CHARS_PER_TOKEN: Final[float] = 4.0


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about 4 characters a token), at least 1 for any text."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0


def cost_usd(deployment: Deployment, input_tokens: int, output_tokens: int) -> float:
    """What ``deployment`` charges for the given token counts."""
    return (
        input_tokens * deployment.input_cost_per_mtok + output_tokens * deployment.output_cost_per_mtok
    ) / 1_000_000


def estimate_messages_tokens(messages: Iterable[Any]) -> int:
    """A token estimate for a whole OpenAI conversation: every message's text parts."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):
            total += sum(estimate_tokens(str(part.get("text") or "")) for part in content
                         if isinstance(part, dict))
    return total
