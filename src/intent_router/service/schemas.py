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


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


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
