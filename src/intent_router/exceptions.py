"""The exception hierarchy of intent-router.

    RouterError
    ├── ConfigError                 the config file is missing or invalid (names the field)
    ├── ModelError                  the ONNX model or its metadata cannot be used
    │   └── ModelContractError      metadata and graph disagree (labels, inputs, outputs)
    ├── InvalidRequestError         the caller sent something we cannot route (HTTP 400)
    └── ProviderError               a provider call failed
        ├── RetryableProviderError  worth trying the next deployment (429, 5xx, timeout)
        └── FatalProviderError      returned to the caller as it is (400, 401, 403, 404)
"""

from __future__ import annotations


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


class InvalidRequestError(RouterError):
    """The request cannot be routed as sent."""


class ProviderError(RouterError):
    """A call to a model provider failed."""


class RetryableProviderError(ProviderError):
    """A provider failure after which the next deployment of the chain may be tried."""


class FatalProviderError(ProviderError):
    """A provider failure that is returned to the caller as it is."""
