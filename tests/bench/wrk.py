"""Load from wrk (Debian package ``wrk``, installed by ``make bench``): POST bodies from a Lua
script written at run time, results (requests/s, latency percentiles, errors) read back as
JSON printed by the script's ``done`` hook."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local bodies = {
%(bodies)s
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_script(
    bodies: Sequence[object], headers: dict[str, str] | None = None, directory: Path | None = None
) -> Path:
    """A wrk Lua script that POSTs ``bodies`` (JSON-encoded) in turn."""
    lines = ",\n".join("  " + _lua_string(json.dumps(b)) for b in bodies)
    header_lines = "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()
    )
    fd, name = tempfile.mkstemp(prefix="wrk-", suffix=".lua", dir=directory)
    with open(fd, "w") as out:
        out.write(_SCRIPT % {"bodies": lines, "headers": header_lines})
    return Path(name)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError(
            "wrk is not installed: `make bench` installs it (apt-get install -y wrk)"
        )
    return found


def run_wrk(
    url: str, script: Path, seconds: float, connections: int, threads: int = 1
) -> WrkResult:
    """Run wrk against ``url`` with ``connections`` keep-alive connections for ``seconds``.

    Any non-2xx answer or socket error fails the bench: a fast error is not a fast answer."""
    argv = [
        wrk_binary(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}"
        )
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = raw["status_errors"] + raw["socket_errors"]
    if errors:
        raise RuntimeError(
            f"wrk against {url}: {raw['status_errors']} non-2xx answers, "
            f"{raw['socket_errors']} socket errors:\n{done.stdout[-1500:]}"
        )
    return WrkResult(
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1e3,
        p90_ms=raw["p90_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        requests=raw["requests"],
        errors=errors,
    )
