"""settings.py: every ``INTENT_ROUTER_*`` variable is read by ``ServiceSettings.from_env()``, and
what ``python -m intent_router.service`` hands its workers reads back the same."""

from __future__ import annotations

import re
from pathlib import Path

from intent_router.config import DEFAULT_CONFIG
from intent_router.settings import ServiceSettings

SRC = Path(__file__).resolve().parents[2] / "src" / "intent_router"


def test_unset_or_empty_variables_give_the_defaults() -> None:
    assert ServiceSettings.from_env({}) == ServiceSettings()
    assert (
        ServiceSettings.from_env({"INTENT_ROUTER_DATABASE_URL": "", "INTENT_ROUTER_ADMIN_KEY": ""})
        == ServiceSettings()
    )
    assert ServiceSettings().config_path == DEFAULT_CONFIG and not ServiceSettings().tracker_process


def test_the_workers_read_back_what_the_parent_hands_them() -> None:
    settings = ServiceSettings(
        Path("/etc/router.yaml"),
        "postgresql://u:p@db/ir",
        "redis://cache:6379/0",
        "admin-secret",
        tracker_process=True,
        log_level="trace",
    )
    assert ServiceSettings.from_env(settings.to_env()) == settings
    assert settings.python_log_level == "DEBUG"


def test_no_other_module_reads_an_intent_router_variable() -> None:
    readers = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if re.search(
            r"environ(\.get)?[\[(]\s*[\"']INTENT_ROUTER_|getenv\(\s*[\"']INTENT_ROUTER_",
            path.read_text(),
        )
    ]
    assert readers == []
