"""schemathesis against the service's own OpenAPI document, over real sockets.

Every generated request (valid and invalid) must get no 5xx and a response that matches the
documented status, content type and schema. The fleet answers chat requests, so the 200
schemas are checked too. Bounded: a fixed number of examples per operation, derandomized.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings

from intent_router.config import DEFAULT_CONFIG
from tests import loopback
from tests.fakes.provider_fleet import FakeProvider
from tests.integration.inprocess import provide_keys, serving_in_process

KEYS = {
    "CLOUDFLARE_API_KEY": "cf-fuzz",
    "ANTHROPIC_API_KEY": "ant-fuzz",
    "OPENAI_API_KEY": "oa-fuzz",
    "INTENT_ROUTER_ADMIN_KEY": "admin-fuzz",
}


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory):
    with FakeProvider("fleet") as fleet:
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        for deployment in raw["deployments"].values():
            deployment.update(api_base=f"{fleet.url}/v1", api_style="openai", timeout_s=2)
        raw["router"]["confidence_threshold"] = 0.0
        raw["tracking"]["enabled"] = False  # no MLflow tracker: the API's shape is tested
        path: Path = tmp_path_factory.mktemp("cfg") / "router.yaml"
        path.write_text(yaml.safe_dump(raw))
        with serving_in_process(path, env=KEYS) as url:
            yield url


OPERATIONS = [
    "GET /healthz",
    "GET /readyz",
    "GET /v1/models",
    "GET /v1/models/{model}",
    "GET /metrics",
    "POST /v1/route",
    "POST /v1/chat/completions",
    "POST /v1/feedback",
    "GET /admin/overrides",
    "PUT /admin/overrides",
    "DELETE /admin/overrides",
    "POST /admin/keys",
    "GET /admin/keys",
    "GET /admin/keys/{key_id}",
    "DELETE /admin/keys/{key_id}",
    "GET /admin/spend",
]


@pytest.fixture(scope="module")
def operations(service_url: str) -> dict:
    loaded = schemathesis.openapi.from_url(f"{service_url}/schema/openapi.json")
    found = {}
    for result in loaded.get_all_operations():
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


def test_the_document_lists_every_endpoint(operations: dict) -> None:
    assert set(operations) == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_documented_operation_conforms(
    label: str, operations: dict, service_url: str
) -> None:
    operation = operations[label]

    admin = label.split(" ", 1)[1].startswith("/admin/")
    headers = {"Authorization": "Bearer admin-fuzz"} if admin else None
    # An override naming a deployment the config lacks is refused (400), though the schema
    # cannot list the config's deployments: that one check does not apply to the admin API.
    excluded = [schemathesis.checks.positive_data_acceptance] if admin else None

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case) -> None:
        case.call_and_validate(base_url=service_url, headers=headers, excluded_checks=excluded)

    conforms()


def test_the_document_declares_the_error_format_and_the_stream(service_url: str) -> None:
    doc = loopback.get(f"{service_url}/schema/openapi.json").json()
    chat = doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "413", "503"} <= set(chat)
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    route = doc["paths"]["/v1/route"]["post"]["responses"]
    assert route["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
