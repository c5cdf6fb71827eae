"""Frozen value types passed between the router's parts, and the string enums they carry as
``Literal`` aliases (what each value means is said once, here): a prediction, a chain walk's
attempts and result, a route decision, a sticky session's id, state and choice, a chat
request's plan and outcome. Behaviour lives with the rules that make them (routing/, router.py,
fallback.py); these are data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

T = TypeVar("T")

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


SessionOutcome = Literal["new", "stuck", "switched", "upgraded", "expired"]
"""A sticky session's turn: opened it; reused its chain; fell back or was bound elsewhere; moved
it to a higher-stakes chain; or came after the session had expired (routing/sessions.py)."""
OUTCOMES: Final[tuple[SessionOutcome, ...]] = ("new", "stuck", "switched", "upgraded", "expired")

NameSource = Literal["header", "metadata", "derived"]
"""Where a session's name came from: ``x-session-id``, ``metadata.session_id``, or derived from
the client, the system prompt and the first user message."""


@dataclass(frozen=True)
class ChainResult(Generic[T]):
    """The answer of the deployment that answered a chain walk, and every attempt before it."""

    value: T
    deployment: str
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class RouteDecision:
    """Everything /v1/route answers."""

    intent: str
    confidence: float
    probabilities: dict[str, float]
    source: RouteSource
    chain: tuple[str, ...]
    estimated_cost_usd: float
    escalation_cost_usd: float
    threshold: float
    model_version: str
    escalation_error: str | None = None
    local_intent: str | None = None  # the local model's own prediction
    override_applied: tuple[str, ...] = ()  # e.g. ("user:ana", "org:acme")
    classify_ms: float = 0.0
    escalate_ms: float = 0.0
    routed_as: str | None = None  # the intent whose chain was chosen (regret routing may differ)
    turns_used: tuple[int, ...] = ()  # positions among the user turns classified, oldest first
    routing_mode: RoutingMode = "argmax"


@dataclass(frozen=True)
class SessionId:
    """A session's name as kept: ``key`` is a SHA-256 (hex) of the client scope and the id."""

    key: str
    source: NameSource
    opening: bool = False
    """True: the request opens its conversation (a derived id, one user turn): start afresh."""


@dataclass(frozen=True)
class SessionState:
    """What a session stuck to, and until when."""

    chain: tuple[str, ...]
    """The chain it stuck to (as the policy chose it: a model group by its first member)."""
    deployment: str
    """Tried first: the deployment that last answered (a group's member), else the chain's first."""
    intent: str
    confidence: float
    turns: int
    expires_at: float
    """Unix time; every turn pushes it ``ttl_s`` ahead."""

    def to_json(self) -> str:
        return json.dumps(
            [
                list(self.chain),
                self.deployment,
                self.intent,
                self.confidence,
                self.turns,
                self.expires_at,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionState | None:
        """The state ``to_json`` wrote; None for anything else (a corrupt or foreign value)."""
        try:
            chain, deployment, intent, confidence, turns, expires_at = json.loads(text)
            state = cls(
                tuple(chain), deployment, intent, float(confidence), int(turns), float(expires_at)
            )
        except (ValueError, TypeError):
            return None
        valid = (
            state.chain
            and all(isinstance(n, str) for n in state.chain)
            and isinstance(state.deployment, str)
            and isinstance(state.intent, str)
        )
        return state if valid else None


@dataclass(frozen=True)
class Proposal:
    """How this turn would be routed on its own."""

    intent: str
    confidence: float
    chain: tuple[str, ...]
    binding: str | None = None
    """Why this turn must take ``chain`` whatever its session (a secret, a pin); None: it may stick."""


@dataclass(frozen=True)
class SessionChoice:
    """The chain a turn takes, why, and the session as it stands if ``prefer`` answers."""

    chain: tuple[str, ...]
    prefer: str | None
    """The deployment to try first even inside its model group; None: the chain's own order."""
    outcome: SessionOutcome
    reason: str
    state: SessionState
    sticks: bool = True
    """False: a bound turn; whoever answers it, the session keeps its deployment."""

    @property
    def sticky(self) -> bool:
        """The turn reuses the session's chain (stuck, or falling back along it)."""
        return self.outcome in ("stuck", "switched") and self.sticks


@dataclass(frozen=True)
class SessionReport:
    """What a response says of its session: the (hashed) id, the turn's outcome and why."""

    key: str
    outcome: SessionOutcome
    reason: str

    @property
    def sticky(self) -> bool:
        return self.outcome == "stuck"


@dataclass(frozen=True)
class SessionTurn:
    """A turn of a sticky session: its id and the rule's choice (routing/sessions.py)."""

    id: SessionId
    choice: SessionChoice


@dataclass(frozen=True)
class Plan:
    """What a chat request will do before any provider is called."""

    decision: RouteDecision | None  # None when the caller named a deployment
    chain: tuple[str, ...]
    prefer: str | None = None  # tried first, even inside its model group (a session's deployment)
    session: SessionTurn | None = None


@dataclass(frozen=True)
class ChatOutcome:
    """A chat completion that some deployment of the chain answered."""

    response: dict[str, Any]
    decision: RouteDecision | None  # None when the caller named a deployment (no classification)
    result: ChainResult[dict[str, Any]]
    cost_usd: float  # the answer's usage at the deployment's prices, plus any escalation
    session: SessionReport | None = None

    @property
    def intent(self) -> str | None:
        return self.decision.intent if self.decision else None


@dataclass(frozen=True)
class StreamOutcome:
    """An opened stream: its first SSE line arrived, so the chain walk is over."""

    decision: RouteDecision | None
    result: ChainResult[tuple[bytes, AsyncIterator[bytes]]]
    session: SessionReport | None = None

    @property
    def intent(self) -> str | None:
        return self.decision.intent if self.decision else None

    @property
    def escalation_cost_usd(self) -> float:
        return self.decision.escalation_cost_usd if self.decision else 0.0
