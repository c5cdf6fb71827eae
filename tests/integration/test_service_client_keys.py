"""Client keys, rate limits and budgets through two real service processes that share the real
PostgreSQL (keys) and Redis (counters), over the fake fleet."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from intent_router.tokens import count_tokens
from tests import loopback
from tests.conftest import fresh_postgres_schema
from tests.eventually import eventually
from tests.fakes.provider_fleet import FakeProvider, Reply
from tests.integration.fleet_service import KEYS, fake_fleet, fleet_config
from tests.integration.service_process import free_port, running_service, running_services, wait_for

ADMIN = {"Authorization": "Bearer admin-keys-test"}
KEYS_POLL_S = 0.5  # how often each worker reloads the client keys
REDIS_URL = "redis://127.0.0.1:6379/0"
# Prices chosen so each test's arithmetic is easy: gpt-4o is dear, the primary tier is cheap.
PRICES = {
    "kimi-k2.6": {"input_cost_per_mtok": 0.1, "output_cost_per_mtok": 0.1, "fallbacks": []},
    "kimi-k2.6-together": {
        "input_cost_per_mtok": 0.1,
        "output_cost_per_mtok": 0.1,
        "fallbacks": [],
    },
    "gpt-4o": {"input_cost_per_mtok": 1000, "output_cost_per_mtok": 3000, "fallbacks": []},
}
PROMPT = "write a python_function() now"  # 6 tokens (cl100k_base); 4 words to the fake
# One gpt-4o request with max_tokens 3: held at (6 x 1000 + 3 x 3000) / 1e6 = $0.015 and
# charged (4 x 1000 + 3 x 3000) / 1e6 = $0.013 (the fake answers "ok from fake": 3 words).
ESTIMATE_USD, ACTUAL_USD = 0.015, 0.013


class Services:
    def __init__(self, urls: list[str], database_url: str, fakes: dict[str, FakeProvider]) -> None:
        self.urls = urls
        self.database_url = database_url
        self.fakes = fakes

    def new_key(self, team: str = "acme", **limits: Any) -> tuple[str, dict]:
        answer = loopback.post(
            f"{self.urls[0]}/admin/keys", json={"team": team, "name": "ci", **limits}, headers=ADMIN
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        key = created.pop("key")
        self.wait_until_known(key)
        return key, created

    def wait_until_known(self, key: str) -> None:
        """Until every service accepts ``key`` (each polls the keys every 0.5 s); /v1/models
        authenticates without counting against any limit."""
        deadline = time.monotonic() + 30  # a condition: on a quiet machine within a second
        for url in self.urls:
            eventually(
                partial(httpx.get, f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}),
                lambda answer: answer.status_code == 200,
                timeout_s=max(0.0, deadline - time.monotonic()),
                what=f"{url} accepting the new key",
            )


def _chat(
    url: str, key: str | None, model: str = "gpt-4o", text: str = PROMPT, **extra: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return loopback.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def _route(url: str, key: str | None, **headers: str) -> httpx.Response:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return loopback.post(f"{url}/v1/route", json={"prompt": PROMPT}, headers=headers, timeout=30)


def _decision(services: Services, request_id: str) -> dict[str, Any]:
    """The decision-log row of a request (written in the background: polled for a while)."""
    engine = sqlalchemy.create_engine(services.database_url)

    def row() -> Any:
        with engine.connect() as connection:
            return (
                connection.execute(
                    sqlalchemy.text("SELECT * FROM decisions WHERE request_id = :r"),
                    {"r": request_id},
                )
                .mappings()
                .first()
            )

    try:
        return dict(
            eventually(
                row,
                lambda found: found is not None,
                timeout_s=5,
                interval_s=0.1,
                what=f"a decision for {request_id}",
            )
        )
    finally:
        engine.dispose()


def _away_from_a_minute_boundary(margin_s: float = 8.0) -> None:
    """Rate windows are UTC minutes: start a burst where it cannot straddle two of them."""
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.05)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_schema())
        fakes = stack.enter_context(fake_fleet())
        config = fleet_config(
            tmp_path_factory.mktemp("keys"),
            fakes,
            deployments=PRICES,
            litellm=False,
            extra={
                "governance": {"client_keys": True, "redis_prefix": f"test-{uuid.uuid4().hex[:8]}:"}
            },
        )
        env = {
            **KEYS,
            "INTENT_ROUTER_DATABASE_URL": database_url,
            "INTENT_ROUTER_REDIS_URL": REDIS_URL,
            "INTENT_ROUTER_ADMIN_KEY": "admin-keys-test",
        }
        urls = stack.enter_context(running_services(2, config, env=env))
        yield Services(urls, database_url, fakes)


def test_requests_without_a_valid_key_get_401_in_openai_format(services: Services) -> None:
    a, b = services.urls
    for answer in (
        _chat(a, None),
        _chat(a, "ir-not-a-key"),
        _route(b, None),
        loopback.get(f"{b}/v1/models"),
        loopback.post(
            f"{a}/v1/chat/completions",
            headers={"Authorization": "Basic abc"},
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ):
        assert answer.status_code == 401, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert answer.headers["www-authenticate"] == "Bearer"
    # Health, readiness and metrics stay open to the load balancer and Prometheus.
    assert (
        loopback.get(f"{a}/healthz").status_code == 200
        and loopback.get(f"{a}/metrics").status_code == 200
    )
    assert (
        'intent_router_governance_total{event="unauthenticated"}'
        in loopback.get(f"{a}/metrics").text
    )


def test_a_key_works_on_every_worker_until_it_is_revoked(services: Services) -> None:
    a, b = services.urls
    key, created = services.new_key()
    assert key.startswith("ir-") and created["prefix"] == key[:10] and created["revoked_at"] is None
    assert _route(b, key).status_code == 200  # b learned of it from a poll (new_key waits for that)
    answer = loopback.post(f"{a}/v1/route", json={"prompt": PROMPT}, headers={"x-api-key": key})
    assert answer.status_code == 200  # Anthropic-style header too

    assert httpx.delete(f"{a}/admin/keys/{created['id']}", headers=ADMIN).json() == {
        "revoked": True
    }
    took, slowest = wait_for(lambda: _route(b, key).status_code != 200)
    # Polled every 0.5 s: within a second, plus how late b answered meanwhile (a loaded CI runner).
    assert took < 2 * KEYS_POLL_S + 2 * slowest + 0.25, (took, slowest)
    assert _route(b, key).status_code == 401 and _route(a, key).status_code == 401
    assert httpx.delete(f"{a}/admin/keys/{created['id']}", headers=ADMIN).status_code == 404
    listed = loopback.get(f"{a}/admin/keys", params={"team": "acme"}, headers=ADMIN).json()["data"]
    assert any(k["id"] == created["id"] and k["revoked_at"] for k in listed)


def test_keys_are_stored_hashed_and_never_listed(services: Services) -> None:
    key, created = services.new_key(team="vault")
    listed = loopback.get(f"{services.urls[1]}/admin/keys", headers=ADMIN).text
    assert key not in listed and created["id"] in listed
    engine = sqlalchemy.create_engine(services.database_url)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT * FROM client_keys")).all()
    engine.dispose()
    stored = repr(rows)
    assert created["id"] in stored and key not in stored and key[10:] not in stored


def test_admin_key_endpoints_need_the_admin_key(services: Services) -> None:
    a = services.urls[0]
    for call in (
        lambda h: loopback.post(f"{a}/admin/keys", json={"team": "x"}, headers=h),
        lambda h: loopback.get(f"{a}/admin/keys", headers=h),
        lambda h: loopback.get(f"{a}/admin/spend", params={"team": "x"}, headers=h),
    ):
        assert call({}).status_code == 401
        assert call({"Authorization": "Bearer wrong"}).status_code == 401
    key, _ = services.new_key()
    assert (
        loopback.get(f"{a}/admin/keys", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    bad = loopback.post(f"{a}/admin/keys", json={"team": "x", "rpm": 0}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"


def test_rpm_is_shared_by_both_services_and_answers_429_with_retry_after(
    services: Services,
) -> None:
    a, b = services.urls
    key, _ = services.new_key(rpm=5)
    _away_from_a_minute_boundary()
    answers = [_route((a, b)[i % 2], key) for i in range(8)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_tpm_counts_the_conversation(services: Services) -> None:
    a, b = services.urls
    key, _ = services.new_key(tpm=100)
    _away_from_a_minute_boundary()
    fifty = "word " * 49
    assert count_tokens(fifty) == 50 and count_tokens("word " * 200) == 201  # cl100k_base
    too_big = _chat(a, key, text="word " * 200)  # never fits a 100-token minute
    assert (
        too_big.status_code == 429 and "more than client key" in too_big.json()["error"]["message"]
    )
    assert _chat(b, key, text=fifty, max_tokens=3).status_code == 200  # 50 tokens
    assert _chat(a, key, text=fifty, max_tokens=3).status_code == 200  # 100
    third = _chat(b, key, text=fifty, max_tokens=3)
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limit_exceeded"


def test_concurrent_spend_on_two_services_never_exceeds_the_budget_and_is_exact(
    services: Services,
) -> None:
    a, b = services.urls
    assert count_tokens(PROMPT) == 6  # the hold's arithmetic above
    budget = 10 * ESTIMATE_USD  # room for 10 holds at once; 11 real answers at most
    key, created = services.new_key(team="exact", budget_day_usd=budget, over_budget="refuse")
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: _chat((a, b)[i % 2], key, max_tokens=3), range(40)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert all(
        r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded" for r in refused
    )
    assert all(0 < int(r.headers["retry-after"]) <= 86_400 for r in refused)
    # Every request that could fit got in (holds are $0.015), and none beyond the budget did.
    assert 10 <= len(ok) <= 11
    charged = sum(float(r.headers["x-intent-router-cost-usd"]) for r in ok)
    assert charged == pytest.approx(len(ok) * ACTUAL_USD, abs=1e-9)
    # A request's spend is settled as its answer ends, which the client may see first: wait for
    # the last settlement (a hold still counted, or one settled twice, would never match).
    spend = eventually(
        lambda: loopback.get(f"{b}/admin/keys/{created['id']}", headers=ADMIN).json()["spend"],
        lambda seen: seen["day_usd"] == pytest.approx(charged, abs=1e-9),
        timeout_s=30,
        what=f"the key's spend settled at {charged}",
    )
    assert spend["day_usd"] <= budget
    assert spend["month_usd"] == spend["day_usd"]
    team = loopback.get(f"{a}/admin/spend", params={"team": "exact"}, headers=ADMIN).json()
    assert team["day_usd"] == pytest.approx(charged, abs=1e-9) and len(team["keys"]) == 1


def test_over_budget_downgrades_to_the_primary_tier_and_says_so(services: Services) -> None:
    a, _ = services.urls
    key, created = services.new_key(
        team="thrifty", budget_day_usd=0.001
    )  # the config's default: downgrade
    answer = _chat(a, key, max_tokens=3)  # gpt-4o would hold $0.015
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-intent-router-budget"] == "downgraded"
    assert answer.headers["x-intent-router-deployment"] == "kimi-k2.6"
    within = _chat(a, key, model="kimi-k2.6", max_tokens=3)
    assert within.status_code == 200 and "x-intent-router-budget" not in within.headers
    assert 'event="downgraded"' in loopback.get(f"{a}/metrics").text
    # The decision log says who asked and that the budget moved the request.
    row = _decision(services, answer.headers["x-request-id"])
    assert (row["org"], row["client_key_id"], row["budget"]) == (
        "thrifty",
        created["id"],
        "downgraded",
    )
    assert row["deployment"] == "kimi-k2.6"
    assert _decision(services, within.headers["x-request-id"])["budget"] is None


def test_over_budget_refuses_when_the_key_says_so(services: Services) -> None:
    a, _ = services.urls
    key, _ = services.new_key(team="strict", budget_day_usd=0.001, over_budget="refuse")
    answer = _chat(a, key, max_tokens=3)
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "budget_exceeded"
    assert "day budget ($0.001)" in answer.json()["error"]["message"]
    assert 0 < int(answer.headers["retry-after"]) <= 86_400


def test_the_keys_team_is_its_organisation_whatever_the_headers_claim(services: Services) -> None:
    a, b = services.urls
    put = httpx.put(
        f"{a}/admin/overrides",
        json={"scope": "org", "subject": "pinned-team", "pin": "kimi-k2.6-together"},
        headers=ADMIN,
    )
    assert put.status_code == 200
    key, _ = services.new_key(team="pinned-team")
    routed = _route(b, key, **{"X-Org": "someone-else"}).json()
    assert routed["override"] == ["org:pinned-team"] and routed["chain"][0] == "kimi-k2.6-together"


def test_cached_input_is_charged_and_logged_at_the_cache_price(services: Services) -> None:
    a, b = services.urls
    key, created = services.new_key(team="cached")
    services.fakes["gpt"].script(Reply(cached_tokens=4000))
    answer = _chat(a, key, max_tokens=3)
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    uncached = usage["prompt_tokens"] - 4000
    # gpt-4o: input at the configured $1000, cached input at litellm's map price ($1.25)
    expected = (uncached * 1000 + 4000 * 1.25 + usage["completion_tokens"] * 3000) / 1e6
    assert float(answer.headers["x-intent-router-cost-usd"]) == pytest.approx(expected, abs=1e-9)
    # settled as the answer ends, which the client may see first (micro-dollars: abs 1e-6)
    wait_for(
        lambda: (
            loopback.get(f"{b}/admin/keys/{created['id']}", headers=ADMIN).json()["spend"][
                "day_usd"
            ]
            == pytest.approx(expected, abs=1e-6)
        ),
        timeout_s=10,
    )
    row = _decision(services, answer.headers["x-request-id"])
    assert (row["cached_tokens"], row["cache_write_tokens"], row["prompt_tokens"]) == (
        4000,
        0,
        usage["prompt_tokens"],
    )
    assert row["cached_input_cost_usd"] == pytest.approx(4000 * 1.25 / 1e6)
    assert row["input_cost_usd"] == pytest.approx((uncached * 1000 + 4000 * 1.25) / 1e6)
    assert row["cost_usd"] == pytest.approx(expected)


def test_streams_are_charged_when_they_end(services: Services) -> None:
    a, b = services.urls
    key, created = services.new_key(team="streams")
    with_usage = _chat(a, key, max_tokens=3, stream=True, stream_options={"include_usage": True})
    assert with_usage.status_code == 200 and with_usage.text.rstrip().endswith("data: [DONE]")
    usage = next(
        json.loads(line[6:])["usage"]
        for line in with_usage.text.splitlines()
        if line.startswith("data: {") and '"usage"' in line
    )
    streamed = (usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 3000) / 1e6
    spend = loopback.get(f"{b}/admin/keys/{created['id']}", headers=ADMIN).json()["spend"]
    assert spend["day_usd"] == pytest.approx(streamed, abs=1e-9)  # the usage chunk's real cost
    without_usage = _chat(b, key, max_tokens=3, stream=True)
    assert without_usage.status_code == 200
    spend = loopback.get(f"{a}/admin/keys/{created['id']}", headers=ADMIN).json()["spend"]
    # No usage reported: the held estimate is charged, an upper bound of the real cost.
    assert spend["day_usd"] == pytest.approx(streamed + ESTIMATE_USD, abs=1e-9)


@pytest.mark.parametrize(
    "team", ["acme'; DROP TABLE client_keys; --", "équipe/données 🚀", "t" * 256, "100%_of_\\teams"]
)
def test_hostile_team_names_are_stored_and_read_back_as_given(
    services: Services, team: str
) -> None:
    a, b = services.urls
    _key, created = services.new_key(team=team)
    assert created["team"] == team
    listed = loopback.get(f"{b}/admin/keys", params={"team": team}, headers=ADMIN).json()["data"]
    assert [k["id"] for k in listed] == [created["id"]]  # no LIKE wildcards, no injection
    spend = loopback.get(f"{a}/admin/spend", params={"team": team}, headers=ADMIN).json()
    assert spend["team"] == team and spend["day_usd"] == 0


def test_overlong_or_empty_teams_are_refused(services: Services) -> None:
    a = services.urls[0]
    for team in ("t" * 257, "", "\x00\x01"):
        answer = loopback.post(f"{a}/admin/keys", json={"team": team}, headers=ADMIN)
        assert answer.status_code == 400, (team, answer.text)


def test_unreachable_redis_refuses_with_503_instead_of_letting_requests_through(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        config = fleet_config(
            tmp_path,
            fakes,
            deployments=PRICES,
            extra={"governance": {"client_keys": True}},
            litellm=False,
        )
        env = {
            **KEYS,
            "INTENT_ROUTER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "INTENT_ROUTER_ADMIN_KEY": "admin-keys-test",
        }
        url = stack.enter_context(running_service(config, env=env))
        created = loopback.post(
            f"{url}/admin/keys", json={"team": "acme", "rpm": 10}, headers=ADMIN
        ).json()
        started = time.monotonic()
        answer = _chat(url, created["key"], max_tokens=3)
        assert time.monotonic() - started < 5  # bounded by the counters' timeouts, never a hang
        assert (
            answer.status_code == 503 and answer.json()["error"]["code"] == "counters_unavailable"
        )
        assert answer.headers["retry-after"] == "1"
        assert not fakes["gpt"].requests  # nothing was sent unmetered
