"""--log-level reaches every logger of a worker (Litestar sets the root logger to INFO)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import loopback
from tests.integration.fleet_service import KEYS, fake_fleet, fleet_config
from tests.integration.service_process import running_service


@pytest.mark.parametrize(("level", "expect_info"), [("warning", False), ("info", True)])
def test_the_log_level_applies_to_the_application_loggers(
    tmp_path: Path, level: str, expect_info: bool
) -> None:
    log = tmp_path / "service.log"
    with fake_fleet() as fakes:
        config = fleet_config(tmp_path, fakes, litellm=False)
        with running_service(config, env=KEYS, log=log, log_level=level) as url:
            body = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hello"}]}
            assert (
                loopback.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code
                == 200
            )
            # A logger of the application at INFO, the kind Litestar's root INFO let through.
            routed = loopback.post(f"{url}/v1/route", json={"prompt": "hi"}).status_code
            assert routed == 200
    text = log.read_text(errors="replace")
    assert ("INFO" in text) is expect_info, text[-2000:]
