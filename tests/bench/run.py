"""`make bench`: run every benchmark, print its table and write tests/bench/results/*.json."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from tests.bench import classifier_bench

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    results = classifier_bench.run()
    results["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
    results["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(classifier_bench.table(results))
    path = RESULTS / "classifier.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
