"""What one routing decision leaves behind, and the feedback that may follow it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from intent_router.types import Attempt, BudgetEffect, DecisionSource, DecisionStatus, Endpoint


def prompt_digest(text: str) -> str:
    """The prompt's SHA-256, what the log keeps unless full text is configured."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: The decision log stores the fallback walk's own ``Attempt`` (its error redacted).
AttemptRecord = Attempt


@dataclass(frozen=True)
class Decision:
    """One request: how it was routed, who answered, at what cost, and how long it took."""

    request_id: str
    created_at: float  # Unix time
    endpoint: Endpoint
    status: DecisionStatus
    intent: str | None
    confidence: float | None
    source: DecisionSource
    chain: tuple[str, ...]
    model_version: str
    prompt_sha256: str
    prompt_text: str | None = None
    deployment: str | None = None
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None
    llm_label: str | None = None
    escalation_error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens, written to it (priced apart, uncached)
    input_cost_usd: float = 0.0  # prompt_tokens at the deployment's prices, cache discount applied
    cached_input_cost_usd: float = 0.0  # of input_cost_usd, the cached tokens' part
    cost_usd: float = 0.0
    premium_cost_usd: float = 0.0  # what always-premium would have cost for the same tokens
    latency_ms: float = 0.0
    classify_ms: float = 0.0
    escalate_ms: float = 0.0
    repo: str | None = None
    user: str | None = None
    org: str | None = None  # with client keys on: the key's team
    client_key_id: str | None = None
    budget: BudgetEffect | None = None
    traced: bool = False  # sampled for an MLflow trace
    session_id: str | None = None  # a SHA-256 of the session's scoped id (routing/sessions.py)
    session: str | None = None  # "new", "stuck", "switched", "upgraded" or "expired"
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Feedback:
    """A user's correction or rating of one decision."""

    request_id: str
    correct_intent: str | None = None
    rating: int | None = None  # 1 (bad) .. 5 (good)
    comment: str | None = None
