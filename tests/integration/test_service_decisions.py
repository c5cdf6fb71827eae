"""The decision log through the real service: one row per request, whatever happened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intent_router.decisions import DecisionStore, prompt_digest
from intent_router.decisions.store import attempts_of
from tests import loopback
from tests.conftest import MlflowStoreMaker
from tests.eventually import eventually
from tests.fakes.provider_fleet import Status
from tests.integration.fleet_service import KEYS, SharedFleets, fleet_service
from tests.integration.inprocess import provide_keys

NEVER_TRIPS = {"failures": 1000, "seconds": 60}  # a shared service: no count cooldown carries over

PROMPT = "rename getUser to fetchUser everywhere"


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFleets]:
    with SharedFleets(tmp_path_factory.mktemp("fleets"), in_process=True) as shared:
        yield shared


def _rows_of(database_url: str, request_ids: list[str], timeout_s: float = 30) -> list[dict]:
    """The decisions of ``request_ids`` (the log may hold other tests' too), once all are in."""
    store = DecisionStore(database_url)
    try:
        return eventually(
            lambda: [r for r in store.after(0) if r["request_id"] in request_ids],
            lambda rows: {r["request_id"] for r in rows} == set(request_ids),
            timeout_s=timeout_s,
            what="a decision for every request",
        )
    finally:
        store.dispose()


def _rows(store: DecisionStore, expected: int, timeout_s: float = 10) -> list[dict]:
    return eventually(
        lambda: store.after(0),
        lambda rows: len(rows) >= expected,
        timeout_s=timeout_s,
        what=f"{expected} decisions",
    )


def test_every_request_leaves_exactly_one_decision(fleets: SharedFleets) -> None:
    s = fleets.get(router={"cooldown": NEVER_TRIPS}, litellm=False)
    assert s.database_url is not None
    routed = loopback.post(
        f"{s.url}/v1/route", json={"prompt": PROMPT, "metadata": {"repo": "acme/api"}}
    )
    ok = s.chat("auto", PROMPT, user="ana")
    for name in ("kimi", "together", "claude", "gpt"):
        s.fakes[name].script(Status(503, "down"))
    failed = s.chat("kimi-k2.6", PROMPT)
    with loopback.stream(
        "POST",
        f"{s.url}/v1/chat/completions",
        headers={"X-Repo": "acme/web"},
        json={
            "model": "auto",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}],
        },
    ) as streamed:
        list(streamed.iter_lines())
    ids = [
        routed.headers["x-request-id"],
        ok.headers["x-request-id"],
        failed.headers["x-request-id"],
        streamed.headers["x-request-id"],
    ]
    found = _rows_of(s.database_url, ids)
    rows = {r["request_id"]: r for r in found}
    assert len(found) == len(rows) == 4  # one each, no more
    route_row = rows[routed.headers["x-request-id"]]
    assert route_row["endpoint"] == "route" and route_row["intent"] == "refactoring"
    assert route_row["repo"] == "acme/api" and route_row["source"] == "model"
    assert route_row["prompt_sha256"] == prompt_digest(PROMPT) and route_row["prompt_text"] is None

    ok_row = rows[ok.headers["x-request-id"]]
    assert (ok_row["status"], ok_row["deployment"], ok_row["user"]) == ("ok", "kimi-k2.6", "ana")
    assert ok_row["cost_usd"] == float(ok.headers["x-intent-router-cost-usd"]) > 0
    assert ok_row["premium_cost_usd"] > ok_row["cost_usd"]  # Claude's prices, same tokens
    assert ok_row["prompt_tokens"] > 0 and ok_row["completion_tokens"] > 0

    failed_row = rows[failed.headers["x-request-id"]]
    assert failed.status_code == 503 and failed_row["status"] == "failed"
    assert [a.outcome for a in attempts_of(failed_row)] == ["failed"] * 4
    assert failed_row["source"] == "requested" and "AllProvidersFailed" in failed_row["error"]

    stream_row = rows[streamed.headers["x-request-id"]]
    assert stream_row["endpoint"] == "chat_stream" and stream_row["status"] == "ok"
    assert stream_row["repo"] == "acme/web" and stream_row["cost_usd"] > 0
    raw = Path(s.database_url.removeprefix("sqlite:///")).read_bytes()
    assert all(key.encode() not in raw for key in KEYS.values())
    assert PROMPT.encode() not in raw  # hashed by default


