"""Start the real service in a child process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests import loopback
from tests.eventually import eventually
from tests.fakes.hostile_faults import closed_port_url


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> tuple[float, float]:
    """Poll ``condition`` until it holds; return how long that took and the slowest single
    check. A check is a request to the service, so the slowest one measures how late the
    service (and this process) ran meanwhile: bounds on propagation take it as their margin,
    so that a loaded machine does not fail them and a quiet one still holds them tight."""
    started = time.monotonic()
    slowest = 0.0

    def timed() -> bool:
        nonlocal slowest
        before = time.monotonic()
        held = condition()
        slowest = max(slowest, time.monotonic() - before)
        return held

    eventually(timed, timeout_s=timeout_s)
    return time.monotonic() - started, slowest


STARTUP_DEADLINE_S = 180


def wait_until_ready(url: str, timeout_s: float = STARTUP_DEADLINE_S) -> None:
    """Until /readyz answers 200 (litellm loaded)."""
    eventually(
        lambda: loopback.get(f"{url}/readyz", timeout=5).status_code,
        lambda status: status == 200,
        timeout_s=timeout_s,
        interval_s=0.1,
        what=f"{url}/readyz answering 200",
    )


def untracked_config(directory: Path, litellm: bool = False) -> Path:
    """The bundled config with MLflow tracking off, as ``directory/router.yaml``, for a test
    that calls no provider; unless ``litellm``, no deployment is on litellm either (those it
    would serve point at a closed loopback port instead). Its service is spared the tracker
    process and, when it stops, the tracker's last flush (MLflow's import and a fresh MLflow
    store), and litellm's import: seconds of CPU each."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["tracking"]["enabled"] = False
    for spec in raw["deployments"].values():
        if not litellm and spec.get("api_style", "litellm") == "litellm":
            spec.update(api_style="openai", api_base=closed_port_url())
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    config: Path | None = None,
    env: dict[str, str] | None = None,
    ready: bool = False,
    workers: int = 1,
    log: Path | None = None,
    log_level: str = "warning",
    cwd: Path | None = None,
) -> Iterator[str]:
    """Yield the base URL of the service (``python -m intent_router.service``, what
    ``make serve`` runs) on a free loopback port; stop it afterwards.

    Waits for /healthz, or with ``ready`` for /readyz (litellm loaded: tests that call a
    litellm deployment need it, or their first call would wait seconds for the import).
    The service's output goes to ``log`` (default: a scratch file) at uvicorn's ``log_level``;
    ``cwd`` is its working directory (where MLflow's ./mlruns lands)."""
    with running_services(1, config, env, ready, workers, log, log_level, cwd) as (url,):
        yield url


@contextmanager
def running_services(
    count: int,
    config: Path | None = None,
    env: dict[str, str] | None = None,
    ready: bool = False,
    workers: int = 1,
    log: Path | None = None,
    log_level: str = "warning",
    cwd: Path | None = None,
) -> Iterator[list[str]]:
    """``count`` services as ``running_service`` starts one (one ``log`` is shared), started
    together and stopped together: their starts overlap instead of adding up."""
    processes: list[_Service] = []
    try:
        processes = [
            _Service(config, env, workers, log, log_level, cwd, append=i > 0) for i in range(count)
        ]
        for process in processes:
            process.wait_until_up(ready)
        yield [process.url for process in processes]
    finally:
        for process in processes:
            process.process.terminate()
        for process in processes:
            process.stop()


class _Service:
    """One ``python -m intent_router.service`` child process, started at once."""

    def __init__(
        self,
        config: Path | None,
        env: dict[str, str] | None,
        workers: int,
        log: Path | None,
        log_level: str,
        cwd: Path | None,
        append: bool = False,
    ) -> None:
        port = free_port()
        scratch = tempfile.mkdtemp(prefix="intent-router-test-")
        child_env = {
            **os.environ,
            # Never the repo's own stores: the decision log and MLflow go to a scratch directory.
            "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{scratch}/decisions.db",
            "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db",
            **(env or {}),
        }
        if config is not None:
            child_env["INTENT_ROUTER_CONFIG"] = str(config)
        self.log_path = log or Path(scratch) / "service.log"
        self.log_file = self.log_path.open("ab" if append else "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "intent_router.service",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                log_level,
            ],
            # A file, not a pipe: nobody reads a pipe while the service runs, and a full one
            # would block the service's logging threads.
            env=child_env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_up(self, ready: bool) -> None:
        probe = f"{self.url}/readyz" if ready else f"{self.url}/healthz"

        def status() -> int:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited: {self.log_path.read_text(errors='replace')[-2000:]}"
                )
            return loopback.get(probe, timeout=0.5).status_code

        # A generous deadline on the condition: a service that dies is reported at once, and
        # a loaded machine (litellm's import alone took 15 s at load average 15) must not fail
        # a healthy start.
        eventually(
            status,
            lambda code: code == 200,
            timeout_s=STARTUP_DEADLINE_S,
            what=f"{probe} answering 200",
            ignoring=(httpx.HTTPError,),
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()
