"""The service against a hostile upstream: every mode of ``tests/fakes/hostile_faults.py``,
plain and streaming, with a fallback behind the hostile deployment and without one.

One service and one fleet for the module: a hostile fake (it obeys ``[hostile:MODE]`` markers)
and a calm one (it ignores them). Small caps (64 KiB bodies and lines, 0.5 s idle, 1 s per
stream) keep each mode well under a second. For every request: the client's status and body,
exactly one decision row under its request id, and a log line for every 5xx.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from intent_router.decisions import DecisionStore
from intent_router.decisions.store import attempts_of
from intent_router.labels import INTENTS
from tests import loopback
from tests.eventually import eventually
from tests.fakes.hostile_faults import MODES, RETRY_AFTER, closed_port_url
from tests.fakes.provider_fleet import FakeProvider
from tests.integration.inprocess import serving_in_process

LIMITS = {
    "max_body_bytes": 65536,
    "max_sse_line_bytes": 65536,
    "stream_idle_s": 0.5,
    "stream_total_s": 1.0,
    "max_retry_after_s": 2.0,
}
ATTEMPT_TIMEOUT_S = (
    1.5  # what a plain trickle takes to fail; far above a first chunk's wait on a busy machine
)
#: Modes that fail once a stream has begun: no fallback any more, an error event ends it.
LATE = {"long_line_late", "trickle_late", "endless", "reset_late"}
#: How each mode's failed attempt reads (its error's beginning), plain and streaming.
TIMEOUTS = {"trickle", "trickle_late", "endless"}
HTTP_ERRORS = {
    "error_surrogate": "5xx: HTTP 500: ",
    "error_invalid_utf8": "5xx: HTTP 502: ",
    **{mode: "429: HTTP 429: slow down" for mode in RETRY_AFTER},
}
FATAL = {"error_surrogate_400"}  # a client error: back to the caller as it came, sanitised


def expected_error(mode: str) -> str:
    if mode in HTTP_ERRORS:
        return HTTP_ERRORS[mode]
    return "timeout" if mode in TIMEOUTS else "malformed_response: "


@dataclass
class Fleet:
    url: str
    hostile: FakeProvider
    calm: FakeProvider
    database: str
    log: Path


def _deployment(base: str, tier: str = "primary", **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/fake-model",
        "tier": tier,
        "api_base": base,
        "api_style": "openai",
        "timeout_s": ATTEMPT_TIMEOUT_S,
        "input_cost_per_mtok": 1.0,
        "output_cost_per_mtok": 2.0,
        "retry_on": ["429", "5xx", "timeout"],
        **extra,
    }


def _config(tmp: Path, hostile: str, calm: str, closed: str) -> Path:
    deployments = {
        "calm": _deployment(calm),
        "hostile": _deployment(hostile),
        "hostile-fb": _deployment(hostile, fallbacks=["calm"]),
        "classifier": _deployment(hostile),
        "local": _deployment(closed, "local", retry_on=["oom", "timeout"], fallbacks=["calm"]),
        "local-alone": _deployment(closed, "local", retry_on=["oom", "timeout"]),
    }
    for mode in (*RETRY_AFTER, "check"):  # a deployment each: their cooldowns touch no other test
        for stream in ("plain", "stream"):
            deployments[f"ra-{mode}-{stream}"] = _deployment(hostile)
            deployments[f"ra-{mode}-{stream}-fb"] = _deployment(hostile, fallbacks=["calm"])
    raw = {
        "router": {
            "confidence_threshold": 1.0,  # every `auto` request asks the (hostile) classifier
            "request_deadline_s": 10,
            "llm_classifier": {"deployment": "classifier", "timeout_s": 0.5},
            "cooldown": {"failures": 10**6, "seconds": 1},
            "upstream": LIMITS,
        },
        "deployments": deployments,
        "policy": {intent: ["calm"] for intent in INTENTS},
        "tracking": {"enabled": False},
    }
    path = tmp / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("hostile")
    database, log = f"sqlite:///{tmp / 'decisions.db'}", tmp / "service.log"
    with FakeProvider("hostile", hostile=True) as hostile, FakeProvider("calm") as calm:
        config = _config(tmp, f"{hostile.url}/v1", f"{calm.url}/v1", closed_port_url())
        with serving_in_process(
            config, env={"INTENT_ROUTER_DATABASE_URL": database}, log=log
        ) as url:
            yield Fleet(url, hostile, calm, database, log)


@pytest.fixture(scope="module")
def store(fleet: Fleet) -> Iterator[DecisionStore]:
    decisions = DecisionStore(fleet.database)
    yield decisions
    decisions.dispose()


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: Any  # the JSON body, or for a 200 stream the list of its events' data
    raw: str


def _prompt(mode: str | None) -> str:
    marker = f"[hostile:{mode}] " if mode else ""
    return f"{marker}say hi ({uuid.uuid4().hex})"


def chat(fleet: Fleet, model: str, prompt: str, stream: bool = False, **extra: Any) -> Answer:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        **extra,
    }
    with (
        httpx.Client(base_url=fleet.url, timeout=30, trust_env=False) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        raw = response.read().decode("utf-8")
    if response.status_code == 200 and stream:
        events = [line[len("data: ") :] for line in raw.split("\n") if line.startswith("data: ")]
        return Answer(
            200, response.headers, [e if e == "[DONE]" else json.loads(e) for e in events], raw
        )
    return Answer(response.status_code, response.headers, json.loads(raw), raw)


def _row(store: DecisionStore, request_id: str) -> dict[str, Any]:
    """The request's decision (request_id is unique: one row at most), once written."""
    row: dict[str, Any] = eventually(
        lambda: store.get(request_id),
        lambda got: got is not None,
        timeout_s=10,
        interval_s=0.02,
        what=f"a decision row for {request_id}",
    )
    return row


