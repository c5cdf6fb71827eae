"""No key ever leaks: the provider keys the service holds, the admin key, the client keys and
keys that clients put in their prompts never appear in the service's log (at DEBUG, litellm's
too), in any response (errors included, even when the upstream echoes the key it received),
in /metrics, in any table and column of the decision log, or anywhere in MLflow (its database
and artifacts, traces included).

One service (client keys on) over the fake fleet is driven through every path: route, chat,
fallbacks through litellm (Anthropic) and the httpx fast path, upstream errors that echo the
request's credentials and messages, streams, the admin API with wrong and right keys, client
keys wrong and right, feedback. Then everything it wrote is searched for every secret.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from tests.conftest import MlflowStoreMaker
from tests.eventually import eventually
from tests.fakes.provider_fleet import Echo, FakeProvider
from tests.integration.fleet_service import fake_fleet, fleet_config
from tests.integration.service_process import running_service

# Keys in several shapes: two the secret detector knows (sk-ant-, sk-proj-) and two it cannot
# recognise, so that only exact scrubbing keeps them out.
PROVIDER_KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + secrets.token_hex(24),
    "OPENAI_API_KEY": "sk-proj-" + secrets.token_hex(24),
    "CLOUDFLARE_API_KEY": "cf" + secrets.token_hex(20),
    "TOGETHER_API_KEY": secrets.token_hex(32),
}
ADMIN_KEY = "adm" + secrets.token_hex(20)
WRONG_ADMIN_KEY = "adm" + secrets.token_hex(20)
WRONG_CLIENT_KEYS = ("ir-" + secrets.token_hex(20), "sk-" + secrets.token_hex(24))
#: Secrets clients put in their prompts and comments: the detector redacts them.
IN_PROMPTS = {
    "aws_access_key_id": "AKIA"
    + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
    "github_token": "ghp_" + secrets.token_hex(18),
    "llm_api_key": "sk-proj-" + secrets.token_hex(20),
}


#: Loaded by the service's interpreter at start (sitecustomize): every logger at DEBUG,
#: litellm's own too (they otherwise stay at INFO whatever $LITELLM_LOG says).
DEBUG_LOGGING = """
import logging
logging.basicConfig(level=logging.DEBUG)
for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpcore", "intent_router", "mlflow", "litestar"):
    logging.getLogger(name).setLevel(logging.DEBUG)
"""


@dataclass
class Run:
    """What the exercise produced, to be searched."""

    tmp: Path
    fakes: dict[str, FakeProvider]
    client_key: str = ""
    responses: list[httpx.Response] = field(default_factory=list)
    metrics: str = ""

    @property
    def secrets(self) -> dict[str, str]:
        """Every secret by a name for the failure message. A new kind of key: add it here."""
        found = {f"${name}": value for name, value in PROVIDER_KEYS.items()}
        found |= {
            "admin key": ADMIN_KEY,
            "wrong admin key": WRONG_ADMIN_KEY,
            "client key": self.client_key,
        }
        found |= {f"wrong client key {i}": key for i, key in enumerate(WRONG_CLIENT_KEYS)}
        found |= {f"prompt {kind}": value for kind, value in IN_PROMPTS.items()}
        assert all(found.values())
        return found


def leaks(blob: bytes | str, secrets_by_name: dict[str, str]) -> list[str]:
    """The secrets (or a 16-character piece of one's middle: a truncated echo) in ``blob``."""
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    found = []
    for name, secret in secrets_by_name.items():
        middle = secret[len(secret) // 2 - 8 : len(secret) // 2 + 8]
        if secret.encode() in data or middle.encode() in data:
            found.append(name)
    return found


def _every_value(url: str) -> Iterator[tuple[str, str]]:
    """(table.column, text) for every value of every table of a database."""
    engine = sqlalchemy.create_engine(url)
    try:
        metadata = sqlalchemy.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(sqlalchemy.select(table)).mappings():
                    for column, value in row.items():
                        if value is not None:
                            yield (
                                f"{table.name}.{column}",
                                value if isinstance(value, str) else repr(value),
                            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, fresh_mlflow_store: MlflowStoreMaker
) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("leaks")
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(DEBUG_LOGGING)
    env = {
        **PROVIDER_KEYS,
        "INTENT_ROUTER_ADMIN_KEY": ADMIN_KEY,
        "LITELLM_LOG": "DEBUG",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(tmp / "site"), os.environ.get("PYTHONPATH")])
        ),
        "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{tmp / 'decisions.db'}",
        "MLFLOW_TRACKING_URI": fresh_mlflow_store(tmp / "mlflow.db", tmp),
    }  # the service runs in tmp
    extra = {
        "storage": {"store_prompts": True},
        "tracking": {
            "flush_interval_s": 0.5,
            "trace_sample_rate": 1.0,
            "max_traces_per_minute": 10_000,
        },
        "governance": {"client_keys": True},
    }
    with fake_fleet() as fakes:
        config = fleet_config(tmp, fakes, extra=extra)
        result = Run(tmp, fakes)
        with running_service(
            config, env=env, ready=True, log=tmp / "service.log", log_level="debug", cwd=tmp
        ) as url:
            _exercise(url, result)
        # Stopped: the decision writer drained and MLflow's last flush done.
        yield result


