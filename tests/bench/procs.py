"""Child processes for the benchmarks: each in its own process group, output to a file,
stopped (group and all) when the ``with`` block ends, whatever happened in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    """``time.perf_counter()`` just before the process was spawned."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Child]:
    """Start ``argv`` in a new session (its own process group); on exit SIGTERM the group,
    then SIGKILL whatever is left after 10 s."""
    child_env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    log_file = log.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env=child_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        yield Child(process, log, started)
    finally:
        _stop_group(process)
        log_file.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no straggler of its group survives it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


def wait_until(
    child: Child,
    probe: Callable[[], bool],
    what: str,
    timeout_s: float = 90.0,
    every_s: float = 0.05,
) -> float:
    """Poll ``probe`` until it is true; seconds since the child was spawned."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{what}: process exited ({child.process.returncode}): {child.tail()}"
            )
        try:
            if probe():
                return time.perf_counter() - child.started
        except httpx.HTTPError:
            pass
        time.sleep(every_s)
    raise RuntimeError(f"{what}: not ready in {timeout_s:.0f} s: {child.tail()}")


def http_ok(
    url: str, json: object | None = None, headers: dict[str, str] | None = None
) -> Callable[[], bool]:
    """A probe: GET ``url`` (POST ``json`` when given) answers 200."""

    def probe() -> bool:
        if json is None:
            return httpx.get(url, timeout=1.0, headers=headers).status_code == 200
        return httpx.post(url, json=json, timeout=2.0, headers=headers).status_code == 200

    return probe


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``python -m module`` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of one process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU time (user + system, seconds) used so far by ``pid`` and its live descendants: on a
    shared machine, CPU per request moves far less with the load than requests per second."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for process in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for child in children(pid):
            found += [child, *_descendants(child)]
    except FileNotFoundError:
        pass
    return found


def cmdline(pid: int) -> str:
    """A process's command line, arguments separated by spaces ("" once it is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except FileNotFoundError:
        return ""
