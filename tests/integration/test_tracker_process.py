"""The MLflow serving tracker runs beside the workers as a process of its own, and never
outlives the service that started it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests import loopback
from tests.bench import procs
from tests.eventually import eventually
from tests.integration.fleet_service import fleet_service

TRACKER_NOTICE_S = 1.0  # python -m intent_router.tracking checks its parent every second
TRACKER_STOP_TIMEOUT_S = 30.0  # ... and gives its last flush this long


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_tracker_is_a_process_of_its_own_and_dies_with_the_service(tmp_path: Path) -> None:
    with fleet_service(tmp_path, extra={"tracking": {"flush_interval_s": 1}}, litellm=False) as s:
        service = loopback.get(f"{s.url}/healthz").json()[
            "worker"
        ]  # one worker: the service itself
        trackers = [
            c for c in procs.children(service) if "intent_router.tracking" in procs.cmdline(c)
        ]
        assert len(trackers) == 1
        tracker = trackers[0]
        assert s.chat("auto", "write a python function that parses dates").status_code == 200
        # The first flush with rows loads MLflow (and pandas, pyarrow): on a quiet machine
        # within a few seconds.
        eventually(
            lambda: "pyarrow" in Path(f"/proc/{tracker}/maps").read_text(),
            timeout_s=60,
            interval_s=0.2,
            what="pyarrow loaded by the tracker",
        )
        assert "pyarrow" not in Path(f"/proc/{service}/maps").read_text()  # never in a worker
        os.kill(service, signal.SIGKILL)  # no chance to stop the tracker itself
        # It notices within a second, then flushes once more (for at most its stop timeout,
        # 30 s: MLflow on a loaded machine can take seconds) and exits.
        eventually(
            lambda: not _alive(tracker),
            timeout_s=TRACKER_NOTICE_S + TRACKER_STOP_TIMEOUT_S + 10,
            interval_s=0.1,
            what="the tracker exited",
        )