def test_full_prompt_text_only_when_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    with fleet_service(
        tmp_path,
        env={"INTENT_ROUTER_DATABASE_URL": url},
        litellm=False,
        extra={"storage": {"store_prompts": True}},
        in_process=True,
    ) as s:
        rid = loopback.post(f"{s.url}/v1/route", json={"prompt": PROMPT}).headers["x-request-id"]
        row = {r["request_id"]: r for r in _rows(DecisionStore(url), 1)}[rid]
    assert row["prompt_text"] == PROMPT


def test_feedback_is_stored_with_its_decision(fleets: SharedFleets) -> None:
    s = fleets.get(router={"cooldown": NEVER_TRIPS}, litellm=False)
    assert s.database_url is not None
    rid = s.chat("auto", PROMPT).headers["x-request-id"]
    # At once: the decision may still be queued for the writer; feedback waits for it.
    answer = loopback.post(
        f"{s.url}/v1/feedback",
        json={"request_id": rid, "correct_intent": "code_generation", "rating": 2},
    )
    assert answer.status_code == 200 and answer.json()["stored"] is True
    unknown = loopback.post(f"{s.url}/v1/feedback", json={"request_id": "nope", "rating": 3})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"
    empty = loopback.post(f"{s.url}/v1/feedback", json={"request_id": rid})
    assert empty.status_code == 400
    hostile = loopback.post(
        f"{s.url}/v1/feedback", json={"request_id": "x' OR '1'='1", "rating": 3}
    )
    assert hostile.status_code == 400 and hostile.json()["error"]["param"] == "request_id"
    stored = DecisionStore(s.database_url).feedback_for(rid)
    assert [(f["correct_intent"], f["rating"]) for f in stored] == [("code_generation", 2)]


def test_serving_decisions_reach_mlflow_as_a_run_traces_and_feedback(
    tmp_path: Path, fresh_mlflow_store: MlflowStoreMaker
) -> None:
    from mlflow import MlflowClient

    uri = fresh_mlflow_store(
        tmp_path / "mlflow.db", Path.cwd()
    )  # the service runs where pytest does
    tracking = {"flush_interval_s": 0.5, "trace_sample_rate": 1.0}
    with fleet_service(
        tmp_path, env={"MLFLOW_TRACKING_URI": uri}, extra={"tracking": tracking}, litellm=False
    ) as s:
        ids = [s.chat("auto", PROMPT).headers["x-request-id"] for _ in range(3)]
        loopback.post(
            f"{s.url}/v1/feedback", json={"request_id": ids[0], "correct_intent": "code_generation"}
        )
        client = MlflowClient(uri)

        def traces_with_feedback() -> list:
            experiment = client.get_experiment_by_name("routing-serving")
            return [] if experiment is None else client.search_traces([experiment.experiment_id])

        # Every trace with its tags (written after the trace itself), and the feedback; the
        # deadline is a condition's: seconds on a quiet machine.
        traces = eventually(
            traces_with_feedback,
            lambda found: (
                {t.info.tags.get("request_id") for t in found} == set(ids)
                and any(t.info.assessments for t in found)
            ),
            timeout_s=120,
            interval_s=0.25,
            what="every trace tagged, the feedback logged",
        )
        experiment = client.get_experiment_by_name("routing-serving")
    by_request = {t.info.tags["request_id"]: t for t in traces}
    assert set(by_request) == set(ids)
    assert [a.value for a in by_request[ids[0]].info.assessments if a.name == "correct_intent"] == [
        "code_generation"
    ]
    (run,) = client.search_runs([experiment.experiment_id])
    assert sum(m.value for m in client.get_metric_history(run.info.run_id, "chat_requests")) == 3


def test_an_unreachable_tracking_server_leaves_requests_fast_and_loses_no_decision(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    tracking = {
        "flush_interval_s": 0.2,
        "trace_sample_rate": 1.0,
        "mlflow_tracking_uri": "http://127.0.0.1:9",
    }
    with fleet_service(
        tmp_path,
        env={"INTENT_ROUTER_DATABASE_URL": url},
        extra={"tracking": tracking},
        litellm=False,
    ) as s:
        slowest = 0.0
        for _ in range(40):
            started = time.monotonic()
            assert s.chat("auto", PROMPT).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        # No request waited on MLflow: its client retries a refused port with backoff for tens
        # of seconds; a loaded machine makes a request take a second or two at most.
        assert slowest < 5.0
        rows = _rows(DecisionStore(url), 40)
    assert len(rows) == 40 and all(r["status"] == "ok" for r in rows)
