"""Wire schemas (msgspec) of the service's endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from intent_router.types import ReadinessStatus

#: A token count a client may ask for: bounded, since budgets multiply it by prices (a
#: 400-digit integer would overflow the float arithmetic).
TokenCount = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
#: A non-empty message list.
Messages = Annotated[list["Message"], msgspec.Meta(min_length=1)]


class ContentPart(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    text: str | None = None


class Message(msgspec.Struct, forbid_unknown_fields=False):
    role: str
    content: str | list[ContentPart] | None = None


class RouteMetadata(msgspec.Struct, forbid_unknown_fields=False):
    org: str | None = None
    repo: str | None = None
    user: str | None = None
    sensitive: bool = False
    session_id: str | None = None  # a sticky session's name (the x-session-id header wins)


class RouteRequest(msgspec.Struct, forbid_unknown_fields=False):
    """Either OpenAI-style ``messages`` or a bare ``prompt`` (with the earlier user turns in
    ``context``, oldest first: a short follow-up is classified with them)."""

    messages: Messages | None = None
    prompt: str | None = None
    context: list[str] | None = None
    model: str = "auto"
    metadata: RouteMetadata | None = None


class ChatRequest(msgspec.Struct, forbid_unknown_fields=False):
    """An OpenAI chat-completions request. The fields below are validated; the body is passed
    on to the provider as it came (tools, tool_calls, response_format, ... included), without
    ``model`` (set per deployment) and ``metadata`` (the router's own: repo, user, sensitive)."""

    messages: Messages
    model: str = "auto"
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    stop: str | list[str] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    metadata: RouteMetadata | None = None


#: Request fields the router consumes and never sends upstream.
ROUTER_ONLY_FIELDS = frozenset({"model", "metadata", "stream"})


def upstream_body(raw: dict[str, Any]) -> dict[str, Any]:
    """The provider's request: the client's body without the router's own fields."""
    return {k: v for k, v in raw.items() if k not in ROUTER_ONLY_FIELDS}


class RouteSession(msgspec.Struct):
    """The turn's sticky session: its id (a SHA-256: never the id sent), what the turn did
    (new, stuck, switched, upgraded or expired) and why."""

    id: str
    outcome: str
    reason: str
    sticky: bool


class RouteResponse(msgspec.Struct):
    intent: str
    confidence: float
    probabilities: dict[str, float]
    source: str
    chain: list[str]
    estimated_cost_usd: float
    escalation_cost_usd: float
    threshold: float
    model_version: str
    escalation_error: str | None = None
    request_id: str | None = None  # for POST /v1/feedback
    sensitive: bool = False  # local tier only: metadata.sensitive, a sensitive subject or a secret
    override: list[str] = msgspec.field(
        default_factory=list
    )  # overrides applied, most specific first
    secrets_found: list[str] = msgspec.field(default_factory=list)  # kinds, never the secrets
    routed_as: str | None = None  # the intent whose chain was chosen (differs under regret routing)
    # The user turns classified: indexes into ``messages`` (with ``prompt``: into ``context``,
    # the prompt being index len(context)), oldest first.
    turns_used: list[int] = msgspec.field(default_factory=list)
    session: RouteSession | None = (
        None  # None: sessions off, a named model, or nothing to name one by
    )


class ModelCard(msgspec.Struct):
    id: str
    created: int  # Unix time: when this service started
    owned_by: str  # "intent-router" for auto, else the deployment's provider
    object: str = "model"


class Readiness(msgspec.Struct):
    """GET /readyz: ``ready``, ``warming`` (litellm loading) or ``degraded`` (no deployment can
    answer a chat request; ``reasons`` say why)."""

    status: ReadinessStatus
    model_version: str
    reasons: list[str] = msgspec.field(default_factory=list)
    usable_deployments: list[str] = msgspec.field(default_factory=list)


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"


class AttemptInfo(msgspec.Struct):
    deployment: str
    outcome: str
    error: str | None = None
    status: int | None = None


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    attempts: list[AttemptInfo] | None = None


class ErrorBody(msgspec.Struct):
    """OpenAI's error format."""

    error: ErrorDetail


def strings_in(value: Any) -> list[str]:
    """Every string in a parsed JSON body (values and keys), for the secret detector."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def user_turns(messages: list[Message]) -> tuple[list[int], list[str]]:
    """The user messages' indexes and texts, oldest first (the last message when none is a
    user's, as ``last_user_text`` reads it)."""
    indexes = [i for i, m in enumerate(messages) if m.role == "user"]
    if not indexes and messages:
        indexes = [len(messages) - 1]
    return indexes, [_text(messages[i].content) for i in indexes]


def system_text(messages: list[Message]) -> str:
    """The system (and developer) messages' text, joined: part of a derived session's name."""
    return "\n".join(_text(m.content) for m in messages if m.role in ("system", "developer"))


def last_user_text(messages: list[Message]) -> str:
    """The text the router classifies: the last user message's text parts."""
    for message in reversed(messages):
        if message.role == "user":
            return _text(message.content)
    return _text(messages[-1].content) if messages else ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.text for p in content if isinstance(p, ContentPart) and p.text)
    return ""


class ChatMessage(msgspec.Struct, forbid_unknown_fields=False):
    role: str
    content: str | None = None


class ChatChoice(msgspec.Struct, forbid_unknown_fields=False):
    index: int
    message: ChatMessage
    finish_reason: str | None = None


class Usage(msgspec.Struct, forbid_unknown_fields=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(msgspec.Struct, forbid_unknown_fields=False):
    """The upstream's OpenAI chat completion, passed on as it came (documented here)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


IntentName = Literal[
    "code_generation",
    "architecture_review",
    "refactoring",
    "debugging",
    "documentation",
    "security_audit",
    "general",
]


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=False):
    """A correction (``correct_intent``) and/or a rating of one routed request."""

    request_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    ]
    correct_intent: IntentName | None = None
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class FeedbackResponse(msgspec.Struct):
    request_id: str
    stored: bool
    trace: str  # "pending" (attached with the next MLflow flush) or "untraced"


class OverrideBody(msgspec.Struct, forbid_unknown_fields=False):
    """A team override (PUT /admin/overrides)."""

    scope: Literal["org", "repo", "user"]
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    policy: dict[str, list[str]] | None = None
    pin: str | None = None
    forbid_deployments: list[str] | None = None
    forbid_providers: list[str] | None = None
    sensitive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class OverrideList(msgspec.Struct):
    data: list[dict[str, Any]]


class ClientKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new client key (POST /admin/keys); limits left out are unlimited."""

    team: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    budget_day_usd: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    budget_month_usd: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    rpm: Annotated[int, msgspec.Meta(ge=1, le=10**9)] | None = None
    tpm: Annotated[int, msgspec.Meta(ge=1, le=10**9)] | None = None
    over_budget: Literal["downgrade", "refuse"] | None = None


class ClientKeyList(msgspec.Struct):
    data: list[dict[str, Any]]
