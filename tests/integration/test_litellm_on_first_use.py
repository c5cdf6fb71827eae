"""A worker loads litellm (about 130 MB) only when a call goes to a deployment that needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# In a fresh interpreter: this test process may have imported litellm already.
SCRIPT = """
import sys
from litestar.testing import TestClient
from intent_router.service.app import create_app

with TestClient(create_app()) as client:
    ready = client.get("/readyz")
    routed = client.post("/v1/route", json={"prompt": "rename getUser to fetchUser everywhere"})
    print(ready.status_code, ready.json()["status"], routed.status_code, routed.json()["chain"][0],
          "litellm" in sys.modules)
"""


def test_the_default_config_routes_and_is_ready_without_loading_litellm(tmp_path: Path) -> None:
    env = {
        "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
        "INTENT_ROUTER_TRACKER": "process",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, readiness, routed, first, litellm_loaded = done.stdout.split()
    # The default chain starts at Cloudflare, a litellm deployment: routing to it calls nothing.
    assert (status, readiness, routed, first) == ("200", "degraded", "200", "kimi-k2.6")
    assert litellm_loaded == "False"
