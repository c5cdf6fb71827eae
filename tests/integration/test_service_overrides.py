"""Team overrides through the admin API of two service processes sharing one database
(SQLite and the real PostgreSQL): precedence, propagation within a second, auth, hostile ids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests import loopback
from tests.conftest import fresh_postgres_schema
from tests.integration.service_process import (
    running_service,
    running_services,
    untracked_config,
    wait_for,
)

ADMIN = {"Authorization": "Bearer admin-secret-1"}
POLL_S = 0.5  # how often each worker reloads the overrides
DEBUG_PROMPT = "TypeError: Cannot read properties of undefined (reading 'map') in my React list"


def _route(url: str, prompt: str = DEBUG_PROMPT, **headers: str) -> dict:
    encoded = {k: v.encode() for k, v in headers.items()}  # UTF-8 on the wire
    return loopback.post(f"{url}/v1/route", json={"prompt": prompt}, headers=encoded).json()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def two_services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two services sharing one database (SQLite, then the real PostgreSQL), for the module:
    each test uses subjects of its own."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{tmp_path_factory.mktemp('overrides') / 'decisions.db'}"
        else:
            database_url = stack.enter_context(fresh_postgres_schema())
        env = {
            "INTENT_ROUTER_DATABASE_URL": database_url,
            "INTENT_ROUTER_ADMIN_KEY": "admin-secret-1",
        }
        config = untracked_config(tmp_path_factory.mktemp("config"))
        yield stack.enter_context(running_services(2, config, env=env))


def test_overrides_apply_by_precedence_and_reach_every_worker_within_a_second(two_services) -> None:
    a, b = two_services
    assert (
        _route(b, **{"X-Repo": "acme/api"})["chain"][0] == "claude-sonnet-4"
    )  # the config's policy
    puts = [
        {"scope": "org", "subject": "acme", "pin": "kimi-k2.6", "forbid_providers": ["openai"]},
        {
            "scope": "repo",
            "subject": "acme/api",
            "policy": {"debugging": ["gpt-4o", "claude-sonnet-4"]},
        },
        {"scope": "user", "subject": "ana", "pin": "claude-sonnet-4"},
    ]
    for body in puts:
        answer = httpx.put(f"{a}/admin/overrides", json=body, headers=ADMIN)
        assert answer.status_code == 200, answer.text
    # Wait for the last put (the user's) to be visible on b: the three puts are three versions.
    took, slowest = wait_for(lambda: bool(_route(b, **{"X-User": "ana"})["override"]))
    # Polled every 0.5 s: within a second, plus how late b answered meanwhile (a loaded CI runner).
    assert took < 2 * POLL_S + 2 * slowest + 0.25, (took, slowest)

    org_only = _route(b, **{"X-Org": "acme"})
    assert org_only["override"] == ["org:acme"] and org_only["chain"][0] == "kimi-k2.6"
    assert "gpt-4o" not in org_only["chain"]  # forbidden at the org level
    # The user's pin is the most specific preference; the org's ban still holds.
    everyone = _route(b, **{"X-Org": "acme", "X-Repo": "acme/api", "X-User": "ana"})
    assert everyone["override"] == ["user:ana", "repo:acme/api", "org:acme"]
    assert everyone["chain"][0] == "claude-sonnet-4" and "gpt-4o" not in everyone["chain"]
    # Without the user: the repo's policy for debugging, minus the org's ban... and the org pin
    # is less specific than the repo's policy only for preferences it does not set: pin wins.
    repo = _route(b, **{"X-Org": "acme", "X-Repo": "acme/api"})
    assert repo["chain"][0] == "kimi-k2.6" and "gpt-4o" not in repo["chain"]
    forbidden = loopback.post(
        f"{b}/v1/chat/completions",
        headers={"X-Org": "acme"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (
        forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "deployment_forbidden"
    )

    httpx.put(
        f"{a}/admin/overrides",
        headers=ADMIN,
        json={"scope": "repo", "subject": "acme/secret-sauce", "sensitive": True},
    )
    deleted = httpx.delete(
        f"{a}/admin/overrides", params={"scope": "org", "subject": "acme"}, headers=ADMIN
    )
    assert deleted.json() == {"deleted": True}
    # The delete and the last put are visible on b by the same poll.
    took, slowest = wait_for(lambda: _route(b, **{"X-Org": "acme"})["override"] == [])
    assert took < 2 * POLL_S + 2 * slowest + 0.25, (took, slowest)
    sensitive = _route(b, **{"X-Repo": "acme/secret-sauce"})
    assert sensitive["chain"] == ["qwen-32b-local"] and sensitive["sensitive"] is True
    listed = loopback.get(f"{b}/admin/overrides", headers=ADMIN).json()["data"]
    ours = ("acme", "acme/api", "ana", "acme/secret-sauce")  # the other test's subjects are its own
    mine = {(o["scope"], o["subject"]) for o in listed if o["subject"] in ours}
    assert mine == {("repo", "acme/api"), ("user", "ana"), ("repo", "acme/secret-sauce")}


def test_the_admin_api_needs_its_key_and_survives_hostile_ids(two_services) -> None:
    a, _ = two_services
    body = {"scope": "repo", "subject": "x"}
    assert httpx.put(f"{a}/admin/overrides", json=body).status_code == 401
    assert (
        httpx.put(
            f"{a}/admin/overrides", json=body, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert (
        loopback.get(
            f"{a}/admin/overrides", headers={"Authorization": "admin-secret-1"}
        ).status_code
        == 401
    )
    hostile = ["'; DROP TABLE overrides; --", "ünïcødé/репо/リポジトリ", "r" * 256, "a%20b?c=d&e"]
    for subject in hostile:
        answer = httpx.put(
            f"{a}/admin/overrides",
            headers=ADMIN,
            json={"scope": "repo", "subject": subject, "pin": "gpt-4o"},
        )
        assert answer.status_code == 200, subject
    too_long = httpx.put(
        f"{a}/admin/overrides", headers=ADMIN, json={"scope": "repo", "subject": "r" * 257}
    )
    assert too_long.status_code == 400
    unknown = httpx.put(
        f"{a}/admin/overrides",
        headers=ADMIN,
        json={"scope": "repo", "subject": "x", "pin": "gpt-9"},
    )
    assert unknown.status_code == 400 and "pin" in unknown.json()["error"]["message"]
    listed = {
        o["subject"] for o in loopback.get(f"{a}/admin/overrides", headers=ADMIN).json()["data"]
    }
    assert set(hostile) <= listed
    routed = _route(
        a, "add docs", **{"X-Repo": "ünïcødé/репо/リポジトリ"}
    )  # a UTF-8 header matches
    assert routed["override"] == ["repo:ünïcødé/репо/リポジトリ"] and routed["chain"][0] == "gpt-4o"
    assert (
        httpx.delete(
            f"{a}/admin/overrides", params={"scope": "repo", "subject": "nope"}, headers=ADMIN
        ).status_code
        == 404
    )


def test_without_an_admin_key_the_admin_api_is_off(tmp_path) -> None:
    env = {"INTENT_ROUTER_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    with running_service(untracked_config(tmp_path), env=env) as url:
        answer = loopback.get(
            f"{url}/admin/overrides", headers={"Authorization": "Bearer anything"}
        )
    assert (
        answer.status_code == 404 and "INTENT_ROUTER_ADMIN_KEY" in answer.json()["error"]["message"]
    )