def _logged(fleet: Fleet, request_id: str) -> bool:
    return eventually(
        lambda: request_id in fleet.log.read_text(errors="replace"),
        timeout_s=10,
        interval_s=0.02,
        what=f"a log line for {request_id}",
    )


def _checked(fleet: Fleet, store: DecisionStore, answer: Answer) -> dict[str, Any]:
    """What holds for every answer: OpenAI-format errors, a request id, one decision row and
    a log line for a 5xx. Returns the row."""
    request_id = answer.headers.get("x-request-id")
    assert request_id, answer.raw[:500]
    assert answer.status in (200, 400, 503), answer.raw[:500]
    if answer.status != 200:
        assert set(answer.body["error"]) >= {"message", "type", "code", "param"}
    if answer.status >= 500:
        assert _logged(fleet, request_id), f"no log line for the {answer.status} of {request_id}"
    return _row(store, request_id)


def _assert_complete_stream(answer: Answer) -> None:
    assert answer.body[-1] == "[DONE]", answer.raw[-500:]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in answer.body[:-1] if c["choices"]
    )
    assert text == "ok from fake stream"


def _model(mode: str, stream: bool, fallback: bool) -> str:
    if mode in RETRY_AFTER:  # a deployment of its own: its cooldown touches no other request
        return f"ra-{mode}-{'stream' if stream else 'plain'}{'-fb' if fallback else ''}"
    return "hostile-fb" if fallback else "hostile"


