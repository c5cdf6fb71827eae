"""`make bench`: run every benchmark, print its table and write tests/bench/results/*.json."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import (
    classifier_bench,
    client_bench,
    proxy_bench,
    route_bench,
    startup_bench,
    tokens_bench,
    tracking_bench,
)

RESULTS = Path(__file__).resolve().parent / "results"


BENCHMARKS = {
    "classifier": classifier_bench,
    "tracking": tracking_bench,
    "route": route_bench,
    "proxy": proxy_bench,
    "client": client_bench,
    "startup": startup_bench,
    "tokens": tokens_bench,
}


def main(names: list[str]) -> None:
    """Run the named benchmarks (all when none is named): ``make bench BENCH=tracking``."""
    RESULTS.mkdir(exist_ok=True)
    for name in names or list(BENCHMARKS):
        bench = BENCHMARKS[name]
        results = bench.run()
        results["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
        results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(bench.table(results))
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"wrote {path}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
