"""What a newcomer meets first, over real sockets: the startup summary, /readyz saying why
nothing can answer, model cards as OpenAI's SDK expects them, the OpenAPI page without a CDN,
and the fake fleet's own command with the example config pointing at it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests import loopback
from tests.conftest import REPO_ROOT
from tests.eventually import eventually
from tests.fakes.hostile_faults import closed_port
from tests.integration.service_process import free_port, running_service


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    """The bundled config with no key set and nothing listening for its local deployment."""
    tmp = tmp_path_factory.mktemp("newcomer")
    closed = closed_port()
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["deployments"]["qwen-32b-local"]["api_base"] = f"http://127.0.0.1:{closed}/v1"
    config = tmp / "router.yaml"
    config.write_text(yaml.safe_dump(raw))
    log = tmp / "service.log"
    with running_service(config, log=log) as url:
        yield url, log, closed


def _settled_readiness(url: str) -> httpx.Response:
    """/readyz once litellm has loaded (it answers 503 warming for a few seconds after start)."""
    settled: httpx.Response = eventually(
        lambda: loopback.get(f"{url}/readyz"),
        lambda probe: probe.json()["status"] != "warming",
        timeout_s=60,
        what="/readyz past warming",
    )
    return settled


def test_the_startup_summary_names_config_model_keys_and_stores(
    keyless: tuple[str, Path, int],
) -> None:
    _, log, _closed = keyless
    text = log.read_text()
    summary = [
        line.removeprefix("intent-router: ")
        for line in text.splitlines()
        if line.startswith("intent-router: ")
    ]
    assert summary[0].startswith("config /") and summary[0].endswith("router.yaml")
    assert re.match(
        r"model \S+, confidence threshold 0\.\d+ \(the model's recommendation\)", summary[1]
    )
    assert summary[2] == "deployments usable: qwen-32b-local"
    assert (
        "$ANTHROPIC_API_KEY (claude-sonnet-4)" in summary[3]
        and "$OPENAI_API_KEY (gpt-4o)" in summary[3]
    )
    assert any(line.startswith("decision log sqlite:///") for line in summary)
    assert any(line.startswith("MLflow sqlite:///") for line in summary)


def test_readyz_is_degraded_and_says_why(keyless: tuple[str, Path, int]) -> None:
    url, _, closed = keyless
    probe = _settled_readiness(url)
    assert probe.status_code == 200  # degraded, not down: /v1/route still works
    body = probe.json()
    assert body["status"] == "degraded" and body["usable_deployments"] == []
    assert "$CLOUDFLARE_API_KEY (kimi-k2.6)" in body["reasons"][0]
    assert body["reasons"][1] == f"qwen-32b-local: nothing listens at 127.0.0.1:{closed}"
    assert loopback.post(f"{url}/v1/route", json={"prompt": "fix this"}).status_code == 200


def test_models_have_created_and_owned_by_and_can_be_retrieved(
    keyless: tuple[str, Path, int],
) -> None:
    url, _, _ = keyless
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    listed = {m.id: m for m in client.models.list()}
    assert (
        listed["auto"].owned_by == "intent-router"
        and listed["claude-sonnet-4"].owned_by == "anthropic"
    )
    assert all(isinstance(m.created, int) and m.created > 1_600_000_000 for m in listed.values())
    one = client.models.retrieve("kimi-k2.6")
    assert (one.id, one.owned_by, one.created) == (
        "kimi-k2.6",
        "cloudflare",
        listed["kimi-k2.6"].created,
    )
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-5-ultra")
    assert raised.value.code == "model_not_found"
    assert raised.value.response.headers["x-request-id"]


def test_the_openapi_document_has_a_real_title_and_version(keyless: tuple[str, Path, int]) -> None:
    url, _, _ = keyless
    info = loopback.get(f"{url}/schema/openapi.json").json()["info"]
    assert info["title"] == "intent-router" and info["version"] == version("intent-router")


def test_the_schema_page_loads_nothing_from_elsewhere(keyless: tuple[str, Path, int]) -> None:
    url, _, _ = keyless
    page = loopback.get(f"{url}/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    linked = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert linked and all(link.startswith("/schema/") for link in linked)
    for link in linked:
        asset = loopback.get(f"{url}{link}")
        assert asset.status_code == 200 and len(asset.content) > 100_000
        assert asset.headers["content-type"].split(";")[0] in ("text/css", "text/javascript")
    assert "SwaggerUIBundle" in page.text and "/schema/openapi.json" in page.text
    assert loopback.get(f"{url}/schema/swagger-ui/..%2Fpasswd").status_code == 404


@pytest.fixture(scope="module")
def fake_fleet_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make fake-fleet PORT=p` (its command) and the service on src/intent_router/defaults/examples/fake-fleet.yaml,
    whose api_base lines are pointed at port p."""
    port = free_port()
    fleet = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve_fleet", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert f"127.0.0.1:{port}" in (fleet.stdout.readline() if fleet.stdout else "")
        example = (REPO_ROOT / "src/intent_router/defaults/examples/fake-fleet.yaml").read_text()
        assert example.count("api_base: http://127.0.0.1:9100/v1") == 4
        config = tmp_path_factory.mktemp("fleet") / "fake-fleet.yaml"
        config.write_text(example.replace("127.0.0.1:9100", f"127.0.0.1:{port}"))
        with running_service(config, ready=True) as url:
            yield url
    finally:
        fleet.terminate()
        fleet.wait(timeout=10)


def test_the_fake_fleet_example_answers_without_any_key(fake_fleet_example: str) -> None:
    url = fake_fleet_example
    probe = loopback.get(f"{url}/readyz").json()
    assert probe["status"] == "ready" and len(probe["usable_deployments"]) == 4
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "why does this segfault?"}]
    )
    assert reply.headers["x-intent-router-deployment"] in ("claude-sonnet-4", "kimi-k2.6")
    assert reply.parse().choices[0].message.content == "ok from fake"
