"""Serve the real app (``create_app``) in this test process, on a free loopback port.

For the tests that are about what the service answers, not about its process: they save the
seconds a ``python -m intent_router.service`` child spends importing and loading the model
(``service_process.running_service`` stays for the tests about the process: workers, the
tracker process, startup output, shared state between services).

How: uvicorn, on the loop and HTTP parser the service runs with (``SERVER``), in a background
thread, serving ``create_app(settings=...)``; the tests keep talking HTTP over a socket (plain
httpx, the OpenAI SDK, litellm, schemathesis, a client leaving mid-stream), with no change but
how the service starts. Litestar's ``TestClient`` was the other candidate, measured on one
app (untracked bundled config, model modules already imported, a loaded 2-core machine):
entering it took 0.23 s against 0.49 s to start and 0.36 s to stop uvicorn's thread, and
200 /v1/route calls 0.30 s against 0.29 s. Half a second a service is not worth what it
costs: it is not a server (no HTTP parser enforcing the body limit on a chunked upload, no
socket a client can drop mid-stream) and every test would trade its URL for a client object.

What differs from the child process, and how it is kept from leaking into other tests:

- Provider keys: the service reads them from ``os.environ`` (at start: which deployments may
  be called, so whether litellm loads; then at every call), and the autouse fixture of
  tests/conftest.py clears them before every test. The keys in ``env`` are set while the
  service starts and put back as they were once it has, and a module serving in-process sets
  them for each of its tests with ``provide_keys(monkeypatch, keys)`` (an autouse fixture of
  its own): nothing is left in the environment after a test or a module.
- Logging: Litestar's ``LoggingConfig`` configures this process's root logger (a queue handler,
  its listener thread writing to the ``sys.stderr`` of the moment, the root level) and the
  app sets httpx's level. While the app is built, ``sys.stderr`` is the ``log`` file, so the
  service's log lines land there as the child's stderr did; when the service stops, the
  listener is stopped (its lines flushed) and every logger is put back as it was
  (``_kept_logging``): a test-only reset.
- The decision log goes to a scratch SQLite file unless ``INTENT_ROUTER_DATABASE_URL`` says
  otherwise; MLflow tracking must be off (its tracker would run as a thread of this process
  and write where ``MLFLOW_TRACKING_URI`` points): a test about tracking uses the process.
- Prometheus: each app has a registry of its own (service/metrics.py): nothing to reset.
- One interpreter: the service shares this process's modules with the test (a test whose own
  client is litellm drives the litellm the router calls through; the router sets no litellm
  global but ``suppress_debug_info`` and ``telemetry``), and its interpreter lock: a test that
  needs the service to run beside a CPU-bound client, or a crash to stay contained, uses the
  process.
"""

from __future__ import annotations

import atexit
import logging
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from logging.handlers import QueueHandler
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from intent_router.config import load_config
from intent_router.service.__main__ import SERVER
from intent_router.service.app import create_app
from intent_router.settings import (
    CONFIG_ENV,
    DATABASE_URL_ENV,
    LOG_LEVEL_ENV,
    ServiceSettings,
)
from tests.eventually import eventually
from tests.integration.service_process import STARTUP_DEADLINE_S, wait_until_ready


def provide_keys(monkeypatch: pytest.MonkeyPatch, keys: Mapping[str, str]) -> None:
    """Set the provider keys an in-process service reads, for one test."""
    for name, value in keys.items():
        monkeypatch.setenv(name, value)


@contextmanager
def serving_in_process(
    config: Path,
    env: Mapping[str, str] | None = None,
    ready: bool = False,
    log: Path | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Yield the base URL of ``create_app`` served in this process; stop it afterwards.

    ``env`` is what the child process would get: ``INTENT_ROUTER_*`` settings, and provider
    keys, set in this process's environment while the service runs (see ``provide_keys``);
    ``ready`` waits for /readyz (litellm loaded), ``log`` receives the service's log lines at
    ``log_level`` (default: a scratch file)."""
    if load_config(config).tracking.enabled:
        raise ValueError("in-process services run with tracking off: use running_service")
    scratch = Path(tempfile.mkdtemp(prefix="intent-router-inprocess-"))
    env = dict(env or {})
    settings = ServiceSettings.from_env(
        {
            DATABASE_URL_ENV: f"sqlite:///{scratch / 'decisions.db'}",
            **env,
            CONFIG_ENV: str(config),
            LOG_LEVEL_ENV: log_level,
        }
    )
    with ExitStack() as stack:
        stack.enter_context(_kept_logging())
        log_file = stack.enter_context((log or scratch / "service.log").open("a", buffering=1))
        # The keys are set while the service starts (which deployments may be called decides
        # whether litellm loads) and put back as they were once it has: set for its whole life,
        # a service started inside a test (SharedFleets.get) would restore, at the end of the
        # module, the keys that test's own ``provide_keys`` had set, leaving them in this
        # process's environment for the child processes of later test modules.
        with pytest.MonkeyPatch.context() as keys:
            provide_keys(keys, {k: v for k, v in env.items() if not k.startswith("INTENT_ROUTER_")})
            stderr, sys.stderr = sys.stderr, log_file
            try:
                app = create_app(config_path=config, settings=settings)
            finally:
                sys.stderr = stderr
            url = stack.enter_context(_served(app, log_level))
            if ready:
                wait_until_ready(url)
        yield url


@contextmanager
def _served(app: Any, log_level: str) -> Iterator[str]:
    """uvicorn serving ``app`` from a thread, as ``python -m intent_router.service`` would
    (no access log, its loop and parser), until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,  # this process's logging is the app's (Litestar's), as in the child
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
            **SERVER,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"in-process service :{port}"
    )
    thread.start()
    try:
        eventually(
            lambda: server.started or not thread.is_alive(),
            timeout_s=STARTUP_DEADLINE_S,
            interval_s=0.01,
            what="the in-process service started",
        )
        if not server.started:
            raise RuntimeError("the in-process service did not start (its log says why)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def _kept_logging() -> Iterator[None]:
    """Put every logger back as it was (level, propagation, handlers), and stop the queue
    listeners the app's logging config started. pytest's own capture handlers, which it adds
    and removes around each test phase, are left to pytest."""
    kept = {
        id(lg): (lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in _loggers()
    }
    try:
        yield
    finally:
        queues = {
            handler
            for lg in _loggers()
            for handler in lg.handlers
            if isinstance(handler, QueueHandler)
            and (id(lg) not in kept or handler not in kept[id(lg)][2])
        }
        for handler in queues:
            listener = getattr(handler, "listener", None)
            if listener is not None and listener._thread is not None:
                listener.stop()  # flushes the queue to the log file
                atexit.unregister(listener.stop)
            handler.close()
        for lg in _loggers():
            if id(lg) not in kept:
                if queues.intersection(lg.handlers):  # one the app configured (``litestar``)
                    lg.handlers[:] = [h for h in lg.handlers if h not in queues]
                    lg.setLevel(logging.NOTSET)
                    lg.propagate = True
                continue
            _, level, handlers, propagate, disabled = kept[id(lg)]
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
            for handler in list(lg.handlers):
                if handler in queues:
                    lg.removeHandler(handler)
            for handler in handlers:
                if handler not in lg.handlers and not type(handler).__module__.startswith(
                    "_pytest"
                ):
                    lg.addHandler(handler)


def _loggers() -> list[logging.Logger]:
    """The root logger and every logger made so far."""
    made = list(logging.Logger.manager.loggerDict.values())
    return [logging.getLogger(), *(lg for lg in made if isinstance(lg, logging.Logger))]
