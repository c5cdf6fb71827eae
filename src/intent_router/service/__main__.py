"""``python -m intent_router.service``: validate the config, then serve with uvicorn.

    python -m intent_router.service --config router.yaml --workers 4 --port 8000

A bad config stops here with the field named (exit status 2), before any worker starts.
The MLflow serving tracker runs as a process of its own beside the workers
(``python -m intent_router.tracking``), so MLflow never loads into a worker.
With several workers, Prometheus metrics are aggregated across them through a fresh
multiprocess directory, so /metrics answers for the whole service from any worker.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Literal, TypedDict

from intent_router.config import RouterConfig, load_config
from intent_router.exceptions import ConfigError
from intent_router.settings import ServiceSettings


class _ServerOptions(TypedDict):
    loop: Literal["uvloop"]
    http: Literal["httptools"]


#: uvicorn on its C event loop and HTTP parser (both pinned dependencies) rather than asyncio's
#: loop and the pure-Python h11: the server's share of each request is the bench's baseline too.
SERVER: _ServerOptions = {"loop": "uvloop", "http": "httptools"}


def parse_args(
    argv: list[str] | None = None, settings: ServiceSettings | None = None
) -> argparse.Namespace:
    settings = settings or ServiceSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m intent_router.service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=settings.config_path,
        help="router config file (default: $INTENT_ROUTER_CONFIG or the bundled one)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--keep-alive",
        type=float,
        default=75.0,
        help="seconds an idle client connection stays open (default 75: longer "
        "than load balancers' and clients' own idle timeouts, so the client "
        "side closes first and never sends on a connection being closed)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off: the decision log and /metrics cover requests, "
        "and a line per request costs about 7%% of /v1/route's throughput)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    settings = ServiceSettings.from_env()
    args = parse_args(argv, settings)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"intent-router: bad config {args.config}: {exc}", file=sys.stderr)
        return 2
    if (
        args.workers > 1
        and config.governance.client_keys
        and not config.governance.resolved_redis_url(settings.redis_url)
    ):
        print(
            f"intent-router: warning: {args.workers} workers count rate limits and budgets each on "
            "their own; set governance.redis_url or $INTENT_ROUTER_REDIS_URL to share them",
            file=sys.stderr,
        )
    for line in _summary(args.config.resolve(), config, settings):
        print(f"intent-router: {line}", file=sys.stderr, flush=True)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="intent-router-metrics-")
    tracker = _start_tracker(config, args.config)
    # The workers are processes of their own: they read these settings back from the environment.
    # Their root logger follows --log-level; with the tracker a process beside them, they leave
    # MLflow to it.
    workers = replace(
        settings,
        config_path=args.config.resolve(),
        log_level=args.log_level,
        tracker_process=settings.tracker_process or tracker is not None,
    )
    os.environ.update(workers.to_env())
    import uvicorn

    try:
        uvicorn.run(
            "intent_router.service.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_keep_alive=args.keep_alive,
            **SERVER,
        )
    finally:
        if tracker is not None:
            tracker.terminate()  # it flushes once more, then exits
            try:
                tracker.wait(timeout=40)
            except subprocess.TimeoutExpired:
                tracker.kill()
    return 0


def _summary(path: Path, config: RouterConfig, settings: ServiceSettings) -> list[str]:
    """The startup summary (config, model, usable deployments, missing keys, stores), once per
    service rather than once per worker."""
    from intent_router.classifier import DEFAULT_MODELS_DIR
    from intent_router.exceptions import ModelError
    from intent_router.model_contract import load_metadata
    from intent_router.service.readiness import startup_summary

    try:
        metadata = load_metadata(DEFAULT_MODELS_DIR / "intent.json")
    except ModelError as exc:
        return [f"config {path}", f"model: {exc}"]
    return startup_summary(
        path,
        config,
        metadata.model_version,
        metadata.confidence_threshold,
        database_url=settings.database_url,
    )


def _start_tracker(config: RouterConfig, path: Path) -> subprocess.Popen[bytes] | None:
    """The MLflow serving tracker as a process of its own (python -m intent_router.tracking)."""
    if not (config.tracking.enabled and config.storage.decision_log):
        return None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "intent_router.tracking",
            "--config",
            str(path),
            "--parent",
            str(os.getpid()),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