def _exercise(url: str, run: Run) -> None:
    fakes = run.fakes
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, timeout=30) as http:

        def call(method: str, path: str, status: int, **kwargs) -> httpx.Response:
            response = http.request(method, path, **kwargs)
            assert response.status_code == status, (
                method,
                path,
                response.status_code,
                response.text[:300],
            )
            run.responses.append(response)
            return response

        # Admin: wrong, missing and right keys; a client key is made (its one answer is not searched).
        call("GET", "/admin/overrides", 401, headers={"authorization": f"Bearer {WRONG_ADMIN_KEY}"})
        call("GET", "/admin/overrides", 401, headers={"authorization": WRONG_ADMIN_KEY})
        call("GET", "/admin/overrides", 401)
        created = http.post(
            "/admin/keys", json={"team": "acme", "name": "leak-test"}, headers=admin
        )
        assert created.status_code == 201, created.text
        run.client_key = created.json()["key"]
        call(
            "PUT",
            "/admin/overrides",
            200,
            headers=admin,
            json={"scope": "repo", "subject": "acme/api", "forbid_providers": ["openai"]},
        )
        call("GET", "/admin/overrides", 200, headers=admin)
        call("GET", "/admin/keys", 200, headers=admin)

        # Client keys: wrong ones are refused; the right one is used from here on.
        for wrong in WRONG_CLIENT_KEYS:
            call(
                "POST",
                "/v1/route",
                401,
                json={"prompt": "hi"},
                headers={"authorization": f"Bearer {wrong}"},
            )
            call(
                "POST",
                "/v1/chat/completions",
                401,
                headers={"x-api-key": wrong},
                json={"messages": [{"role": "user", "content": "hi"}]},
            )
        http.headers["authorization"] = f"Bearer {run.client_key}"

        def chat(status: int, text: str = "hello there", **body) -> httpx.Response:
            return call(
                "POST",
                "/v1/chat/completions",
                status,
                json={"messages": [{"role": "user", "content": text}], **body},
            )

        call("POST", "/v1/route", 200, json={"prompt": "rename getUser to fetchUser"})
        routed = call(
            "POST",
            "/v1/route",
            200,
            json={"prompt": "is this leaked? " + " ".join(IN_PROMPTS.values())},
        )
        assert sorted(routed.json()["secrets_found"]) == sorted(IN_PROMPTS)
        ok = chat(200)
        assert ok.headers["x-intent-router-deployment"] == "kimi-k2.6"

        # Fallbacks after upstream errors that echo the key and the messages they received:
        fakes["claude"].script(Echo(529))  # litellm (Anthropic) -> the httpx fast path
        assert chat(200, model="claude-sonnet-4").headers["x-intent-router-deployment"] == "gpt-4o"
        fakes["together"].script(Echo(500))  # the fast path -> litellm
        assert (
            chat(200, model="kimi-k2.6-together").headers["x-intent-router-deployment"]
            == "claude-sonnet-4"
        )
        fakes["kimi"].script(Echo(429))  # the fast path -> the fast path
        assert (
            chat(200, model="kimi-k2.6").headers["x-intent-router-deployment"]
            == "kimi-k2.6-together"
        )
        # ... and errors that come back to the client as they came (401, 400) or exhaust the chain (503).
        fakes["gpt"].script(Echo(401))
        chat(401, model="gpt-4o")
        fakes["claude"].script(Echo(401))
        chat(401, model="claude-sonnet-4")
        fakes["gpt"].script(Echo(400))
        chat(400, model="gpt-4o")
        fakes["claude"].script(Echo(500))
        fakes["gpt"].script(Echo(503))
        failed = chat(503, model="claude-sonnet-4")
        assert [a["deployment"] for a in failed.json()["error"]["attempts"]] == [
            "claude-sonnet-4",
            "gpt-4o",
        ]
        # A prompt with secrets goes to the local tier only, which fails echoing it.
        fakes["ollama"].script(
            Echo(500)
        )  # not retryable on Ollama (oom, timeout): comes back as it came
        chat(500, text="deploy with " + " ".join(IN_PROMPTS.values()))

        # Streams: straight, and after a failed first deployment (fast path -> litellm).
        stream = chat(200, stream=True, stream_options={"include_usage": True})
        assert b"data: [DONE]" in stream.content
        fakes["gpt"].script(Echo(500))
        fallback_stream = chat(200, model="gpt-4o", stream=True)
        assert fallback_stream.headers["x-intent-router-deployment"] == "claude-sonnet-4"
        fakes["kimi"].script(Echo(401))
        chat(401, stream=True)

        # Overrides by repo (openai forbidden) and feedback with a secret in its comment.
        call("POST", "/v1/route", 200, json={"prompt": "fix it", "metadata": {"repo": "acme/api"}})
        call(
            "POST",
            "/v1/feedback",
            200,
            json={
                "request_id": ok.headers["x-request-id"],
                "correct_intent": "debugging",
                "rating": 2,
                "comment": f"it printed my key {IN_PROMPTS['github_token']} back",
            },
        )

        run.metrics = call("GET", "/metrics", 200).text
        _wait_for_mlflow(run)


