"""``python -m intent_router.tracking --config router.yaml``: the MLflow serving tracker in a
process of its own. ``python -m intent_router.service`` starts one beside its workers, so
MLflow (about 165 MB and seconds of import) never loads into a worker and its flushes never
compete with requests for a worker's interpreter.

It flushes every ``tracking.flush_interval_s`` until SIGTERM or SIGINT, then flushes once
more and exits; it also exits when the process that started it goes away. Several trackers
(one per instance) share the work through the lease in the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from intent_router.config import load_config
from intent_router.decisions import DecisionStore
from intent_router.exceptions import ConfigError
from intent_router.settings import ServiceSettings
from intent_router.tracking.serving import ServingTracker


def main(argv: list[str] | None = None) -> int:
    settings = ServiceSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m intent_router.tracking",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=settings.config_path)
    parser.add_argument(
        "--parent", type=int, default=None, help="exit when this process id is no longer our parent"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"intent-router tracker: bad config {args.config}: {exc}", file=sys.stderr)
        return 2
    if not (config.tracking.enabled and config.storage.decision_log):
        return 0
    store = DecisionStore(config.storage.resolved_url(settings.database_url))
    tracker = ServingTracker(
        store,
        config.tracking.mlflow_tracking_uri,
        config.tracking.flush_interval_s,
        max_traces_per_minute=config.tracking.max_traces_per_minute,
    )
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    tracker.start()
    try:
        while not done.wait(1.0):
            if args.parent is not None and os.getppid() != args.parent:
                break  # the service died without stopping us
    finally:
        tracker.stop(timeout_s=30)
        store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
