"""Cold start and resident memory of one service worker.

Cold start: from spawning ``python -m intent_router.service --workers 1`` to its first 200 on
``POST /v1/route`` (polled every 20 ms), and to ``/readyz``. Memory: VmRSS of the worker
process (with ``--workers 1`` uvicorn serves from the process it was started in; the bench
checks for children and reports each) after warm-up (ready, 50 requests) and after load (wrk on
/v1/route, then the first MLflow flush: the steady state), and of the MLflow tracker, which
the service runs as a process of its own (mlflow loads there, never in a worker). Two configs,
alternated run by run: the default one (its Cloudflare and Anthropic deployments go through
litellm, which a worker loads on its first call to one of them) and the same deployments all
on ``api_style: openai`` (litellm never imported). For the default config a last figure is the
RSS once a chat call has gone to its Anthropic deployment (pointed at a closed local port, so
the call fails fast after litellm has loaded): what a worker that serves such a deployment holds."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.bench import procs
from tests.bench.route_bench import bodies, prompts, service_env
from tests.bench.wrk import run_wrk, write_script
from tests.integration.service_process import free_port

RUNS = 3
LOAD_SECONDS = 3.0
# The tracker's first flush (which imports mlflow) comes after the warm-up measurement and
# before the after-load one (the default interval, 30 s, would only make the bench longer).
FLUSH_INTERVAL_S = 10.0
TARGET_COLD_START_S = 3.0
TARGET_RSS_MB = 250.0
CLOSED_PORT_BASE = "http://127.0.0.1:9"  # discard: nothing listens, the connection is refused
VARIANTS = ("default config", "openai-style only")


def _config(directory: Path, variant: str) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["router"]["confidence_threshold"] = 0.0
    raw["tracking"]["flush_interval_s"] = FLUSH_INTERVAL_S
    if variant == "openai-style only":
        for spec in raw["deployments"].values():
            spec.update(
                api_base=spec.get("api_base") or "http://127.0.0.1:9/v1", api_style="openai"
            )
    else:
        raw["deployments"]["claude-sonnet-4"]["api_base"] = CLOSED_PORT_BASE
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def bytecode_precompiled() -> bool:
    """Whether the venv holds compiled bytecode (``make venv`` compiles it ahead); without it
    every start under $PYTHONDONTWRITEBYTECODE compiles every module it imports."""
    import importlib.util

    import litestar

    return Path(importlib.util.cache_from_source(litestar.__file__)).exists()


def _processes(pid: int) -> tuple[list[int], list[int]]:
    """(the processes that serve, the MLflow tracker): the service starts the tracker as a
    child; the workers are uvicorn's other children when it forked any, else itself."""
    children = procs.children(pid)
    trackers = [c for c in children if "intent_router.tracking" in procs.cmdline(c)]
    return [c for c in children if c not in trackers] or [pid], trackers


