"""What recording costs: /v1/route and chat throughput with no decision log, with the
decision log, and with the decision log plus MLflow tracking at its defaults (30 s flushes,
1% of requests traced, at most 60 traces a minute), each a real service process on loopback
against the fake fleet, measured in interleaved rounds so the machine's drift hits every
variant alike. The rounds last long enough for several flushes to fall inside them."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.integration.fleet_service import fleet_service

VARIANTS: dict[str, dict[str, Any]] = {
    "no recording": {"storage": {"decision_log": False}, "tracking": {"enabled": False}},
    "decision log": {"tracking": {"enabled": False}},
    "decision log + MLflow": {
        "tracking": {"enabled": True}
    },  # the defaults: 30 s flushes, 1% traces
}
ROUNDS = 5
SECONDS = 5.0
CONCURRENCY = 8
PROMPT = "rename getUser to fetchUser everywhere"


async def _load(url: str, path: str, body: dict[str, Any], seconds: float) -> float:
    """Requests per second at CONCURRENCY for ``seconds`` (every answer must be 200)."""
    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.post(path, json=body)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{path} answered {response.status_code}: {response.text[:200]}"
                    )
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)


def run() -> dict[str, Any]:
    endpoints = {
        "route": ("/v1/route", {"prompt": PROMPT}),
        "chat": (
            "/v1/chat/completions",
            {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]},
        ),
    }
    samples: dict[str, dict[str, list[float]]] = {e: {v: [] for v in VARIANTS} for e in endpoints}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {}
        for index, (name, extra) in enumerate(VARIANTS.items()):
            home = scratch / str(index)
            home.mkdir()
            env = {
                "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
                "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
            }
            setup = stack.enter_context(fleet_service(home, extra=extra, env=env))
            urls[name] = setup.url
        for url in urls.values():  # warm up: first requests load lazily imported code
            asyncio.run(_load(url, "/v1/route", endpoints["route"][1], 1.0))
        for _ in range(ROUNDS):
            for endpoint, (path, body) in endpoints.items():
                for name, url in urls.items():
                    samples[endpoint][name].append(asyncio.run(_load(url, path, body, SECONDS)))
    results: dict[str, Any] = {
        "rounds": ROUNDS,
        "seconds_per_sample": SECONDS,
        "concurrency": CONCURRENCY,
    }
    for endpoint, by_variant in samples.items():
        baseline = statistics.median(by_variant["no recording"])
        results[endpoint] = {
            name: {
                "rps_median": statistics.median(values),
                "ratio_to_no_recording": statistics.median(values) / baseline,
                "rps_samples": values,
            }
            for name, values in by_variant.items()
        }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Recording overhead ({results['rounds']} interleaved rounds of {results['seconds_per_sample']:.0f} s, "
        f"concurrency {results['concurrency']}, median requests/s)",
        f"{'endpoint':<8} {'variant':<24} {'req/s':>8} {'vs none':>8}",
    ]
    for endpoint in ("route", "chat"):
        for name, row in results[endpoint].items():
            lines.append(
                f"{endpoint:<8} {name:<24} {row['rps_median']:>8.0f} {row['ratio_to_no_recording']:>8.3f}"
            )
    return "\n".join(lines)
