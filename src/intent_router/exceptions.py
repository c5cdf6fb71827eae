"""The exception hierarchy of intent-router.

RouterError
├── ConfigError                 the config file is missing or invalid (names the field)
├── ModelError                  the ONNX model or its metadata cannot be used
│   └── ModelContractError      metadata and graph disagree (labels, inputs, outputs)
├── AuthenticationError         no valid client key while client keys are on (HTTP 401)
├── RateLimitedError            a client key is over its RPM or TPM (HTTP 429, Retry-After)
│   └── BudgetExceededError     ... or over its budget and may not downgrade (HTTP 429)
├── InvalidRequestError         the caller sent something we cannot route (HTTP 400)
│   ├── UnknownModelError       no deployment by that name (HTTP 404, model_not_found)
│   ├── UnknownRequestError     feedback for an unknown request id (HTTP 404)
│   └── ForbiddenDeploymentError  an override forbids what the request needs (HTTP 403)
├── ProviderError               a provider call failed (status, kind, Retry-After); the
│   │                           deployment's retry_on decides whether the chain goes on
│   ├── MissingKeyError         the deployment's key variable is unset (skipped)
│   └── FatalProviderError      returned to the caller as it is, ending the chain (an upstream
│                               400, 401, 403, 404 the deployment's retry rules do not retry)
├── AllProvidersFailed          every deployment of the chain failed (HTTP 503)
│   └── LocalOnlyFailed         a sensitive request's local tier failed: failed closed
├── ProviderClientBug           our provider client failed, not the provider (HTTP 500)
├── CountersUnavailable         the shared counters (Redis) did not answer (HTTP 503)
├── StorageUnavailable          the database did not answer (HTTP 503, storage_unavailable)
└── TokenizerUnavailable        litellm's bundled cl100k_base is missing or not the real one
"""

from __future__ import annotations

from intent_router.types import Attempt, ProviderErrorKind


class RouterError(Exception):
    """Base class of every error raised by intent-router."""


class ConfigError(RouterError):
    """The configuration is missing or invalid; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ModelError(RouterError):
    """The intent model or its metadata cannot be loaded or used."""


class ModelContractError(ModelError):
    """The ONNX graph and its metadata do not honour the model contract."""


class AuthenticationError(RouterError):
    """Client keys are on and the request carries no valid, unrevoked key (HTTP 401)."""


class RateLimitedError(RouterError):
    """A client key is over one of its limits; retrying after ``retry_after_s`` may succeed
    (HTTP 429 with Retry-After). ``code`` is OpenAI's error code for it."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExceededError(RateLimitedError):
    """A client key's day or month budget cannot cover the request, and it may not be
    downgraded; ``retry_after_s`` is when the budget's period ends (HTTP 429)."""

    code = "budget_exceeded"


class InvalidRequestError(RouterError):
    """The request cannot be routed as sent."""


class UnknownModelError(InvalidRequestError):
    """The request names a model that is neither ``auto`` nor a configured deployment."""


class ForbiddenDeploymentError(InvalidRequestError):
    """A team override forbids the requested deployment, or every deployment of the chain (HTTP 403)."""


class UnknownRequestError(InvalidRequestError):
    """Feedback for a request id the decision log does not know (HTTP 404)."""


class ProviderError(RouterError):
    """A call to a model provider failed.

    ``status`` is the HTTP status when there was one; ``kind`` says how it failed (see
    ``ProviderErrorKind``); ``retry_after_s`` the provider's Retry-After, if sent.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        kind: ProviderErrorKind = "http",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after_s = retry_after_s


class MissingKeyError(ProviderError):
    """The environment variable holding a deployment's key is not set: the chain skips it."""

    def __init__(self, deployment: str, variable: str) -> None:
        super().__init__(f"deployment {deployment!r} needs its key in ${variable}", kind="no_key")
        self.variable = variable


class FatalProviderError(ProviderError):
    """A provider failure that is returned to the caller as it is, ending the chain. Provider
    clients raise a plain ProviderError and the retry rules decide, for each deployment
    (``retry_on``), whether the next one is tried; the fallback walk raises this when they say
    stop (and a provider client, for a deployment it cannot call at all)."""


class AllProvidersFailed(RouterError):
    """Every deployment of the chain failed or was unavailable; ``attempts`` tells each (the
    fallback walk's ``Attempt`` values: this module sits below it and cannot name their type)."""

    def __init__(self, attempts: tuple[Attempt, ...], deadline_exceeded: bool = False) -> None:
        self.attempts = attempts
        self.deadline_exceeded = deadline_exceeded
        super().__init__(f"all {len(attempts)} attempts failed")


class LocalOnlyFailed(AllProvidersFailed):
    """A sensitive request (a secret in it, or a sensitive repo or user) that only the local
    tier may answer, and the local tier failed: it fails closed, never reaching a cloud."""

    def __init__(
        self,
        attempts: tuple[Attempt, ...],
        reasons: tuple[str, ...],
        deadline_exceeded: bool = False,
    ) -> None:
        super().__init__(attempts, deadline_exceeded)
        self.reasons = reasons


class ProviderClientBug(RouterError):
    """A provider client failed through no fault of the provider: a missing module, a wrong call
    signature (HTTP 500 ``internal_error``). It would fail the same way on every call, so it is
    neither retried on the next deployment nor counted towards the deployment's cooldown.

    ``bug`` names the underlying exception's type (and a missing module), never its message."""

    def __init__(self, deployment: str, bug: str) -> None:
        super().__init__(
            f"internal error in the provider client of deployment {deployment!r}: {bug}; "
            "not retried on another deployment"
        )
        self.deployment = deployment
        self.bug = bug


class CountersUnavailable(RouterError, RuntimeError):
    """The shared counters (Redis) cannot be reached or did not answer in time: limits cannot be
    enforced, so the request is refused (HTTP 503) rather than let through unmetered."""


class StorageUnavailable(RouterError, RuntimeError):
    """The database (decision log, overrides, client keys) cannot be reached or did not answer:
    feedback and the admin API answer 503 ``storage_unavailable``; routing goes on from each
    worker's last snapshot."""


class TokenizerUnavailable(RouterError, RuntimeError):
    """The token counter's encoding (cl100k_base, bundled with litellm) cannot be loaded: an
    installation problem, never fixed by downloading it."""