def _wait_for_mlflow(run: Run) -> None:
    """Until every decision is logged and traced and the feedback attached (the tracker flushes
    every 0.5 s). Requests refused for their client key leave no decision."""
    expected = sum(
        1
        for r in run.responses
        if r.request.url.path in ("/v1/route", "/v1/chat/completions")
        and not (r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key")
    )
    engine = sqlalchemy.create_engine(f"sqlite:///{run.tmp / 'decisions.db'}")

    def state() -> tuple[object, ...]:
        with engine.connect() as connection:
            return tuple(
                connection.execute(
                    sqlalchemy.text(
                        "SELECT count(*), count(trace_id), "
                        "(SELECT value FROM tracking_state WHERE key = 'mlflow.feedback_watermark') "
                        "FROM decisions"
                    )
                ).one()
            )

    try:
        eventually(
            state,
            lambda seen: seen == (expected, expected, "1"),
            timeout_s=90,
            interval_s=0.25,
            what=f"(decisions, traced, feedback watermark) == ({expected}, {expected}, '1')",
        )
    finally:
        engine.dispose()


# --- the searches -------------------------------------------------------------------------------


def test_the_keys_were_live(run: Run) -> None:
    """The search means something: each fake saw its provider key, and the stores hold the
    echoed errors (scrubbed) that the searches below look at."""
    seen = {
        name: " ".join(json.dumps(r.headers) for r in fake.requests)
        for name, fake in run.fakes.items()
    }
    for fake, variable in (
        ("kimi", "CLOUDFLARE_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("claude", "ANTHROPIC_API_KEY"),
        ("gpt", "OPENAI_API_KEY"),
    ):
        assert PROVIDER_KEYS[variable] in seen[fake], fake
    log = (run.tmp / "service.log").read_text(errors="replace")
    assert "LiteLLM:DEBUG" in log and "DEBUG - " in log, "the log is not at DEBUG"
    decisions = " ".join(text for _, text in _every_value(f"sqlite:///{run.tmp / 'decisions.db'}"))
    assert "Incorrect API key provided" in decisions  # the echoed errors were stored
    mlflow = " ".join(text for _, text in _every_value(f"sqlite:///{run.tmp / 'mlflow.db'}"))
    assert "Incorrect API key provided" in mlflow  # ... and traced
    engine = sqlalchemy.create_engine(f"sqlite:///{run.tmp / 'mlflow.db'}")
    with engine.connect() as connection:

        def count(sql: str) -> int:
            return int(connection.execute(sqlalchemy.text(sql)).scalar() or 0)

        assert (
            count("SELECT count(*) FROM trace_info") >= 15
            and count("SELECT count(*) FROM spans") > 15
        )
        assert count("SELECT count(*) FROM assessments") >= 2  # the feedback, comment as rationale
        assert count("SELECT count(*) FROM runs") == 1
        locations = connection.execute(
            sqlalchemy.text("SELECT artifact_location FROM experiments")
        ).scalars()
        assert all(str(run.tmp) in location for location in locations)  # searched below
    engine.dispose()


def test_no_provider_receives_the_admin_or_a_client_key(run: Run) -> None:
    theirs = {k: v for k, v in run.secrets.items() if k.startswith(("admin", "wrong", "client"))}
    for name, fake in run.fakes.items():
        for request in fake.requests:
            assert not leaks(json.dumps(request.headers) + json.dumps(request.body), theirs), name
    for name in ("kimi", "together", "claude", "gpt"):  # prompts with secrets stay local
        for request in run.fakes[name].requests:
            assert not leaks(
                json.dumps(request.body),
                {k: v for k, v in run.secrets.items() if k.startswith("prompt")},
            ), name


def test_no_response_holds_a_key(run: Run) -> None:
    for response in run.responses:
        blob = json.dumps(dict(response.headers)) + response.text
        assert not leaks(blob, run.secrets), (
            response.request.url.path,
            response.status_code,
            blob[:500],
        )


def test_metrics_hold_no_key(run: Run) -> None:
    assert "intent_router_requests_total" in run.metrics
    assert not leaks(run.metrics, run.secrets)


def test_the_service_log_holds_no_key(run: Run) -> None:
    log = (run.tmp / "service.log").read_bytes()
    assert not leaks(log, run.secrets), log.decode(errors="replace")[-3000:]


def test_no_table_or_column_of_the_decision_log_holds_a_key(run: Run) -> None:
    for where, text in _every_value(f"sqlite:///{run.tmp / 'decisions.db'}"):
        assert not leaks(text, run.secrets), (where, text[:500])
    raw = b"".join(p.read_bytes() for p in run.tmp.glob("decisions.db*"))
    assert not leaks(raw, run.secrets)


def test_mlflow_holds_no_key(run: Run) -> None:
    for where, text in _every_value(f"sqlite:///{run.tmp / 'mlflow.db'}"):
        assert not leaks(text, run.secrets), (where, text[:500])
    files = [p for p in run.tmp.glob("mlflow.db*")] + [
        p for p in (run.tmp / "mlruns").rglob("*") if p.is_file()
    ]
    for path in files:
        assert not leaks(path.read_bytes(), run.secrets), path
