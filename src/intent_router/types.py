"""Frozen value types passed between the router's parts, and the string enums they carry as
``Literal`` aliases (what each value means is said once, here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AttemptOutcome = Literal[
    "ok", "failed", "skipped_cooldown", "skipped_context", "skipped_deadline", "skipped_no_key"
]
"""What happened at one deployment of a chain: it answered, it failed, or it was skipped because
it was cooling down, its context window was too small, the deadline had passed, or its key
variable is unset."""

RouteSource = Literal["model", "llm", "default"]
"""Who chose the intent: the local model, the LLM classifier (below the confidence threshold), or
nobody (the escalation failed and the local prediction was kept)."""

DecisionSource = Literal[RouteSource, "requested"]
"""A decision row's source: a ``RouteSource``, or ``requested`` (the caller named a deployment,
so nothing was classified)."""

Endpoint = Literal["route", "chat", "chat_stream"]
"""The endpoint a decision was made for: /v1/route, /v1/chat/completions, or the same streamed."""

DecisionStatus = Literal["ok", "failed"]
"""Whether the request was answered (a stream: ended with ``[DONE]``)."""

BudgetEffect = Literal["downgraded"]
"""What a client key's budget did to a request: moved it to the downgrade tier."""

OverBudget = Literal["downgrade", "refuse"]
"""What a request over its key's budget gets: the config's downgrade tier, or a 429."""

ProviderErrorKind = Literal[
    "http", "timeout", "connection", "unreachable", "malformed_response", "no_key"
]
"""How a provider call failed: an HTTP error status; no answer in time; the connection broke;
nothing was sent (refused, DNS failure); an answer that breaks the API's contract or the
router's limits; the deployment's key variable is unset."""

Tier = Literal["primary", "fallback_1", "fallback_2", "local"]
"""A deployment's tier in the policy's chains; ``local`` is the only tier sensitive requests
reach."""

RoutingMode = Literal["argmax", "regret"]
"""``argmax``: the most probable intent; ``regret``: the intent of least expected regret."""

ReadinessStatus = Literal["ready", "warming", "degraded"]
"""/readyz: serving; litellm still loading (503); or no deployment can answer a chat request."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """The local classifier's answer for one prompt."""

    intent: str
    confidence: float
    probabilities: dict[str, float]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened at one deployment of a chain: made by the fallback walk, counted in the
    metrics, answered in an ``all_providers_failed`` error and stored in the decision log."""

    deployment: str
    outcome: AttemptOutcome
    status: int | None = None
    """The upstream's HTTP status, when it answered with an error."""
    error: str | None = None
    latency_ms: float = 0.0
