"""/v1/route under wrk: the service (one worker, the default config but for a confidence
threshold of 0, so no request escalates to the LLM classifier; decision log and MLflow
tracking on, as shipped) against a bare Litestar app with one POST endpoint answering a
constant JSON (tests/bench/bare_app.py), both started by the same ``uvicorn.run`` call at
the same log level. Two more apps, the service without MLflow tracking and without any
recording, show what the tracker process and the decision log cost. Rounds alternate the apps so that the machine's drift hits all alike;
figures are medians over rounds and the comparison is their ratio."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.bench import procs
from tests.bench.wrk import WrkResult, run_wrk, write_script
from tests.integration.service_process import free_port
from training.dataset import TEST_FILE, read_jsonl

ROUNDS = 5
SECONDS = 5.0
CONNECTIONS = 8
PROMPTS = 64
LOG_LEVEL = "info"  # what `make serve` runs: uvicorn's access log is on
TARGET_RATIO = 0.8
# name: config sections changed from the default (None: the bare Litestar app)
APPS: dict[str, dict[str, dict[str, Any]] | None] = {
    "bare": None,
    "route": {},  # decision log and MLflow tracking on, as shipped: the figure that counts
    "route, decision log only": {"tracking": {"enabled": False}},
    "route, no recording": {"storage": {"decision_log": False}, "tracking": {"enabled": False}},
    "route, sessions off": {"router": {"sessions": {"enabled": False}}},
}
#: The "route" service again, each body a later turn of a session of its own (named by
#: metadata.session_id): every request looks its session up, decides and stores it.
STICKY = "route, sticky lookup"
STICKY_TARGET = 0.95  # sticky lookup costs at most 5% of /v1/route throughput (sessions off)
SYSTEM = (
    "You are a coding agent working in the user's repository. You can read and edit files, run "
    "shell commands and tests. Keep changes minimal and consistent with the existing style; "
    "explain what you changed and why. Never commit secrets. When a command fails, read the "
    "error before retrying. Prefer small, reviewable diffs; run the relevant tests after each "
    "change and report their result. Ask before deleting files or rewriting history."
)


def prompts() -> list[str]:
    """``PROMPTS`` test-split prompts spread evenly over the length distribution."""
    texts = sorted((r["text"] for r in read_jsonl(TEST_FILE)), key=len)
    step = len(texts) / PROMPTS
    return [texts[int(i * step + step / 2)] for i in range(PROMPTS)]


def bodies(texts: list[str]) -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}]}
        for t in texts
    ]


def sticky_bodies(texts: list[str]) -> list[dict[str, Any]]:
    """``bodies``, each naming a session of its own (``metadata.session_id``): the same text to
    classify and scan, and from the second round on every request is a stuck turn."""
    return [
        {**body, "metadata": {"session_id": f"bench-{i}"}} for i, body in enumerate(bodies(texts))
    ]


def service_config(
    directory: Path, sections: dict[str, dict[str, Any]] | None = None, **router: Any
) -> Path:
    """The default config with ``router`` fields (and other sections') changed, written to
    ``directory``."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["router"].update(router)
    for section, values in (sections or {}).items():
        if section == "router":
            raw["router"].update(values)
            continue
        raw[section].update(values)
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def service_env(directory: Path) -> dict[str, str]:
    """The decision log and MLflow store in ``directory``, never the repo's own."""
    return {
        "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{directory / 'decisions.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}",
    }


def run() -> dict[str, Any]:
    texts = prompts()
    samples: dict[str, list[WrkResult]] = {name: [] for name in (*APPS, STICKY)}
    cpu: dict[str, list[float]] = {name: [] for name in samples}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-route-")))
        script = write_script(bodies(texts), directory=scratch)
        scripts = {STICKY: write_script(sticky_bodies(texts), directory=scratch)}
        ports = {name: free_port() for name in APPS}
        pids: dict[str, int] = {}
        bare = stack.enter_context(
            procs.spawn(
                procs.python_module(
                    "tests.bench.bare_app", "--port", str(ports["bare"]), "--log-level", LOG_LEVEL
                ),
                scratch / "bare.log",
            )
        )
        urls = {name: f"http://127.0.0.1:{port}/v1/route" for name, port in ports.items()}
        urls[STICKY] = urls["route"]
        procs.wait_until(bare, procs.http_ok(urls["bare"], bodies(texts[:1])[0]), "bare app")
        pids["bare"] = bare.pid
        for name, extra in APPS.items():
            if name == "bare":
                continue
            home = scratch / name.replace(" ", "-")
            home.mkdir()
            config = service_config(home, extra, confidence_threshold=0.0)
            service = stack.enter_context(
                procs.spawn(
                    procs.python_module(
                        "intent_router.service",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(ports[name]),
                        "--workers",
                        "1",
                        "--config",
                        str(config),
                        "--log-level",
                        LOG_LEVEL,
                    ),
                    home / "service.log",
                    env=service_env(home),
                )
            )
            # /readyz: the worker is up (litellm is not loaded: /v1/route never calls it).
            procs.wait_until(service, procs.http_ok(f"http://127.0.0.1:{ports[name]}/readyz"), name)
            pids[name] = service.pid
        pids[STICKY] = pids["route"]
        for name, url in urls.items():  # warm up (and open the sticky sessions)
            run_wrk(url, scripts.get(name, script), 2.0, CONNECTIONS)
        for _ in range(ROUNDS):
            for name, url in urls.items():
                before = _own_cpu_s(pids[name])
                result = run_wrk(url, scripts.get(name, script), SECONDS, CONNECTIONS)
                cpu[name].append(1e6 * (_own_cpu_s(pids[name]) - before) / max(result.requests, 1))
                samples[name].append(result)
        # Every routed request must be a local decision (no escalation was measured), and
        # every sticky one a stuck turn.
        sources = _sources(urls["route"], bodies(texts))
        sessions = _sessions(urls[STICKY], sticky_bodies(texts))
    return _summary(samples, cpu, texts, sources, sessions, _session_turn_cpu_us(texts))


def _session_turn_cpu_us(texts: list[str], turns: int = 20_000) -> float:
    """CPU (us) of a sticky turn's session work alone, in this process: name the session,
    look it up in the in-process store, decide, settle and store it (what a stuck /v1/route
    request adds). Steadier than the difference of two services' figures on a loaded machine."""
    import asyncio
    import time

    from intent_router.config import load_config
    from intent_router.routing.session_store import InProcessSessions
    from intent_router.routing.sessions import decide, name_session, settle
    from intent_router.types import Proposal

    config = load_config(DEFAULT_CONFIG)
    store, chain = InProcessSessions(config.sessions.max_sessions), config.policy["debugging"]

    async def work() -> float:
        started = time.process_time()
        for i in range(turns):
            session = name_session(
                header=None,
                metadata=f"bench-{i % len(texts)}",
                client=None,
                system=SYSTEM,
                first_user=texts[i % len(texts)],
                user_turns=2,
            )
            assert session is not None
            choice = decide(
                await store.get(session.key),
                Proposal("general", 0.9, chain),
                time.time(),
                config.sessions,
            )
            await store.put(session.key, settle(choice, choice.state.deployment)[0])
        return (time.process_time() - started) * 1e6 / turns

    return asyncio.run(work())


def _own_cpu_s(pid: int) -> float:
    """CPU time (user + system, s) of the serving process alone: with one worker uvicorn serves
    from the process it started in, and its MLflow tracker child flushes on its own clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sessions(url: str, request_bodies: list[dict[str, Any]]) -> dict[str, int]:
    import httpx

    counts: dict[str, int] = {}
    for body in request_bodies:
        outcome = httpx.post(url, json=body, timeout=5).json()["session"]["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _sources(url: str, request_bodies: list[dict[str, Any]]) -> dict[str, int]:
    import httpx

    counts: dict[str, int] = {}
    for body in request_bodies:
        source = httpx.post(url, json=body, timeout=5).json()["source"]
        counts[source] = counts.get(source, 0) + 1
    return counts


def _summary(
    samples: dict[str, list[WrkResult]],
    cpu: dict[str, list[float]],
    texts: list[str],
    sources: dict[str, int],
    sessions: dict[str, int],
    session_cpu_us: float,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rounds": ROUNDS,
        "seconds_per_sample": SECONDS,
        "connections": CONNECTIONS,
        "wrk_threads": 1,
        "uvicorn_log_level": LOG_LEVEL,
        "target_ratio": TARGET_RATIO,
        "prompts": {
            "count": len(texts),
            "median_chars": statistics.median(len(t) for t in texts),
            "max_chars": max(len(t) for t in texts),
            "system_prompt_chars": len(SYSTEM),
        },
        "route_sources": sources,
        "sticky_outcomes": sessions,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "measured": "service: default config, confidence_threshold 0 (no LLM escalation), "
        "decision log + MLflow tracking on (defaults), secret scan on; "
        "bare: Litestar POST returning a constant JSON",
    }
    for name, rows in samples.items():
        results[name] = {
            "rps_median": statistics.median(r.rps for r in rows),
            "p50_ms": statistics.median(r.p50_ms for r in rows),
            "p90_ms": statistics.median(r.p90_ms for r in rows),
            "p99_ms": statistics.median(r.p99_ms for r in rows),
            "rps_samples": [r.rps for r in rows],
            "cpu_us_per_request": statistics.median(cpu[name]),
        }
    for name in (*APPS, STICKY):
        results[name]["ratio_to_bare"] = results[name]["rps_median"] / results["bare"]["rps_median"]
    sticky = results[STICKY]["rps_median"] / results["route, sessions off"]["rps_median"]
    results["ratio_sticky_to_sessions_off"] = sticky
    results["ratio_sticky_to_route"] = (
        results[STICKY]["rps_median"] / results["route"]["rps_median"]
    )
    results["cpu_ratio_sticky_to_sessions_off"] = (
        results[STICKY]["cpu_us_per_request"] / results["route, sessions off"]["cpu_us_per_request"]
    )
    results["session_turn_cpu_us"] = session_cpu_us
    results["session_turn_cpu_share"] = (
        session_cpu_us / results["route, sessions off"]["cpu_us_per_request"]
    )
    results["sticky_target_met"] = sticky >= STICKY_TARGET
    ratio = results["route"]["ratio_to_bare"]
    results["ratio_route_to_bare"] = ratio
    results["target_met"] = ratio >= TARGET_RATIO
    return results


def table(results: dict[str, Any]) -> str:
    p = results["prompts"]
    lines = [
        f"/v1/route vs bare Litestar ({results['rounds']} alternating rounds of "
        f"{results['seconds_per_sample']:.0f} s, wrk 1 thread x {results['connections']} connections, "
        f"1 uvicorn worker, log level {results['uvicorn_log_level']}; medians)",
        f"  {p['count']} test-split prompts (median {p['median_chars']:.0f} chars, max "
        f"{p['max_chars']}) after a {p['system_prompt_chars']}-char system message",
        f"  {results['measured']}; decision sources: {json.dumps(results['route_sources'])}",
        f"  load average at the end (1, 5, 15 min): {results['load_average']}",
        f"{'app':<26}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'vs bare':>9}{'CPU us/req':>12}",
    ]
    for name in (*APPS, STICKY):
        row = results[name]
        lines.append(
            f"{name:<26}{row['rps_median']:>8.0f}{row['p50_ms']:>9.2f}{row['p90_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['ratio_to_bare']:>9.3f}{row['cpu_us_per_request']:>12.0f}"
        )
    lines.append(f"  sticky-lookup outcomes: {json.dumps(results['sticky_outcomes'])}")
    verdict = "PASS" if results["target_met"] else "MISS"
    lines.append(
        f"route (as shipped) / bare throughput ratio {results['ratio_route_to_bare']:.3f} "
        f"(target >= {results['target_ratio']}): {verdict}"
    )
    sticky = "PASS" if results["sticky_target_met"] else "MISS"
    lines.append(
        f"sticky lookup / route with sessions off throughput ratio "
        f"{results['ratio_sticky_to_sessions_off']:.3f} (target >= {STICKY_TARGET}): {sticky}; "
        f"/ route as shipped {results['ratio_sticky_to_route']:.3f}; CPU per request, sticky / "
        f"sessions off: {results['cpu_ratio_sticky_to_sessions_off']:.3f}"
    )
    lines.append(
        f"a sticky turn's session work in-process: {results['session_turn_cpu_us']:.1f} us of CPU, "
        f"{100 * results['session_turn_cpu_share']:.1f}% of /v1/route's CPU per request (sessions off)"
    )
    return "\n".join(lines)
