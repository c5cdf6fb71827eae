"""8,000 requests, plain and streaming, against an upstream mixing every hostile mode, dealt to two
services at once, one logging its decisions to SQLite and one to PostgreSQL, each at concurrency
64: every answer is a 200 or a documented 400/503, every stream ends with [DONE] or its error
event, and each decision log holds exactly one row per request id its service answered.

Each service gets every mode, plain and streaming, for certain (each such request on a
deployment of its own, which no other request's Retry-After can cool down and skip), and half
of the rest: both
backends store every kind of decision the hostile modes produce, 4,000 of them under the same
concurrency per service as before, while the upstream handling (the same code whatever the
backend) still answers 8,000. (Before, each backend had a run of 8,000 of its own, one after
the other: twice the time, for 8,000 rows stored per backend instead of 4,000.)

The hostile fake answers most requests normally (no marker); the rest each name one mode, drawn
with a fixed seed. Half the requests have a calm fallback behind the hostile deployment, some go
to a local deployment nothing listens on. Limits are small (64 KiB, 0.5 s idle, 2 s a stream)
so the slow modes hold a slot for a moment only.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from intent_router.decisions import DecisionStore
from intent_router.labels import INTENTS
from tests.conftest import fresh_postgres_schema
from tests.eventually import eventually
from tests.fakes.hostile_faults import MODES, closed_port_url
from tests.fakes.provider_fleet import FakeProvider
from tests.integration.service_process import running_service

# Bounded load runs (thousands of requests, tens of seconds each): `make test-fast` skips them.
pytestmark = pytest.mark.load

REQUESTS, CONCURRENCY = 8000, 64  # in all; concurrency per service
BACKENDS = ("sqlite", "postgresql")
HOSTILE_SHARE = 0.3  # of requests naming a mode; the others are answered normally
SLOW = {"trickle", "trickle_late", "endless"}  # each holds a slot for up to a second or two
SLOW_WEIGHT = 0.1  # relative to any other mode
LIMITS = {
    "max_body_bytes": 65536,
    "max_sse_line_bytes": 65536,
    "stream_idle_s": 0.5,
    "stream_total_s": 2.0,
    "max_retry_after_s": 0.02,
}  # Retry-After: a skip or two, no more
TIME_BOUND_S = 120.0  # the load itself (40 s measured on a quiet 2-core machine)
INDEX = re.compile(r"load (\d+): say hi")


@dataclass(frozen=True)
class Plan:
    index: int
    model: str
    mode: str | None
    stream: bool


@dataclass
class Outcome:
    plan: Plan
    status: int
    request_id: str | None
    body: Any  # JSON, or for a 200 stream its events' data ("[DONE]" or parsed JSON)


def _plans(seed: int = 11, services: int = len(BACKENDS)) -> list[list[Plan]]:
    """REQUESTS plans dealt to ``services``, each list shuffled: every mode, plain and
    streaming, once for certain to each (on a deployment with a fallback and one without,
    alternately), and an equal share of the rest, drawn at random."""
    rng = random.Random(seed)
    weights = [SLOW_WEIGHT if mode in SLOW else 1.0 for mode in MODES]
    sure = [(mode, stream) for mode in MODES for stream in (False, True)]
    drawn = []
    for _ in range(REQUESTS - services * len(sure)):
        mode = rng.choices(MODES, weights)[0] if rng.random() < HOSTILE_SHARE else None
        model = rng.choices(["hostile-fb", "hostile", "local"], [0.5, 0.45, 0.05])[0]
        drawn.append((mode, rng.random() < 0.5, model))
    dealt = []
    for service in range(services):
        picks = [(mode, stream, _sure_deployment(i)) for i, (mode, stream) in enumerate(sure)]
        picks += drawn[service::services]
        rng.shuffle(picks)
        dealt.append(picks)
    index = iter(range(REQUESTS))
    return [
        [Plan(next(index), model, mode, stream) for mode, stream, model in picks] for picks in dealt
    ]


def _sure_deployment(i: int) -> str:
    """The deployment of the ``i``-th certain request: one of its own, so that no cooldown
    (a hostile Retry-After on ``hostile`` cools it for up to 20 ms) can skip it, and its mode
    reaches the upstream for certain; with a calm fallback for every other one."""
    return f"hostile-sure-{i}" + ("-fb" if i % 2 == 0 else "")


def _deployment(base: str, tier: str = "primary", **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/fake-model",
        "tier": tier,
        "api_base": base,
        "api_style": "openai",
        "timeout_s": 2.0,
        "input_cost_per_mtok": 1.0,
        "output_cost_per_mtok": 2.0,
        "retry_on": ["429", "5xx", "timeout"],
        **extra,
    }


def _config(tmp: Path, hostile: str, calm: str) -> Path:
    raw = {
        "router": {
            "confidence_threshold": 0.0,
            "request_deadline_s": 10,
            "upstream": LIMITS,
            "cooldown": {"failures": 10**6, "seconds": 1},
        },
        "deployments": {
            "calm": _deployment(calm),
            "hostile": _deployment(hostile),
            "hostile-fb": _deployment(hostile, fallbacks=["calm"]),
            **{
                _sure_deployment(i): _deployment(
                    hostile, **({"fallbacks": ["calm"]} if i % 2 == 0 else {})
                )
                for i in range(2 * len(MODES))
            },
            "local": _deployment(
                closed_port_url(), "local", retry_on=["oom", "timeout"], fallbacks=["calm"]
            ),
        },
        "policy": {intent: ["calm"] for intent in INTENTS},
        "tracking": {"enabled": False},
    }
    path = tmp / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def _send(session: aiohttp.ClientSession, url: str, plan: Plan) -> Outcome:
    marker = f"[hostile:{plan.mode}] " if plan.mode else ""
    body = {
        "model": plan.model,
        "stream": plan.stream,
        "messages": [{"role": "user", "content": f"{marker}load {plan.index}: say hi"}],
    }
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        raw = await response.read()
        request_id = response.headers.get("x-request-id")
    if response.status == 200 and plan.stream:
        events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
        return Outcome(
            plan, 200, request_id, [e if e == "[DONE]" else json.loads(e) for e in events]
        )
    return Outcome(plan, response.status, request_id, json.loads(raw))


async def _load(url: str, plans: list[Plan]) -> list[Outcome]:
    pending = iter(plans)
    outcomes: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def slot() -> None:
            for plan in pending:
                outcomes.append(await _send(session, url, plan))

        await asyncio.gather(*(slot() for _ in range(CONCURRENCY)))
    return outcomes


def _check(outcome: Outcome) -> str:
    """The outcome's kind, once it is known to be one the router documents."""
    where = (outcome.plan, str(outcome.body)[:300])
    assert outcome.request_id, where
    if outcome.status == 200 and outcome.plan.stream:
        last = outcome.body[-1] if outcome.body else None
        if last == "[DONE]":
            return "stream_done"
        assert isinstance(last, dict) and last["error"]["message"].startswith("upstream stream "), (
            where
        )
        return "stream_error_event"
    if outcome.status == 200:
        assert outcome.body["choices"][0]["message"]["content"], where
        return "ok"
    error = outcome.body["error"]
    assert set(error) >= {"message", "type", "code", "param"}, where
    if outcome.status == 400:  # the upstream's own client error, as it came
        assert outcome.plan.mode == "error_surrogate_400" and error["type"] == "provider_error", (
            where
        )
        return "upstream_400"
    assert outcome.status == 503 and error["type"] == "all_providers_failed", where
    assert error["attempts"], where
    return "503"


