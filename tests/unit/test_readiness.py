"""/readyz's verdict, the startup summary and the model cards, without a service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intent_router.config import parse_config
from intent_router.exceptions import UnknownModelError
from intent_router.service.model_cards import model_card, model_cards
from intent_router.service.readiness import hide_password, readiness, startup_summary

RAW: dict[str, Any] = {
    "deployments": {
        "cloud": {
            "model": "anthropic/claude-x",
            "tier": "primary",
            "api_key_env": "CLOUD_KEY",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
        },
        "local": {
            "model": "ollama/qwen",
            "tier": "local",
            "api_base": "http://127.0.0.1:11434/v1",
            "api_style": "openai",
            "input_cost_per_mtok": 0,
            "output_cost_per_mtok": 0,
        },
    },
    "policy": {"default": ["cloud", "local"]},
    "storage": {"database_url": "sqlite:///decisions.db"},
}
CONFIG = parse_config(RAW)
KEYS = {"CLOUD_KEY": "k"}


def always(_: str) -> bool:
    return True


def test_a_deployment_with_its_key_makes_the_service_ready() -> None:
    report = readiness(CONFIG, warming=False, available=always, environ=KEYS)
    assert (report.status, report.reasons, report.usable) == ("ready", (), ("cloud", "local"))
    assert report.http_status(strict=True) == 200


def test_no_key_and_no_local_server_is_degraded_with_both_reasons() -> None:
    report = readiness(CONFIG, False, always, {"local": "127.0.0.1:11434"}, environ={})
    assert report.status == "degraded" and report.usable == ()
    assert report.reasons == (
        "key variables not set: $CLOUD_KEY (cloud)",
        "local: nothing listens at 127.0.0.1:11434",
    )
    assert report.http_status(strict=False) == 200 and report.http_status(strict=True) == 503


def test_every_usable_deployment_cooling_down_is_degraded() -> None:
    report = readiness(CONFIG, False, lambda name: False, environ=KEYS)
    assert report.status == "degraded" and report.reasons == (
        "cooling down after failures: cloud, local",
    )


def test_one_reachable_deployment_is_enough() -> None:
    report = readiness(CONFIG, False, always, {}, environ={})
    assert report.status == "ready" and report.usable == ("local",)


def test_warming_is_503_whatever_else_holds() -> None:
    report = readiness(CONFIG, True, always, environ=KEYS)
    assert report.status == "warming" and report.http_status(strict=False) == 503


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "postgresql+psycopg://router:s3cret@db:5432/r",
            "postgresql+psycopg://router:***@db:5432/r",
        ),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("sqlite:///intent-router.db", "sqlite:///intent-router.db"),
    ],
)
def test_passwords_never_reach_the_summary(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_the_startup_summary_says_what_a_newcomer_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///runs.db")
    monkeypatch.delenv("INTENT_ROUTER_DATABASE_URL", raising=False)
    lines = startup_summary(Path("/etc/router.yaml"), CONFIG, "v1", 0.55, environ={})
    assert lines == [
        "config /etc/router.yaml",
        "model v1, confidence threshold 0.55 (the model's recommendation)",
        "deployments usable: local",
        "key variables not set (their deployments are skipped): $CLOUD_KEY (cloud)",
        "decision log sqlite:///decisions.db",
        "MLflow sqlite:///runs.db",
    ]
    configured = parse_config({**RAW, "router": {"confidence_threshold": 0.7}})
    assert (
        "confidence threshold 0.7 (from the config)"
        in startup_summary(Path("r.yaml"), configured, "v1", 0.55, {})[1]
    )


def test_model_cards_say_who_owns_each_model() -> None:
    cards = model_cards(CONFIG, created=1700000000)
    assert [(c.id, c.owned_by, c.created) for c in cards] == [
        ("auto", "intent-router", 1700000000),
        ("cloud", "anthropic", 1700000000),
        ("local", "ollama", 1700000000),
    ]
    assert model_card(CONFIG, 1, "intent-router").owned_by == "intent-router"
    by_upstream_id = model_card(CONFIG, 1, "anthropic/claude-x")  # chat accepts it: so does this
    assert (by_upstream_id.id, by_upstream_id.owned_by) == ("anthropic/claude-x", "anthropic")
    with pytest.raises(UnknownModelError, match="lists 'auto' and every deployment"):
        model_card(CONFIG, 1, "anthropic/claude-y")
