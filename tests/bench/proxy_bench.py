"""/v1/chat/completions overhead: three paths to the same fast fake upstream
(tests/bench/fast_upstream.py), loaded by wrk at concurrency 1 and 8 in alternating rounds:

- direct: wrk to the upstream itself (its own capacity, and the client's floor);
- router: wrk to the service (one worker; every deployment ``api_style: openai`` pointing at
  the upstream, ``model: auto`` so each request is classified and routed; confidence
  threshold 0, so no LLM escalation; decision log and MLflow tracking on, as shipped);
- litellm: wrk to LiteLLM's proxy (``litellm[proxy]==1.106.12`` in its own venv,
  tests/bench/.litellm-proxy-venv, installed by ``make bench``; one worker, a master key, no
  database), with the upstream as an ``openai/`` model.

Added latency is a path's p50 minus the direct p50 in the same round; the router/LiteLLM
comparisons are ratios of medians measured in the same run."""

from __future__ import annotations

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
MASTER_KEY = "sk-bench-master-key"
ROUNDS = 3
SECONDS = 4.0
CONCURRENCY = (1, 8)
PATHS = ("direct", "router", "litellm")
LOG_LEVEL = "info"  # both proxies at their defaults
TARGET_ADDED_P50_FRACTION = 0.1  # our added p50 <= 1/10 of LiteLLM's
TARGET_THROUGHPUT_RATIO = 10.0  # our req/s >= 10x LiteLLM's at concurrency 8


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
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}}],
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = directory / "litellm.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _bodies(model: str) -> list[dict[str, Any]]:
    return [{"model": model, "max_tokens": 256,
             "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}]}
            for t in prompts()]


def run() -> dict[str, Any]:
    litellm_bin = LITELLM_VENV / "bin" / "litellm"
    if not litellm_bin.exists():
        raise RuntimeError(f"{litellm_bin} is missing: `make bench` installs litellm[proxy]=={LITELLM_VERSION}")
    samples: dict[int, dict[str, list[WrkResult]]] = {c: {p: [] for p in PATHS} for c in CONCURRENCY}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-proxy-")))
        ports = {p: free_port() for p in PATHS}
        upstream = f"http://127.0.0.1:{ports['direct']}"
        children = {
            "direct": stack.enter_context(procs.spawn(
                procs.python_module("tests.bench.fast_upstream", "--port", str(ports["direct"])),
                scratch / "upstream.log")),
            "router": stack.enter_context(procs.spawn(
                procs.python_module("intent_router.service", "--host", "127.0.0.1", "--port",
                                    str(ports["router"]), "--workers", "1", "--log-level", LOG_LEVEL,
                                    "--config", str(_router_config(scratch, upstream))),
                scratch / "service.log", env={**service_env(scratch), "BENCH_UPSTREAM_KEY": "sk-upstream"})),
            "litellm": stack.enter_context(procs.spawn(
                [str(litellm_bin), "--config", str(_litellm_config(scratch, upstream)), "--host",
                 "127.0.0.1", "--port", str(ports["litellm"]), "--num_workers", "1"],
                scratch / "litellm.log", env={"LITELLM_LOG": "ERROR"})),
        }
        headers = {"litellm": {"Authorization": f"Bearer {MASTER_KEY}"}}
        models = {"direct": "gpt-4o-mini", "router": "auto", "litellm": "bench"}
        urls = {p: f"http://127.0.0.1:{ports[p]}/v1/chat/completions" for p in PATHS}
        scripts = {p: write_script(_bodies(models[p]), headers.get(p), directory=scratch) for p in PATHS}
        for path in PATHS:
            probe = procs.http_ok(urls[path], _bodies(models[path])[0], headers.get(path))
            procs.wait_until(children[path], probe, path, timeout_s=120, every_s=0.2)
        for path in PATHS:  # warm up
            run_wrk(urls[path], scripts[path], 2.0, max(CONCURRENCY))
        for _ in range(ROUNDS):
            for concurrency in CONCURRENCY:
                for path in PATHS:
                    samples[concurrency][path].append(run_wrk(urls[path], scripts[path], SECONDS, concurrency))
    return _summary(samples)


def _summary(samples: dict[int, dict[str, list[WrkResult]]]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rounds": ROUNDS, "seconds_per_sample": SECONDS, "litellm_version": LITELLM_VERSION,
        "measured": "router: model auto (classified, routed), confidence_threshold 0, decision log "
                    "+ MLflow tracking on; litellm proxy: one worker, master key, no database",
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
                    r.p50_ms - d.p50_ms for r, d in zip(runs, by_path["direct"], strict=True)),
                "rps_samples": [r.rps for r in runs],
            }
        router, litellm = rows["router"], rows["litellm"]
        rows["added_p50_fraction_router_to_litellm"] = router["added_p50_ms"] / litellm["added_p50_ms"]
        rows["throughput_ratio_router_to_litellm"] = router["rps_median"] / litellm["rps_median"]
        results["concurrency"][str(concurrency)] = rows
    c8 = results["concurrency"][str(max(CONCURRENCY))]
    c1 = results["concurrency"][str(min(CONCURRENCY))]
    results["targets"] = {
        "added_p50_at_most_1/10_of_litellm_c1": c1["added_p50_fraction_router_to_litellm"] <= TARGET_ADDED_P50_FRACTION,
        "added_p50_at_most_1/10_of_litellm_c8": c8["added_p50_fraction_router_to_litellm"] <= TARGET_ADDED_P50_FRACTION,
        "throughput_at_least_10x_litellm_c8": c8["throughput_ratio_router_to_litellm"] >= TARGET_THROUGHPUT_RATIO,
    }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"/v1/chat/completions through a proxy vs direct ({results['rounds']} alternating rounds of "
        f"{results['seconds_per_sample']:.0f} s per path and concurrency, wrk 1 thread; medians)",
        f"  {results['measured']}; LiteLLM {results['litellm_version']}",
        f"{'conc':>4} {'path':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'added p50 ms':>14}",
    ]
    for concurrency, rows in results["concurrency"].items():
        for path in PATHS:
            row = rows[path]
            added = "-" if path == "direct" else f"{row['added_p50_ms']:.2f}"
            lines.append(f"{concurrency:>4} {path:<8}{row['rps_median']:>9.0f}{row['p50_ms']:>9.2f}"
                         f"{row['p99_ms']:>9.2f}{added:>14}")
        lines.append(f"     router added p50 = {rows['added_p50_fraction_router_to_litellm']:.3f} x "
                     f"LiteLLM's; router req/s = {rows['throughput_ratio_router_to_litellm']:.1f} x LiteLLM's")
    lines.append("  direct = the fake upstream's own capacity with this client (the ceiling for both proxies)")
    for name, ok in results["targets"].items():
        lines.append(f"  target {name}: {'PASS' if ok else 'MISS'}")
    return "\n".join(lines)