def _rows(database: str, expected: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    store = DecisionStore(database)
    try:
        eventually(
            store.count,
            lambda count: count >= expected,
            timeout_s=timeout_s,
            interval_s=0.1,
            what=f"{expected} decisions",
        )
        time.sleep(0.5)  # a duplicate would land with the last batch
        return store.after(0, limit=expected + 1000)
    finally:
        store.dispose()


@contextmanager
def _decision_logs(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh decision log URL per backend."""
    with fresh_postgres_schema() as postgresql:
        yield {"sqlite": f"sqlite:///{tmp_path / 'decisions.db'}", "postgresql": postgresql}


@contextmanager
def _services_on(config: Path, databases: list[str]) -> Iterator[list[str]]:
    """A service per decision log, started together: their starts overlap, as those of
    ``running_services`` do (which gives every service the same environment)."""
    with ExitStack() as stack, ThreadPoolExecutor(len(databases)) as pool:
        starts = [
            running_service(config, env={"INTENT_ROUTER_DATABASE_URL": database})
            for database in databases
        ]
        entered = [pool.submit(start.__enter__) for start in starts]
        urls, failed = [], None
        for start, future in zip(starts, entered):
            try:
                urls.append(future.result())
                stack.push(start.__exit__)
            except Exception as exc:  # stop the others before reporting it
                failed = failed or exc
        if failed is not None:
            raise failed
        yield urls


def _index_of(request: Any) -> int:
    match = INDEX.search(request.body["messages"][-1]["content"])
    assert match, request.body
    return int(match.group(1))


def test_8000_requests_against_every_hostile_mode_get_documented_answers(tmp_path: Path) -> None:
    dealt = _plans()
    with ExitStack() as stack:
        hostile = stack.enter_context(FakeProvider("hostile", hostile=True))
        calm = stack.enter_context(FakeProvider("calm"))
        databases = stack.enter_context(_decision_logs(tmp_path))
        config = _config(tmp_path, f"{hostile.url}/v1", f"{calm.url}/v1")
        urls = stack.enter_context(_services_on(config, [databases[b] for b in BACKENDS]))

        async def both() -> list[list[Outcome]]:
            return list(await asyncio.gather(*map(_load, urls, dealt)))

        started = time.monotonic()
        answered = asyncio.run(both())
        took = time.monotonic() - started
        rows = [_rows(databases[b], len(plans)) for b, plans in zip(BACKENDS, dealt)]
        service_of = {plan.index: i for i, plans in enumerate(dealt) for plan in plans}
        exercised: list[Counter[tuple[str, bool]]] = [Counter() for _ in BACKENDS]
        for r in hostile.requests:
            if r.hostile:
                exercised[service_of[_index_of(r)]][(r.hostile, bool(r.body.get("stream")))] += 1

    outcomes = [outcome for per_service in answered for outcome in per_service]
    kinds = Counter(_check(outcome) for outcome in outcomes)
    print(f"{len(outcomes)} requests in {took:.1f} s ({len(outcomes) / took:.0f}/s): {dict(kinds)}")
    assert len(outcomes) == REQUESTS
    assert len({o.request_id for o in outcomes}) == REQUESTS
    for backend, per_service, stored_rows in zip(BACKENDS, answered, rows):
        ids = {o.request_id for o in per_service}
        stored = Counter(row["request_id"] for row in stored_rows)
        assert set(stored) == ids and set(stored.values()) == {1}, backend  # one row each
    assert kinds["ok"] + kinds["stream_done"] > REQUESTS // 2  # the calm answers still come
    assert kinds["503"] > 0 and kinds["stream_error_event"] > 0 and kinds["upstream_400"] > 0
    assert took < TIME_BOUND_S
    # The upstream really mixed every mode, plain and streaming, for each backend's service.
    every = {(mode, stream) for mode in MODES for stream in (False, True)}
    for backend, seen in zip(BACKENDS, exercised):
        assert every <= set(seen), (backend, every - set(seen))
