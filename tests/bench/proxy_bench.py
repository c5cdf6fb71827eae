"""/v1/chat/completions overhead: three paths to the same fast fake upstream
(tests/bench/fast_upstream.py), loaded by wrk at concurrency 1 and 8 in alternating rounds:

- direct: wrk to the upstream itself (its own capacity, and the client's floor);
- router: wrk to the service (one worker; every deployment ``api_style: openai`` pointing at
  the upstream, ``model: auto`` so each request is classified and routed; confidence
  threshold 0, so no LLM escalation; decision log and MLflow tracking on, as shipped);
- litellm: wrk to LiteLLM's proxy (``litellm[proxy]==1.106.12`` in its own venv,
  tests/bench/.litellm-proxy-venv, installed by ``make bench``; one worker, a master key, no
  database), with the upstream as an ``openai/`` model;
- portkey: wrk to Portkey's gateway (``@portkey-ai/gateway@1.15.2`` from the npm registry in
  its own folder, tests/bench/.portkey-gateway, installed by ``make bench``; one Node process,
  NODE_ENV=production), the upstream as provider ``openai`` at a custom host. Skipped, and
  said so, where node or npm is missing.

Added latency is a path's p50 minus the direct p50 in the same round; the router/peer
comparisons are ratios of medians measured in the same run."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.bench import procs
from tests.bench.route_bench import SYSTEM, prompts, service_env
from tests.bench.wrk import WrkResult, run_wrk, write_script
from tests.integration.service_process import free_port

LITELLM_VERSION = "1.106.12"
LITELLM_VENV = procs.REPO / "tests" / "bench" / ".litellm-proxy-venv"
PORTKEY_VERSION = "1.15.2"
PORTKEY_DIR = procs.REPO / "tests" / "bench" / ".portkey-gateway"
PORTKEY_SERVER = (
    PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
)
MASTER_KEY = "sk-bench-master-key"
UPSTREAM_KEY = "sk-upstream"
ROUNDS = 3
SECONDS = 4.0
CONCURRENCY = (1, 8)
PEERS = ("litellm", "portkey")
LOG_LEVEL = "info"  # every proxy at its defaults
TARGET_ADDED_P50_FRACTION = 0.1  # our added p50 <= 1/10 of LiteLLM's
TARGET_THROUGHPUT_RATIO = {
    "litellm": 15.0,
    "portkey": 2.0,
}  # our req/s at concurrency 8 >= these x theirs


def _router_config(directory: Path, upstream: str) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["router"]["confidence_threshold"] = 0.0
    for spec in raw["deployments"].values():
        spec.update(api_base=f"{upstream}/v1", api_style="openai", api_key_env="BENCH_UPSTREAM_KEY")
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _litellm_config(directory: Path, upstream: str) -> Path:
    raw = {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": f"{upstream}/v1",
                    "api_key": UPSTREAM_KEY,
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = directory / "litellm.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _bodies(model: str) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "max_tokens": 256,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}],
        }
        for t in prompts()
    ]


def portkey_missing() -> str | None:
    """Why Portkey's gateway cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not PORTKEY_SERVER.exists():
        return f"{PORTKEY_SERVER} is missing (`make bench BENCH=proxy` installs it where npm is on PATH)"
    return None


def _portkey_argv(port: int) -> list[str]:
    return [shutil.which("node") or "node", str(PORTKEY_SERVER), f"--port={port}", "--headless"]


def _portkey_env() -> dict[str, str]:
    # Custom hosts on loopback are refused unless trusted; production mode skips the dev banner.
    return {"NODE_ENV": "production", "TRUSTED_CUSTOM_HOSTS": "127.0.0.1"}