def _assert_fell_back(
    answer: Answer, row: dict[str, Any], mode: str, model: str, stream: bool
) -> None:
    """``model`` failed in ``mode`` and the calm fallback answered, or the failure came after
    the stream had begun and an error event ended it."""
    if mode in FATAL:
        assert answer.status == 400 and answer.body["error"]["message"] == "HTTP 400: boom \ufffd"
        assert row["status"] == "failed"
        return
    assert answer.status == 200, answer.raw[:500]
    if stream and mode in LATE:
        assert answer.headers["x-intent-router-deployment"] == model, (
            attempts_of(row),
            answer.raw[:300],
        )
        _assert_error_event_after_the_first_chunk(answer, row)
        return
    attempts = attempts_of(row)
    assert answer.headers["x-intent-router-deployment"] == "calm"
    assert [(a.deployment, a.outcome) for a in attempts] == [(model, "failed"), ("calm", "ok")]
    assert attempts[0].error.startswith(expected_error(mode)), attempts[0].error
    if stream:
        _assert_complete_stream(answer)
    else:
        assert answer.body["choices"][0]["message"]["content"] == "ok from fake"
        assert float(answer.headers["x-intent-router-cost-usd"]) >= 0
    assert row["status"] == "ok" and row["cost_usd"] >= 0 and row["prompt_tokens"] >= 0


def _assert_failed_alone(
    answer: Answer, row: dict[str, Any], mode: str, model: str, stream: bool
) -> None:
    """``model`` failed in ``mode`` with nothing behind it: a 503 listing its attempt."""
    if mode in FATAL:
        assert answer.status == 400 and "\ufffd" in answer.body["error"]["message"]
        return
    if stream and mode in LATE:
        _assert_error_event_after_the_first_chunk(answer, row)
        return
    assert answer.status == 503, answer.raw[:500]
    error = answer.body["error"]
    assert error["type"] == "all_providers_failed"
    (attempt,) = error["attempts"]
    assert (attempt["deployment"], attempt["outcome"]) == (model, "failed")
    assert attempt["error"].startswith(expected_error(mode)), attempt
    assert row["status"] == "failed" and [a.deployment for a in attempts_of(row)] == [model]


def _assert_error_event_after_the_first_chunk(answer: Answer, row: dict[str, Any]) -> None:
    assert answer.status == 200, (attempts_of(row), answer.raw[:300])
    assert answer.body[0]["choices"][0]["delta"]["content"] in ("ok", "more"), (
        attempts_of(row),
        answer.raw[:300],
    )
    error = answer.body[-1]["error"]
    assert error["message"].startswith("upstream stream ") and error["type"] == "provider_error"
    assert (error["code"], error["param"]) == ("upstream_stream_failed", None)
    assert row["status"] == "failed" and row["error"] == error["message"]


def _route(fleet: Fleet, prompt: str) -> httpx.Response:
    return loopback.post(f"{fleet.url}/v1/route", json={"prompt": prompt}, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_a_hostile_mode_plain_and_streaming_with_and_without_a_fallback(
    fleet: Fleet,
    store: DecisionStore,
    mode: str,
) -> None:
    """The four requests (and one to /v1/route, whose LLM classifier is hostile too) go at
    once: they wait for the decision writer together."""
    variants = [(stream, fallback) for stream in (False, True) for fallback in (True, False)]
    with ThreadPoolExecutor(len(variants) + 1) as pool:
        pending = {
            v: pool.submit(chat, fleet, _model(mode, *v), _prompt(mode), v[0]) for v in variants
        }
        routed = pool.submit(_route, fleet, _prompt(mode))
        answers = {v: future.result() for v, future in pending.items()}
        route = routed.result()
    for (stream, fallback), answer in answers.items():
        model = _model(mode, stream, fallback)
        row = _checked(fleet, store, answer)
        check = _assert_fell_back if fallback else _assert_failed_alone
        check(answer, row, mode, model, stream)
    # The LLM classifier's answer, whatever it is, keeps the local prediction at no cost.
    assert route.status_code == 200, route.text[:500]
    body = route.json()
    assert body["source"] == "default" and body["escalation_error"]
    assert body["escalation_cost_usd"] == 0.0 and body["estimated_cost_usd"] >= 0
    _row(store, route.headers["x-request-id"])


def test_a_valid_but_unlabelled_classifier_answer_is_paid_for(fleet: Fleet) -> None:
    answer = _route(fleet, _prompt(None)).json()
    assert answer["source"] == "default" and answer["escalation_cost_usd"] > 0


# -- unreachable deployments (a refused connection) ---------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unreachable_local_deployment_falls_back_when_the_request_allows(
    fleet: Fleet,
    store: DecisionStore,
    stream: bool,
) -> None:
    answer = chat(fleet, "local", _prompt(None), stream)
    row = _checked(fleet, store, answer)
    assert answer.status == 200 and answer.headers["x-intent-router-deployment"] == "calm"
    first, second = attempts_of(row)
    assert (first.deployment, first.outcome, second.outcome) == ("local", "failed", "ok")
    assert first.error.startswith("unreachable: ") and "Connection refused" in first.error


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unreachable_local_deployment_without_fallbacks_is_a_503_naming_it(
    fleet: Fleet,
    store: DecisionStore,
    stream: bool,
) -> None:
    answer = chat(fleet, "local-alone", _prompt(None), stream)
    _checked(fleet, store, answer)
    assert answer.status == 503
    error = answer.body["error"]
    assert (
        error["type"] == "all_providers_failed"
        and error["attempts"][0]["deployment"] == "local-alone"
    )
    assert "local-alone: unreachable: cannot connect to http://127.0.0.1:" in error["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", ["local", "auto"])
