"""`make serve WORKERS=N` (python -m intent_router.service): several workers, one service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.eventually import eventually
from tests.integration.service_process import running_service, untracked_config

ROUTE_LINE = 'intent_router_requests_total{endpoint="route",intent="refactoring",source="model",status="200"}'


def _metric(text: str, line_start: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


def test_two_workers_serve_and_report_metrics_for_the_whole_service(tmp_path: Path) -> None:
    with running_service(untracked_config(tmp_path), workers=2) as url:
        workers: set[int] = set()

        def answered_by() -> set[int]:
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them
                workers.add(fresh.get(f"{url}/healthz").json()["worker"])
            return workers

        eventually(
            answered_by,
            lambda seen: len(seen) == 2,
            timeout_s=20,
            interval_s=0,
            what="both workers answering",
        )
        for _ in range(30):
            with httpx.Client() as fresh:
                answer = fresh.post(
                    f"{url}/v1/route", json={"prompt": "rename getUser to fetchUser everywhere"}
                )
                assert answer.json()["intent"] == "refactoring"
        counts = set()
        for _ in range(8):  # whichever worker answers, it reports both workers' requests
            with httpx.Client() as fresh:
                counts.add(_metric(fresh.get(f"{url}/metrics").text, ROUTE_LINE))
        assert counts == {30.0}


def test_a_bad_config_stops_the_service_before_it_starts(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["deployments"]["gpt-4o"]["timeout_s"] = "fast"
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "intent_router.service",
            "--config",
            str(path),
            "--port",
            "1",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "deployments.gpt-4o.timeout_s: must be a number, got a string" in done.stderr