def run() -> dict[str, Any]:
    litellm_bin = LITELLM_VENV / "bin" / "litellm"
    if not litellm_bin.exists():
        raise RuntimeError(
            f"{litellm_bin} is missing: `make bench` installs litellm[proxy]=={LITELLM_VERSION}"
        )
    skipped = portkey_missing()
    if skipped:
        print(f"proxy bench: Portkey's gateway skipped: {skipped}", flush=True)
    paths = ("direct", "router", "litellm") + (() if skipped else ("portkey",))
    samples: dict[int, dict[str, list[WrkResult]]] = {
        c: {p: [] for p in paths} for c in CONCURRENCY
    }
    cpu: dict[int, dict[str, list[float]]] = {c: {p: [] for p in paths} for c in CONCURRENCY}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-proxy-")))
        ports = {p: free_port() for p in paths}
        upstream = f"http://127.0.0.1:{ports['direct']}"
        argv = {
            "direct": procs.python_module(
                "tests.bench.fast_upstream", "--port", str(ports["direct"])
            ),
            "router": procs.python_module(
                "intent_router.service",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["router"]),
                "--workers",
                "1",
                "--log-level",
                LOG_LEVEL,
                "--config",
                str(_router_config(scratch, upstream)),
            ),
            "litellm": [
                str(litellm_bin),
                "--config",
                str(_litellm_config(scratch, upstream)),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["litellm"]),
                "--num_workers",
                "1",
            ],
        }
        env = {
            "direct": {},
            "router": {**service_env(scratch), "BENCH_UPSTREAM_KEY": UPSTREAM_KEY},
            "litellm": {"LITELLM_LOG": "ERROR"},
        }
        if "portkey" in paths:
            argv["portkey"], env["portkey"] = _portkey_argv(ports["portkey"]), _portkey_env()
        children = {
            p: stack.enter_context(procs.spawn(argv[p], scratch / f"{p}.log", env=env[p]))
            for p in paths
        }
        headers = {
            "litellm": {"Authorization": f"Bearer {MASTER_KEY}"},
            "portkey": {
                "Authorization": f"Bearer {UPSTREAM_KEY}",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"{upstream}/v1",
            },
        }
        models = {
            "direct": "gpt-4o-mini",
            "router": "auto",
            "litellm": "bench",
            "portkey": "gpt-4o-mini",
        }
        urls = {p: f"http://127.0.0.1:{ports[p]}/v1/chat/completions" for p in paths}
        scripts = {
            p: write_script(_bodies(models[p]), headers.get(p), directory=scratch) for p in paths
        }
        for path in paths:
            probe = procs.http_ok(urls[path], _bodies(models[path])[0], headers.get(path))
            procs.wait_until(children[path], probe, path, timeout_s=120, every_s=0.2)
        for path in paths:  # warm up
            run_wrk(urls[path], scripts[path], 2.0, max(CONCURRENCY))
        for _ in range(ROUNDS):
            for concurrency in CONCURRENCY:
                for path in paths:
                    before = procs.tree_cpu_s(children[path].pid)
                    result = run_wrk(urls[path], scripts[path], SECONDS, concurrency)
                    used = procs.tree_cpu_s(children[path].pid) - before
                    samples[concurrency][path].append(result)
                    cpu[concurrency][path].append(1e6 * used / max(result.requests, 1))
    return _summary(samples, cpu, skipped)


