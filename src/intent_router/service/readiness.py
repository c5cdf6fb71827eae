"""Which deployments can answer now, as /readyz and the startup summary tell it. Pure but for
``KeylessProbe``: the environment, the cooldowns and the probe's findings are passed in."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from intent_router.config import Deployment, RouterConfig
from intent_router.mlflow_store import default_tracking_uri
from intent_router.types import ReadinessStatus


@dataclass(frozen=True)
class Usability:
    """Deployments whose key is set (or that need none), and the key variables missing."""

    usable: tuple[str, ...]
    missing_keys: dict[str, tuple[str, ...]]  # variable -> the deployments that need it

    def describe_missing(self) -> str:
        return ", ".join(f"${var} ({', '.join(names)})" for var, names in self.missing_keys.items())


def usability(config: RouterConfig, environ: Mapping[str, str] = os.environ) -> Usability:
    usable: list[str] = []
    missing: dict[str, list[str]] = {}
    for name, deployment in config.deployments.items():
        if deployment.api_key_env is None or environ.get(deployment.api_key_env):
            usable.append(name)
        else:
            missing.setdefault(deployment.api_key_env, []).append(name)
    return Usability(tuple(usable), {var: tuple(names) for var, names in missing.items()})


@dataclass(frozen=True)
class ReadinessReport:
    """``status``: ``ready``, ``warming`` (litellm still loading) or ``degraded`` (no
    deployment can answer a chat request: ``reasons`` say why)."""

    status: ReadinessStatus
    reasons: tuple[str, ...]
    usable: tuple[str, ...]

    def http_status(self, strict: bool) -> int:
        """503 while warming; degraded is 200 (the service still routes and answers /v1/route
        and tells each chat why it failed) unless ``router.strict_readiness`` asks for 503."""
        if self.status == "warming" or (self.status == "degraded" and strict):
            return 503
        return 200


def readiness(
    config: RouterConfig,
    warming: bool,
    available: Callable[[str], bool],
    unreachable: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ReadinessReport:
    """``available(name)``: False while the deployment cools down; ``unreachable``: keyless
    deployments nothing listens for (name -> host:port, from a KeylessProbe)."""
    unreachable = unreachable or {}
    found = usability(config, environ)
    serving = tuple(name for name in found.usable if available(name) and name not in unreachable)
    reasons: list[str] = []
    if not serving:
        if found.missing_keys:
            reasons.append(f"key variables not set: {found.describe_missing()}")
        reasons += [f"{name}: nothing listens at {where}" for name, where in unreachable.items()]
        cooling = [n for n in found.usable if n not in unreachable and not available(n)]
        if cooling:
            reasons.append(f"cooling down after failures: {', '.join(cooling)}")
        if not reasons:
            reasons.append("no deployment can answer")
    if warming:
        return ReadinessReport("warming", ("litellm is loading",), serving)
    return ReadinessReport("degraded" if reasons else "ready", tuple(reasons), serving)


def endpoint(deployment: Deployment) -> tuple[str, int] | None:
    """The host and port a deployment's ``api_base`` names, if it names one."""
    if not deployment.api_base:
        return None
    parts = urlsplit(deployment.api_base)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


class KeylessProbe:
    """Whether something listens for each deployment that needs no key (a local Ollama, a
    keyless proxy): a TCP connect, at most every ``ttl_s``. Deployments with keys are not
    probed: a key says the operator meant it, and a provider's host is no health check."""

    def __init__(self, config: RouterConfig, timeout_s: float = 0.5, ttl_s: float = 5.0) -> None:
        self._targets = {
            name: where
            for name, d in config.deployments.items()
            if d.api_key_env is None and (where := endpoint(d)) is not None
        }
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._checked_at = -float("inf")
        self._unreachable: dict[str, str] = {}

    async def unreachable(self) -> dict[str, str]:
        """Keyless deployments whose host:port refused or did not answer in time."""
        if time.monotonic() - self._checked_at >= self._ttl_s:
            names = list(self._targets)
            results = await asyncio.gather(*(self._listens(*self._targets[n]) for n in names))
            self._unreachable = {
                n: f"{self._targets[n][0]}:{self._targets[n][1]}"
                for n, ok in zip(names, results)
                if not ok
            }
            self._checked_at = time.monotonic()
        return self._unreachable

    async def _listens(self, host: str, port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self._timeout_s)
        except (TimeoutError, OSError):
            return False
        writer.close()
        return True


def hide_password(url: str) -> str:
    """A database or Redis URL as it may be logged: ``user:***@host``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def startup_summary(
    config_path: Path,
    config: RouterConfig,
    model_version: str,
    model_threshold: float,
    environ: Mapping[str, str] = os.environ,
    database_url: str | None = None,
) -> list[str]:
    """What a newcomer needs to know once the service starts: which config, which model, which
    deployments can answer (and which keys are missing), where decisions and MLflow runs go
    (``database_url``: ``ServiceSettings.database_url``)."""
    found = usability(config, environ)
    threshold = (
        f"{config.confidence_threshold} (from the config)"
        if config.confidence_threshold is not None
        else f"{model_threshold} (the model's recommendation)"
    )
    lines = [
        f"config {config_path}",
        f"model {model_version}, confidence threshold {threshold}",
        f"deployments usable: {', '.join(found.usable) or 'none'}",
    ]
    if found.missing_keys:
        lines.append(
            f"key variables not set (their deployments are skipped): {found.describe_missing()}"
        )
    if not found.usable:
        lines.append(
            "no deployment can answer chat requests: /readyz says degraded, /v1/route still works"
        )
    storage = config.storage
    lines.append(
        f"decision log {hide_password(storage.resolved_url(database_url))}"
        if storage.decision_log
        else "decision log off (storage.decision_log: false)"
    )
    tracking = config.tracking
    lines.append(
        f"MLflow {hide_password(tracking.mlflow_tracking_uri or default_tracking_uri())}"
        if tracking.enabled and storage.decision_log
        else "MLflow serving run off"
    )
    return lines
