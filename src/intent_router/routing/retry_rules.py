"""What to do after a provider attempt failed: try the next deployment, or give up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from intent_router.config import Deployment
from intent_router.exceptions import ProviderError


class FailureKind(Enum):
    """How an attempt failed, as far as the fallback walk cares."""

    RATE_LIMITED = "429"
    OVERLOADED = "529"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "oom"
    CONTEXT_WINDOW = "context_window"
    CLIENT_ERROR = "client_error"
    UNREACHABLE = "unreachable"  # refused, DNS failure: the request never left
    MALFORMED_RESPONSE = "malformed_response"  # a success that breaks the contract or the limits


#: Failures retried on every deployment, whatever its ``retry_on``: the upstream never
#: answered, or answered something no caller can use, so nothing is gained by giving up.
ALWAYS_RETRIED = frozenset({FailureKind.UNREACHABLE, FailureKind.MALFORMED_RESPONSE})


class Verdict(Enum):
    NEXT_DEPLOYMENT = "next"
    NEXT_WITH_LARGER_CONTEXT = "next_larger_context"
    RETURN_TO_CALLER = "return"


@dataclass(frozen=True)
class Failure:
    """One failed attempt: its kind, the HTTP status if any, and Retry-After in seconds."""

    kind: FailureKind
    status: int | None = None
    retry_after_s: float | None = None


def failure_from_status(
    status: int, body_text: str = "", retry_after_s: float | None = None
) -> Failure:
    """Classify an HTTP error status (and its body, for context-window and OOM errors)."""
    text = body_text.lower()
    if status == 429:
        return Failure(FailureKind.RATE_LIMITED, status, retry_after_s)
    if status == 529:
        return Failure(FailureKind.OVERLOADED, status, retry_after_s)
    if status >= 500:
        kind = FailureKind.OUT_OF_MEMORY if _mentions_memory(text) else FailureKind.SERVER_ERROR
        return Failure(kind, status, retry_after_s)
    if status in (400, 413) and _mentions_context_window(text):
        return Failure(FailureKind.CONTEXT_WINDOW, status)
    return Failure(FailureKind.CLIENT_ERROR, status)


def _mentions_memory(text: str) -> bool:
    """Ollama: "model requires more system memory (...) than is available", CUDA OOM, ..."""
    markers = (
        "out of memory",
        "requires more system memory",
        "insufficient memory",
        "cudamalloc failed",
    )
    return any(marker in text for marker in markers)


def _mentions_context_window(text: str) -> bool:
    markers = (
        "context length",
        "context window",
        "maximum context",
        "too many tokens",
        "prompt is too long",
    )
    return any(marker in text for marker in markers)


def verdict(failure: Failure, deployment: Deployment) -> Verdict:
    """Retryable per the deployment's ``retry_on`` (or unreachable, or malformed: always) ->
    next; context window -> next that fits; anything else goes back to the caller as it is."""
    if failure.kind is FailureKind.CONTEXT_WINDOW:
        return Verdict.NEXT_WITH_LARGER_CONTEXT
    if failure.kind in ALWAYS_RETRIED or failure.kind.value in deployment.retry_on:
        return Verdict.NEXT_DEPLOYMENT
    return Verdict.RETURN_TO_CALLER


def failure_from_error(error: ProviderError) -> Failure:
    """Classify a provider error raised by a provider client."""
    if error.kind == "timeout":
        return Failure(FailureKind.TIMEOUT)
    if error.kind == "unreachable":
        return Failure(FailureKind.UNREACHABLE)
    if error.kind == "malformed_response":
        return Failure(FailureKind.MALFORMED_RESPONSE)
    if error.status is not None:
        return failure_from_status(error.status, str(error), error.retry_after_s)
    # A connection broken mid-answer behaves like a server error.
    return Failure(FailureKind.SERVER_ERROR, None, error.retry_after_s)