def _summary(
    samples: dict[int, dict[str, list[WrkResult]]],
    cpu: dict[int, dict[str, list[float]]],
    portkey_skipped: str | None,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rounds": ROUNDS,
        "seconds_per_sample": SECONDS,
        "litellm_version": LITELLM_VERSION,
        "portkey_version": PORTKEY_VERSION,
        "portkey_skipped": portkey_skipped,
        "measured": "router: model auto (classified, routed), confidence_threshold 0, decision log "
        "+ MLflow tracking on; litellm proxy: one worker, master key, no database; "
        "portkey gateway: one Node process, provider openai at a custom host",
        "load_average": _load_average(),
        "concurrency": {},
    }
    for concurrency, by_path in samples.items():
        rows: dict[str, Any] = {}
        for path, runs in by_path.items():
            rows[path] = {
                "rps_median": statistics.median(r.rps for r in runs),
                "p50_ms": statistics.median(r.p50_ms for r in runs),
                "p99_ms": statistics.median(r.p99_ms for r in runs),
                # per round, against the direct p50 of the same round
                "added_p50_ms": statistics.median(
                    r.p50_ms - d.p50_ms for r, d in zip(runs, by_path["direct"], strict=True)
                ),
                "rps_samples": [r.rps for r in runs],
                # the path's process and its children (the router's MLflow tracker included)
                "cpu_us_per_request": statistics.median(cpu[concurrency][path]),
            }
        for peer in PEERS:
            if peer in rows:
                rows[f"cpu_ratio_{peer}_to_router"] = (
                    rows[peer]["cpu_us_per_request"] / rows["router"]["cpu_us_per_request"]
                )
                rows[f"added_p50_fraction_router_to_{peer}"] = (
                    rows["router"]["added_p50_ms"] / rows[peer]["added_p50_ms"]
                )
                rows[f"throughput_ratio_router_to_{peer}"] = (
                    rows["router"]["rps_median"] / rows[peer]["rps_median"]
                )
        results["concurrency"][str(concurrency)] = rows
    c8 = results["concurrency"][str(max(CONCURRENCY))]
    c1 = results["concurrency"][str(min(CONCURRENCY))]
    targets = {
        "added_p50_at_most_1/10_of_litellm_c1": c1["added_p50_fraction_router_to_litellm"]
        <= TARGET_ADDED_P50_FRACTION,
        "added_p50_at_most_1/10_of_litellm_c8": c8["added_p50_fraction_router_to_litellm"]
        <= TARGET_ADDED_P50_FRACTION,
    }
    for peer, ratio in TARGET_THROUGHPUT_RATIO.items():
        if f"throughput_ratio_router_to_{peer}" in c8:
            targets[f"throughput_at_least_{ratio:g}x_{peer}_c8"] = (
                c8[f"throughput_ratio_router_to_{peer}"] >= ratio
            )
    results["targets"] = targets
    return results


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def table(results: dict[str, Any]) -> str:
    lines = [
        f"/v1/chat/completions through a proxy vs direct ({results['rounds']} alternating rounds of "
        f"{results['seconds_per_sample']:.0f} s per path and concurrency, wrk 1 thread; medians)",
        f"  {results['measured']}; LiteLLM {results['litellm_version']}, Portkey {results['portkey_version']}",
        f"  load average at the end (1, 5, 15 min): {results['load_average']}",
        f"{'conc':>4} {'path':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'added p50 ms':>14}{'CPU us/req':>12}",
    ]
    if results["portkey_skipped"]:
        lines.insert(2, f"  Portkey's gateway skipped: {results['portkey_skipped']}")
    for concurrency, rows in results["concurrency"].items():
        for path in ("direct", "router", *PEERS):
            if path not in rows:
                continue
            row = rows[path]
            added = "-" if path == "direct" else f"{row['added_p50_ms']:.2f}"
            lines.append(
                f"{concurrency:>4} {path:<8}{row['rps_median']:>9.0f}{row['p50_ms']:>9.2f}"
                f"{row['p99_ms']:>9.2f}{added:>14}{row['cpu_us_per_request']:>12.0f}"
            )
        for peer in PEERS:
            if peer in rows:
                lines.append(
                    f"     router added p50 = {rows[f'added_p50_fraction_router_to_{peer}']:.3f} x "
                    f"{peer}'s; router req/s = {rows[f'throughput_ratio_router_to_{peer}']:.2f} x {peer}'s; "
                    f"{peer}'s CPU per request = {rows[f'cpu_ratio_{peer}_to_router']:.2f} x the router's"
                )
    lines.append(
        "  direct = the fake upstream's own capacity with this client (the ceiling for every proxy)"
    )
    lines.append(
        "  CPU us/req: CPU time of the path's processes (children included) over a round / its "
        "requests, median of rounds; steadier than req/s on a shared machine"
    )
    for name, ok in results["targets"].items():
        lines.append(f"  target {name}: {'PASS' if ok else 'MISS'}")
    return "\n".join(lines)
