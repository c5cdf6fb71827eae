"""The in-process service leaves the environment as it found it, even when started inside a
test whose own fixtures set the provider keys (SharedFleets.get starts services lazily): a key
left behind would reach the child processes of later test modules (a keyless service that
suddenly has keys)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests import loopback
from tests.integration.fleet_service import KEYS
from tests.integration.inprocess import provide_keys, serving_in_process
from tests.integration.service_process import untracked_config


def test_a_service_started_inside_a_test_leaves_no_key_behind(tmp_path: Path) -> None:
    config = untracked_config(tmp_path)
    the_tests_own = pytest.MonkeyPatch()  # plays a test's autouse provide_keys
    provide_keys(the_tests_own, KEYS)
    with ExitStack() as module:  # plays a module-scoped SharedFleets
        url = module.enter_context(serving_in_process(config, env=KEYS))
        assert loopback.get(f"{url}/healthz").status_code == 200
        the_tests_own.undo()  # the test ends; the module's service runs on
        assert not set(KEYS) & set(os.environ)
    assert not set(KEYS) & set(os.environ)  # and the module ends
