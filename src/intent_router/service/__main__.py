"""``python -m intent_router.service``: validate the config, then serve with uvicorn.

    python -m intent_router.service --config router.yaml --workers 4 --port 8000

A bad config stops here with the field named (exit status 2), before any worker starts.
With several workers, Prometheus metrics are aggregated across them through a fresh
multiprocess directory, so /metrics answers for the whole service from any worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from intent_router.config import DEFAULT_CONFIG, load_config
from intent_router.exceptions import ConfigError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m intent_router.service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path,
                        default=Path(os.environ.get("INTENT_ROUTER_CONFIG") or DEFAULT_CONFIG),
                        help="router config file (default: $INTENT_ROUTER_CONFIG or the bundled one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true",
                        help="log every request (off: the decision log and /metrics cover requests, "
                             "and a line per request costs about 7%% of /v1/route's throughput)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"intent-router: bad config {args.config}: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and config.governance.client_keys and not config.governance.resolved_redis_url():
        print(f"intent-router: warning: {args.workers} workers count rate limits and budgets each on "
              "their own; set governance.redis_url or $INTENT_ROUTER_REDIS_URL to share them",
              file=sys.stderr)
    os.environ["INTENT_ROUTER_CONFIG"] = str(args.config.resolve())
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="intent-router-metrics-")
    import uvicorn

    uvicorn.run("intent_router.service.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