def test_a_sensitive_request_whose_local_tier_is_unreachable_gets_a_503_and_reaches_no_cloud(
    fleet: Fleet,
    store: DecisionStore,
    model: str,
    stream: bool,
) -> None:
    prompt = _prompt(None)
    answer = chat(fleet, model, prompt, stream, metadata={"sensitive": True})
    row = _checked(fleet, store, answer)
    assert answer.status == 503
    message = answer.body["error"]["message"]
    assert "not sent to any cloud provider" in message
    assert "local: unreachable: cannot connect to http://127.0.0.1:" in message
    assert {a["deployment"] for a in answer.body["error"]["attempts"]} <= {"local", "local-alone"}
    assert row["status"] == "failed"
    assert not any(
        prompt in json.dumps(r.body) for r in fleet.calm.requests + fleet.hostile.requests
    )


# -- Retry-After ------------------------------------------------------------------------------------


def test_retry_after_dates_and_absurd_values_cool_down_for_at_most_the_cap(fleet: Fleet) -> None:
    """A date a day ahead and 99999999999 s both cool their deployment down, for the cap (2 s);
    garbage and negative values do not."""
    cooled = {"ra-check-plain-fb": "retry_after_date", "ra-check-stream-fb": "retry_after_absurd"}
    started = time.monotonic()
    for model, mode in cooled.items():
        assert chat(fleet, model, _prompt(mode)).headers["x-intent-router-deployment"] == "calm"
    for model in ("ra-retry_after_garbage-stream-fb", "ra-retry_after_negative-stream-fb"):
        assert (
            chat(fleet, model, _prompt(model.split("-")[1])).headers["x-intent-router-deployment"]
            == "calm"
        )
        assert chat(fleet, model, _prompt(None)).headers["x-intent-router-deployment"] == model
    for model in cooled:  # right after: skipped, the calm one answers
        answer = chat(fleet, model, _prompt(None))
        assert answer.headers["x-intent-router-deployment"] == "calm"
        assert answer.headers["x-intent-router-attempts"] == "2"
    waiting = set(cooled)

    def still_cooling() -> set[str]:
        for model in sorted(waiting):
            if chat(fleet, model, _prompt(None)).headers["x-intent-router-deployment"] == model:
                waiting.discard(model)
        return waiting

    eventually(
        still_cooling,
        lambda models: not models,
        timeout_s=max(0.0, started + 10 - time.monotonic()),
        interval_s=0.1,
        what="every cooled deployment answering again",
    )
    assert time.monotonic() - started >= LIMITS["max_retry_after_s"] - 0.1
