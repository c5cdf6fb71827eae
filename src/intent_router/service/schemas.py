"""Wire schemas (msgspec) of the service's endpoints."""

from __future__ import annotations

from typing import Any

import msgspec


class ContentPart(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    text: str | None = None


class Message(msgspec.Struct, forbid_unknown_fields=False):
    role: str
    content: str | list[ContentPart] | None = None


class RouteMetadata(msgspec.Struct, forbid_unknown_fields=False):
    repo: str | None = None
    user: str | None = None
    sensitive: bool = False


class RouteRequest(msgspec.Struct, forbid_unknown_fields=False):
    """Either OpenAI-style ``messages`` or a bare ``prompt``."""

    messages: list[Message] | None = None
    prompt: str | None = None
    model: str = "auto"
    metadata: RouteMetadata | None = None


class ChatRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The OpenAI chat-completions request fields the router passes on."""

    messages: list[Message]
    model: str = "auto"
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    user: str | None = None
    metadata: RouteMetadata | None = None

    def upstream_body(self) -> dict[str, Any]:
        """What goes to the provider: messages and the set sampling fields."""
        body: dict[str, Any] = {"messages": msgspec.to_builtins(self.messages)}
        for name in ("temperature", "top_p", "max_tokens", "stop", "n", "user"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


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


class ModelCard(msgspec.Struct):
    id: str
    object: str = "model"
    owned_by: str = "intent-router"


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