def _one_run(scratch: Path, variant: str, script: Path, body: dict[str, Any]) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = _config(scratch, variant)
    argv = procs.python_module(
        "intent_router.service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--config",
        str(config),
        "--log-level",
        "warning",
    )
    env = {**service_env(scratch), "ANTHROPIC_API_KEY": "sk-bench-unused"}
    with procs.spawn(argv, scratch / "service.log", env=env) as child:
        first_route = procs.wait_until(
            child, procs.http_ok(f"{base}/v1/route", body), variant, every_s=0.02
        )
        ready = procs.wait_until(child, procs.http_ok(f"{base}/readyz"), variant, every_s=0.02)
        for _ in range(50):
            httpx.post(f"{base}/v1/route", json=body, timeout=5).raise_for_status()
        workers, trackers = _processes(child.pid)
        warm = [procs.rss_mb(p) for p in workers]
        mlflow_db = scratch / "mlflow.db"  # created by the tracker's first flush
        flushed_before_warm = mlflow_db.exists()
        run_wrk(f"{base}/v1/route", script, LOAD_SECONDS, 8)
        procs.wait_until(
            child,
            mlflow_db.exists,
            f"{variant}: first MLflow flush",
            timeout_s=FLUSH_INTERVAL_S + 30,
        )
        time.sleep(2.0)  # let the flush finish
        loaded = [procs.rss_mb(p) for p in workers]
        with_litellm = None
        if variant == "default config":  # the first call to a litellm deployment loads it
            httpx.post(
                f"{base}/v1/chat/completions",
                timeout=120,
                json={"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]},
            )
            with_litellm = max(procs.rss_mb(p) for p in workers)
        return {
            "first_route_s": first_route,
            "ready_s": ready,
            "workers": len(workers),
            "rss_warm_mb": max(warm),
            "rss_after_load_mb": max(loaded),
            "rss_with_litellm_mb": with_litellm,
            "tracker_rss_mb": max((procs.rss_mb(p) for p in trackers), default=0.0),
            "mlflow_flushed_before_warm": flushed_before_warm,
        }


def run() -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with ExitStack() as stack:
        scratch_root = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-startup-"))
        )
        texts = prompts()
        script = write_script(bodies(texts), directory=scratch_root)
        body = bodies(texts[:1])[0]
        for index in range(RUNS):
            for variant in VARIANTS:
                scratch = scratch_root / f"{index}-{VARIANTS.index(variant)}"
                scratch.mkdir()
                runs[variant].append(_one_run(scratch, variant, script, body))
    results: dict[str, Any] = {
        "runs": RUNS,
        "load_seconds": LOAD_SECONDS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "flush_interval_s": FLUSH_INTERVAL_S,
        "variants": {},
        "bytecode_precompiled": bytecode_precompiled(),
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }
    for variant, rows in runs.items():
        summary = {
            key: statistics.median(r[key] for r in rows)
            for key in (
                "first_route_s",
                "ready_s",
                "rss_warm_mb",
                "rss_after_load_mb",
                "tracker_rss_mb",
            )
        }
        litellm_rows = [
            r["rss_with_litellm_mb"] for r in rows if r["rss_with_litellm_mb"] is not None
        ]
        summary["rss_with_litellm_mb"] = statistics.median(litellm_rows) if litellm_rows else None
        summary["workers"] = max(r["workers"] for r in rows)
        summary["mlflow_flushed_before_warm"] = any(r["mlflow_flushed_before_warm"] for r in rows)
        summary["samples"] = rows
        summary["cold_start_target_met"] = summary["first_route_s"] <= TARGET_COLD_START_S
        summary["rss_target_met"] = summary["rss_after_load_mb"] <= TARGET_RSS_MB
        results["variants"][variant] = summary
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Cold start and memory, --workers 1 (median of {results['runs']} runs per config, alternated; "
        f"load: wrk /v1/route {results['load_seconds']:.0f} s at 8 connections, then the first MLflow flush)",
        f"{'config':<20}{'procs':>6}{'1st route s':>12}{'/readyz s':>10}{'RSS warm MB':>12}"
        f"{'RSS load MB':>12}{'cold<=3s':>9}{'RSS<=250':>9}{'tracker MB':>11}{'+litellm MB':>12}",
    ]
    for variant, row in results["variants"].items():
        lines.append(
            f"{variant:<20}{row['workers']:>6}{row['first_route_s']:>12.2f}{row['ready_s']:>10.2f}"
            f"{row['rss_warm_mb']:>12.0f}{row['rss_after_load_mb']:>12.0f}"
            f"{'PASS' if row['cold_start_target_met'] else 'MISS':>9}"
            f"{'PASS' if row['rss_target_met'] else 'MISS':>9}{row['tracker_rss_mb']:>11.0f}"
            f"{'-' if row['rss_with_litellm_mb'] is None else format(row['rss_with_litellm_mb'], '.0f'):>12}"
        )
    if any(row["mlflow_flushed_before_warm"] for row in results["variants"].values()):
        lines.append(
            "  NOTE: the first MLflow flush came before a warm measurement (mlflow included)"
        )
    lines.append(
        "  RSS warm: after 50 requests to /v1/route; RSS load: after wrk and the first MLflow "
        "flush, which loads mlflow in the tracker process only (tracker MB: its own RSS, one "
        "per instance, not per worker); +litellm MB: after a first chat call to a litellm "
        "deployment, which loads litellm into that worker"
    )
    lines.append(f"  load average at the end (1, 5, 15 min): {results['load_average']}")
    lines.append(
        f"  bytecode precompiled: {results['bytecode_precompiled']}; "
        f"PYTHONDONTWRITEBYTECODE set: {results['dont_write_bytecode']}"
    )
    lines.append(
        "  procs: serving processes (uvicorn forks none with --workers 1: the RSS is the "
        "process started); RSS = VmRSS, MB = 10^6 bytes"
    )
    return "\n".join(lines)
