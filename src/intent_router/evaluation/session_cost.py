"""Pure: what one agent session costs, turn by turn, with the providers' prompt cache.

An agent resends the whole conversation every turn: turn k's prompt is the agent's fixed
prefix (system prompt, tool definitions), every earlier user turn and answer, then turn k's
message. A provider that served this session before holds in its cache the last prompt it
was sent (the client marks the prompt for caching, as coding agents do); that prompt is a
prefix of every later one, so turn k on a deployment reads it from the cache and writes the
rest (priced at the deployment's cache-read and cache-write prices: ``costs.input_parts_usd``;
a deployment without such prices pays its input price, no discount). Prompts shorter than
``MIN_CACHEABLE_TOKENS`` are not cached (Anthropic's and OpenAI's minimum). The cache is
assumed not to expire within a session (turns minutes apart, under Anthropic's 5 minutes), so
a session that comes back to a deployment reads what it left there; with ``kept=False`` a
switch loses every cache (the cache is read only when the previous turn was answered by the
same deployment). Answer lengths do not depend on who answers, so both policies send the same
conversation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from intent_router.config import Deployment
from intent_router.costs import InputTokens, input_parts_usd

MIN_CACHEABLE_TOKENS: Final[int] = 1024
"""The shortest prompt Anthropic (Sonnet) and OpenAI cache."""


@dataclass(frozen=True)
class TurnCost:
    """One turn of a session on one deployment."""

    deployment: str
    input_tokens: int
    cached_tokens: int  # read from the deployment's prompt cache
    input_cost_usd: float  # with the cache: reads at the read price, the rest at the write price
    list_input_cost_usd: float  # the same input at the plain input price, no cache
    output_cost_usd: float


@dataclass(frozen=True)
class SessionCost:
    """A whole session under one policy."""

    turns: tuple[TurnCost, ...]

    @property
    def switches(self) -> int:
        """Turns answered by another deployment than the turn before."""
        return sum(1 for a, b in zip(self.turns, self.turns[1:]) if a.deployment != b.deployment)

    @property
    def input_cost_usd(self) -> float:
        return sum(t.input_cost_usd for t in self.turns)

    @property
    def list_input_cost_usd(self) -> float:
        return sum(t.list_input_cost_usd for t in self.turns)

    @property
    def output_cost_usd(self) -> float:
        return sum(t.output_cost_usd for t in self.turns)

    @property
    def input_tokens(self) -> int:
        return sum(t.input_tokens for t in self.turns)

    @property
    def cached_tokens(self) -> int:
        return sum(t.cached_tokens for t in self.turns)


def prompt_sizes(
    user_tokens: Sequence[int], reply_tokens: Sequence[int], prefix_tokens: int
) -> list[int]:
    """Input tokens of every turn's prompt: the prefix, the conversation so far, the turn."""
    if len(user_tokens) != len(reply_tokens):
        raise ValueError("one answer length per user turn")
    sizes, history = [], prefix_tokens
    for user, reply in zip(user_tokens, reply_tokens):
        sizes.append(history + user)
        history += user + reply
    return sizes


def session_cost(
    deployments: Sequence[Deployment],
    user_tokens: Sequence[int],
    reply_tokens: Sequence[int],
    prefix_tokens: int,
    kept: bool = True,
) -> SessionCost:
    """The cost of a session whose turn k was answered by ``deployments[k]``; ``kept``: a
    deployment's cache outlives a switch away from it."""
    if len(deployments) != len(user_tokens):
        raise ValueError("one deployment per turn")
    cached_prompt: dict[str, int] = {}  # deployment -> the last prompt it cached in this session
    turns: list[TurnCost] = []
    for deployment, size, reply in zip(
        deployments, prompt_sizes(user_tokens, reply_tokens, prefix_tokens), reply_tokens
    ):
        if not kept and turns and turns[-1].deployment != deployment.name:
            cached_prompt.clear()
        cached = cached_prompt.get(deployment.name, 0)
        if size >= MIN_CACHEABLE_TOKENS:
            cached_prompt[deployment.name] = size
            tokens = InputTokens(uncached=0, cached=cached, cache_write=size - cached)
        else:
            tokens = InputTokens(uncached=size)
        turns.append(
            TurnCost(
                deployment=deployment.name,
                input_tokens=size,
                cached_tokens=cached,
                input_cost_usd=sum(input_parts_usd(deployment, tokens)),
                list_input_cost_usd=size * deployment.input_cost_per_mtok / 1_000_000,
                output_cost_usd=reply * deployment.output_cost_per_mtok / 1_000_000,
            )
        )
    return SessionCost(tuple(turns))


def totals(sessions: Mapping[str, SessionCost]) -> dict[str, float]:
    """Sums and means over sessions: switches per session, input cost with and without the
    cache, output cost, cache hit rate (cached over all input tokens)."""
    count = len(sessions) or 1
    values = list(sessions.values())
    input_tokens = sum(s.input_tokens for s in values)
    return {
        "sessions": float(len(values)),
        "turns": float(sum(len(s.turns) for s in values)),
        "switches_per_session": sum(s.switches for s in values) / count,
        "sessions_with_a_switch": float(sum(1 for s in values if s.switches)),
        "input_cost_usd": sum(s.input_cost_usd for s in values),
        "list_input_cost_usd": sum(s.list_input_cost_usd for s in values),
        "output_cost_usd": sum(s.output_cost_usd for s in values),
        "cache_hit_rate": sum(s.cached_tokens for s in values) / input_tokens
        if input_tokens
        else 0.0,
    }
