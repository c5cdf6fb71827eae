"""The fast path's HTTP client: CPU time per upstream call of a pooled aiohttp session (what
the router uses) against a pooled httpx client (what it used before), both against the fast
fake upstream (tests/bench/fast_upstream.py) at concurrency 8, in alternating rounds; CPU
time of this process (``time.process_time``), so the figure is the client's own cost."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tests.bench import procs
from tests.integration.service_process import free_port

ROUNDS = 5
CALLS = 2000
CONCURRENCY = 8
BODY = {"model": "bench", "messages": [{"role": "user", "content": "refactor this function " * 10}]}


async def _cpu_per_call_us(call: Callable[[], Awaitable[None]]) -> float:
    for _ in range(50):  # warm the pool
        await call()
    started = time.process_time()
    for _ in range(CALLS // CONCURRENCY):
        await asyncio.gather(*(call() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / CALLS * 1e6


async def _httpx(url: str) -> float:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def call() -> None:
            response = await client.post(url, json=BODY, timeout=10)
            response.json()

        return await _cpu_per_call_us(call)


async def _aiohttp(url: str) -> float:
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def call() -> None:
            async with session.post(url, json=BODY) as response:
                json.loads(await response.read())

        return await _cpu_per_call_us(call)


def run() -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    samples: dict[str, list[float]] = {"aiohttp": [], "httpx": []}
    with tempfile.TemporaryDirectory(prefix="bench-client-") as scratch:
        argv = procs.python_module("tests.bench.fast_upstream", "--port", str(port))
        with procs.spawn(argv, Path(scratch) / "upstream.log") as child:
            procs.wait_until(child, procs.http_ok(url), "fast upstream")
            for _ in range(ROUNDS):
                samples["aiohttp"].append(asyncio.run(_aiohttp(url)))
                samples["httpx"].append(asyncio.run(_httpx(url)))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "rounds": ROUNDS,
        "calls_per_round": CALLS,
        "concurrency": CONCURRENCY,
        "cpu_us_per_call": medians,
        "samples": samples,
        "httpx_over_aiohttp": medians["httpx"] / medians["aiohttp"],
    }


def table(results: dict[str, Any]) -> str:
    cpu = results["cpu_us_per_call"]
    return "\n".join(
        [
            f"HTTP client CPU per upstream call ({results['rounds']} alternating rounds of "
            f"{results['calls_per_round']} calls at concurrency {results['concurrency']}; medians)",
            f"{'client':<10}{'CPU us/call':>12}",
            f"{'aiohttp':<10}{cpu['aiohttp']:>12.0f}   (the fast path)",
            f"{'httpx':<10}{cpu['httpx']:>12.0f}",
            f"httpx costs {results['httpx_over_aiohttp']:.1f}x aiohttp's CPU per call",
        ]
    )
