"""Every error the service answers, over real sockets: OpenAI-format JSON with a request id and a
code, ``x-should-retry: false`` when retrying cannot help, a log line for each 5xx, failed chats
in the request metrics, and 503 ``storage_unavailable`` when the database is down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests import loopback
from tests.eventually import eventually
from tests.fakes.provider_fleet import FakeProvider, Status
from tests.integration.inprocess import provide_keys, serving_in_process
from tests.integration.service_process import free_port

ADMIN = {"Authorization": "Bearer admin-errors"}
MISSING_KEY = "INTENT_ROUTER_TEST_NEVER_SET_KEY"


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, {"A_KEY": "ka", "B_KEY": "kb"})


@dataclass
class Service:
    url: str
    log: Path
    a: FakeProvider
    b: FakeProvider
    client_key: str

    def chat(self, model: str = "auto", **extra: object) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "fix this bug"}], **extra}
        return loopback.post(
            f"{self.url}/v1/chat/completions",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {self.client_key}"},
        )

    def metrics(self) -> str:
        return loopback.get(f"{self.url}/metrics").text


def _config(path: Path, a: str, b: str, **storage: object) -> Path:
    raw = {
        "router": {
            "confidence_threshold": 0.0,
            "max_body_bytes": 2048,
            "cooldown": {"failures": 1000, "seconds": 1},
        },
        "deployments": {
            "a": {
                "model": "openai/a",
                "tier": "primary",
                "api_base": f"{a}/v1",
                "api_key_env": "A_KEY",
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 2,
                "fallbacks": ["b"],
            },
            "b": {
                "model": "openai/b",
                "tier": "fallback_1",
                "api_base": f"{b}/v1",
                "api_key_env": "B_KEY",
                "input_cost_per_mtok": 3,
                "output_cost_per_mtok": 4,
            },
            "keyless": {
                "model": "openai/c",
                "tier": "fallback_2",
                "api_base": f"{b}/v1",
                "api_key_env": MISSING_KEY,
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 1,
            },
        },
        "policy": {"default": ["a", "b"]},
        "governance": {"client_keys": True},
        "tracking": {"enabled": False},
        "storage": storage,
    }
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("errors")
    with FakeProvider("a") as a, FakeProvider("b") as b:
        config = _config(tmp / "router.yaml", a.url, b.url)
        env = {"A_KEY": "ka", "B_KEY": "kb", "INTENT_ROUTER_ADMIN_KEY": "admin-errors"}
        log = tmp / "service.log"
        with serving_in_process(config, env=env, log=log) as url:
            created = loopback.post(f"{url}/admin/keys", json={"team": "errors"}, headers=ADMIN)
            assert created.status_code == 201, created.text
            yield Service(url, log, a, b, created.json()["key"])


def _assert_error(response: httpx.Response, status: int, code: str, retry: bool) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    error = response.json()["error"]
    assert error["code"] == code and error["type"] and error["message"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert (response.headers.get("x-should-retry") != "false") is retry
    return error


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/completions", "/v1/embeddings", "/nope"])
def test_an_unknown_endpoint_gets_a_404_listing_the_supported_ones(
    service: Service, path: str
) -> None:
    error = _assert_error(
        loopback.post(f"{service.url}{path}", json={}), 404, "unknown_url", retry=False
    )
    assert f"POST {path}" in error["message"]
    assert "POST /v1/chat/completions" in error["message"] and "GET /v1/models" in error["message"]


def test_a_wrong_method_gets_a_405_naming_the_allowed_ones(service: Service) -> None:
    answer = loopback.get(f"{service.url}/v1/chat/completions")
    error = _assert_error(answer, 405, "method_not_allowed", retry=False)
    assert "POST" in error["message"] and "POST" in answer.headers["allow"]


def test_a_body_over_the_limit_gets_a_413_stating_the_limit(service: Service) -> None:
    body = b'{"prompt": "' + b"x" * 4000 + b'"}'
    answer = loopback.post(
        f"{service.url}/v1/route",
        content=body,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {service.client_key}",
        },
    )
    error = _assert_error(answer, 413, "request_too_large", retry=False)
    assert "2,048 bytes" in error["message"] and "router.max_body_bytes" in error["message"]


def test_a_missing_client_key_is_a_401_that_says_not_to_retry(service: Service) -> None:
    answer = loopback.post(f"{service.url}/v1/route", json={"prompt": "hi"})
    _assert_error(answer, 401, "invalid_api_key", retry=False)


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
def test_an_absurd_token_count_is_a_400_not_an_overflow(service: Service, field: str) -> None:
    # With client keys on, the budget hold multiplies this by prices: 10**400 overflowed a float.
    answer = service.chat(**{field: 10**400})
    error = _assert_error(answer, 400, "invalid_request", retry=False)
    assert error["param"] == field
    _assert_error(service.chat(**{field: 2**31}), 400, "invalid_request", retry=False)
    assert service.chat(**{field: 2**31 - 1}).status_code == 200  # the bound itself is fine


def test_a_chain_without_keys_is_a_503_that_says_not_to_retry(service: Service) -> None:
    error = _assert_error(service.chat("keyless"), 503, "all_providers_failed", retry=False)
    assert f"${MISSING_KEY}" in error["message"]
    assert [a["outcome"] for a in error["attempts"]] == ["skipped_no_key"]


def test_the_openai_sdk_does_not_retry_a_chain_without_keys(service: Service) -> None:
    def failed_503s() -> float:
        line = re.search(
            r'intent_router_requests_total\{endpoint="chat",intent="-",source="requested",'
            r'status="503"\} (\S+)',
            service.metrics(),
        )
        return float(line.group(1)) if line else 0.0

    before = failed_503s()
    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.client_key, max_retries=3)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(
            model="keyless", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.code == "all_providers_failed"
    assert failed_503s() == before + 1  # one request: the SDK read x-should-retry: false


def test_a_failed_chain_is_a_logged_retryable_503_counted_in_the_metrics(service: Service) -> None:
    _assert_error(service.chat(max_tokens=0), 400, "invalid_request", retry=False)
    service.a.script(Status(500, "a broke"))
    service.b.script(Status(502, "b broke"))
    answer = service.chat()
    error = _assert_error(answer, 503, "all_providers_failed", retry=True)
    assert [a["status"] for a in error["attempts"]] == [500, 502]
    rid = answer.headers["x-request-id"]
    text = service.metrics()
    assert re.search(
        r'intent_router_requests_total\{endpoint="chat",intent="\w+",source="model",status="503"\} 1',
        text,
    )
    assert re.search(
        r'intent_router_request_seconds_count\{endpoint="chat",status="503"\} [1-9]', text
    )
    assert (
        'intent_router_requests_total{endpoint="chat",intent="-",source="-",status="400"}' in text
    )
    _wait_for_log(service.log, rid)
    line = next(line for line in service.log.read_text().splitlines() if rid in line)
    assert "503 all_providers_failed" in line and "AllProvidersFailed" in line
    assert "a broke" not in line  # the type, never the text


def test_an_upstream_client_error_comes_back_with_a_code_and_no_retry(service: Service) -> None:
    service.a.script(Status(422, "unprocessable"))
    error = _assert_error(service.chat(), 422, "provider_error", retry=False)
    assert "unprocessable" in error["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/keys/ab%00cd",
        "/admin/keys/ab%0Acd",
        "/admin/keys?team=a%00b",
        "/admin/spend?team=%1B%5B31m",
        "/admin/keys/x%7F",
    ],
)
def test_control_characters_in_admin_ids_are_a_400(service: Service, path: str) -> None:
    _assert_error(
        loopback.get(f"{service.url}{path}", headers=ADMIN), 400, "invalid_request", retry=False
    )
    assert (
        httpx.delete(
            f"{service.url}/admin/overrides?scope=repo&subject=a%00b", headers=ADMIN
        ).status_code
        == 400
    )


def _wait_for_log(log: Path, needle: str) -> None:
    """The service logs through a queue: wait for the line, not for a fixed time."""
    eventually(
        lambda: needle in log.read_text(errors="replace"),
        timeout_s=10,
        interval_s=0.02,
        what=f"a log line with {needle}",
    )


@pytest.fixture(scope="module")
def storage_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A service whose database is a PostgreSQL URL on a port nobody listens on."""
    tmp = tmp_path_factory.mktemp("storage-down")
    with FakeProvider("a") as a:
        config = _config(tmp / "router.yaml", a.url, a.url)
        raw = yaml.safe_load(config.read_text())
        raw["governance"]["client_keys"] = False
        config.write_text(yaml.safe_dump(raw))
        down = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone?connect_timeout=2"
        env = {
            "A_KEY": "ka",
            "B_KEY": "kb",
            "INTENT_ROUTER_ADMIN_KEY": "admin-errors",
            "INTENT_ROUTER_DATABASE_URL": down,
        }
        log = tmp / "service.log"
        with serving_in_process(config, env=env, log=log) as url:
            yield url, log


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/feedback", {"request_id": "abc", "rating": 3}),
        ("GET", "/admin/keys", None),
        ("POST", "/admin/keys", {"team": "t"}),
        ("GET", "/admin/keys/k1", None),
        ("DELETE", "/admin/keys/k1", None),
        ("GET", "/admin/spend?team=t", None),
        ("GET", "/admin/overrides", None),
        ("PUT", "/admin/overrides", {"scope": "repo", "subject": "acme/api", "pin": "a"}),
        ("DELETE", "/admin/overrides?scope=repo&subject=acme/api", None),
    ],
)
def test_the_database_down_is_a_503_storage_unavailable(
    storage_down: tuple[str, Path], method: str, path: str, body: dict | None
) -> None:
    url, log = storage_down
    answer = loopback.request(method, f"{url}{path}", json=body, headers=ADMIN, timeout=30)
    error = _assert_error(answer, 503, "storage_unavailable", retry=True)
    assert answer.headers["retry-after"] == "1" and "nobody" not in error["message"]
    _wait_for_log(log, answer.headers["x-request-id"])


def test_routing_goes_on_with_the_database_down(storage_down: tuple[str, Path]) -> None:
    url, _ = storage_down
    assert loopback.post(f"{url}/v1/route", json={"prompt": "fix this bug"}).status_code == 200
