"""Every ``INTENT_ROUTER_*`` environment variable, read in one place:
``ServiceSettings.from_env()``.

    INTENT_ROUTER_CONFIG        the router config file (default: the bundled one)
    INTENT_ROUTER_DATABASE_URL  overrides ``storage.database_url`` (it may hold a password)
    INTENT_ROUTER_REDIS_URL     overrides ``governance.redis_url`` (it may hold a password)
    INTENT_ROUTER_ADMIN_KEY     the admin API's bearer key; unset: the admin API is off (404)
    INTENT_ROUTER_TRACKER       ``process``: the MLflow tracker runs as a process of its own, so
                                workers do not track (set by ``python -m intent_router.service``)
    INTENT_ROUTER_LOG_LEVEL     the workers' root log level (set from ``--log-level``)

Other modules receive a ``ServiceSettings`` (or one of its fields) and read no ``INTENT_ROUTER_*``
variable themselves. Third-party variables (provider keys, ``PROMETHEUS_MULTIPROC_DIR``,
``MLFLOW_*``) stay with the modules that use them.
``python -m intent_router.service`` hands its settings to the uvicorn workers, which are
processes of their own, through ``ServiceSettings.to_env()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from intent_router.config import DEFAULT_CONFIG

CONFIG_ENV = "INTENT_ROUTER_CONFIG"
DATABASE_URL_ENV = "INTENT_ROUTER_DATABASE_URL"
REDIS_URL_ENV = "INTENT_ROUTER_REDIS_URL"
ADMIN_KEY_ENV = "INTENT_ROUTER_ADMIN_KEY"
TRACKER_ENV = "INTENT_ROUTER_TRACKER"
LOG_LEVEL_ENV = "INTENT_ROUTER_LOG_LEVEL"


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The deployment's settings from the environment (the config file holds the rest)."""

    config_path: Path = DEFAULT_CONFIG
    """The router config file."""
    database_url: str | None = None
    """Replaces ``storage.database_url`` when set."""
    redis_url: str | None = None
    """Replaces ``governance.redis_url`` when set."""
    admin_key: str | None = None
    """The admin API's bearer key; None: the admin API answers 404."""
    tracker_process: bool = False
    """The MLflow tracker is a process of its own: workers leave tracking to it."""
    log_level: str = "info"
    """uvicorn's level names (``trace`` is Python's DEBUG)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """The settings in ``environ`` (default: this process's environment); empty is unset."""
        env = os.environ if environ is None else environ
        return cls(
            config_path=Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG),
            database_url=env.get(DATABASE_URL_ENV) or None,
            redis_url=env.get(REDIS_URL_ENV) or None,
            admin_key=env.get(ADMIN_KEY_ENV) or None,
            tracker_process=env.get(TRACKER_ENV) == "process",
            log_level=env.get(LOG_LEVEL_ENV) or "info",
        )

    def to_env(self) -> dict[str, str]:
        """The variables that give a worker process these settings (secrets included: they
        stay in the environment they came from)."""
        env = {CONFIG_ENV: str(self.config_path), LOG_LEVEL_ENV: self.log_level}
        optional = {
            DATABASE_URL_ENV: self.database_url,
            REDIS_URL_ENV: self.redis_url,
            ADMIN_KEY_ENV: self.admin_key,
            TRACKER_ENV: "process" if self.tracker_process else None,
        }
        env.update({name: value for name, value in optional.items() if value})
        return env

    @property
    def python_log_level(self) -> str:
        """``log_level`` as Python's logging names it."""
        return self.log_level.upper().replace("TRACE", "DEBUG")
