"""The fake fleet (one fake per default deployment) and a service pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests import loopback
from tests.fakes.provider_fleet import FakeProvider
from tests.integration.inprocess import serving_in_process
from tests.integration.service_process import running_service, wait_until_ready

KEYS = {
    "CLOUDFLARE_API_KEY": "cf-k",
    "TOGETHER_API_KEY": "tg-k",
    "ANTHROPIC_API_KEY": "an-k",
    "OPENAI_API_KEY": "oa-k",
}
FAKES = {
    "kimi-k2.6": "kimi",
    "kimi-k2.6-together": "together",
    "claude-sonnet-4": "claude",
    "gpt-4o": "gpt",
    "qwen-32b-local": "ollama",
}
CLOUD = ("kimi", "together", "claude", "gpt")
OOM = "model requires more system memory (21.5 GiB) than is available (15.2 GiB)"


@dataclass
class Setup:
    url: str
    fakes: dict[str, FakeProvider]
    database_url: str | None = None
    """The decision log's URL, when the test chose it (``SharedFleets`` always does)."""

    def chat(self, model: str, text: str = "hello", **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return loopback.post(f"{self.url}/v1/chat/completions", json=body, timeout=30)

    def calls(self, name: str) -> int:
        return len(self.fakes[name].requests)

    def metric(self, prefix: str) -> float:
        """The sum of the /metrics samples whose line starts with ``prefix`` (0 if none): a
        test sharing a service compares it before and after, never with an absolute count."""
        text = loopback.get(f"{self.url}/metrics", timeout=30).text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
        )


def fleet_config(
    tmp_path: Path,
    fakes: dict[str, FakeProvider],
    router: dict[str, Any] | None = None,
    deployments: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    litellm: bool = True,
) -> Path:
    """The bundled config pointed at the fakes, with ``router``, ``deployments`` and other
    sections (``extra``) updated; written to ``tmp_path/router.yaml``. MLflow tracking is
    on only when ``extra`` has a ``tracking`` section. Anthropic goes through litellm unless
    ``litellm`` is false: then it is on the pooled path like the others, and the service never
    imports litellm (seconds of CPU at every start, for tests that never call Anthropic)."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for deployment, fake in FAKES.items():
        spec = raw["deployments"][deployment]
        if fake == "claude" and litellm:
            spec.update(api_base=fakes[fake].url, timeout_s=3)  # litellm's Anthropic path
        else:
            spec.update(api_base=f"{fakes[fake].url}/v1", api_style="openai", timeout_s=3)
        spec.update((deployments or {}).get(deployment, {}))
    raw["router"].update(
        {
            "confidence_threshold": 0.0,
            "request_deadline_s": 10,
            "cooldown": {"failures": 3, "seconds": 60},
            **(router or {}),
        }
    )
    # The MLflow tracker (a process of its own, importing MLflow for its flushes) only for the
    # tests that configure it: a second or two of CPU per service that no other test needs.
    raw["tracking"]["enabled"] = "tracking" in (extra or {})
    for section, values in (extra or {}).items():
        raw.setdefault(section, {}).update(values)
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@contextmanager
def fake_fleet() -> Iterator[dict[str, FakeProvider]]:
    """One running fake per default deployment, by fake name."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(FakeProvider(name)) for name in FAKES.values()}


@contextmanager
def fleet_service(
    tmp_path: Path,
    router: dict[str, Any] | None = None,
    deployments: dict[str, dict[str, Any]] | None = None,
    ready: bool = False,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    litellm: bool = True,
    in_process: bool = False,
) -> Iterator[Setup]:
    """The fleet and a service over it; ``ready`` waits until litellm (Anthropic's path) is loaded.
    ``in_process``: the app served in this process (tests/integration/inprocess.py: its tests
    set ``KEYS`` for each test with ``provide_keys``), not ``python -m intent_router.service``."""
    serve = serving_in_process if in_process else running_service
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        path = fleet_config(tmp_path, fakes, router, deployments, extra, litellm)
        url = stack.enter_context(serve(path, env={**KEYS, **(env or {})}, ready=ready))
        yield Setup(url, fakes, (env or {}).get("INTENT_ROUTER_DATABASE_URL"))


class SharedFleets:
    """Fleets and services kept for one module's tests, one per distinct configuration.

    A service start costs seconds of CPU (and litellm's import, with ``ready``, more), so the
    tests that do not need a fresh process share one: ``get`` with the same arguments returns
    the same service, its fakes reset (no script, no chaos, no recorded request). What such a
    test must not rely on: counters and metrics starting at zero (compare before and after,
    ``Setup.metric``), or a cooldown state left by no one (give the shared configuration a
    failure count no test reaches; a Retry-After a test provokes, it waits out). A test about
    process state from a fresh start keeps its own ``fleet_service``. Use as a module-scoped
    fixture::

        @pytest.fixture(scope="module")
        def fleets(tmp_path_factory):
            with SharedFleets(tmp_path_factory.mktemp("fleets")) as shared:
                yield shared

    ``in_process``: each service is the app served in this process (see ``fleet_service``).
    """

    def __init__(self, home: Path, in_process: bool = False) -> None:
        self._home = home
        self._in_process = in_process
        self._stack = ExitStack()
        self._running: dict[str, Setup] = {}

    def __enter__(self) -> SharedFleets:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def get(
        self,
        router: dict[str, Any] | None = None,
        deployments: dict[str, dict[str, Any]] | None = None,
        ready: bool = False,
        extra: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        litellm: bool = True,
    ) -> Setup:
        key = json.dumps([router, deployments, extra, env, litellm], sort_keys=True, default=str)
        if key not in self._running:
            home = self._home / f"service-{len(self._running)}"
            home.mkdir()
            env = {
                "INTENT_ROUTER_DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
                **(env or {}),
            }
            self._running[key] = self._stack.enter_context(
                fleet_service(
                    home, router, deployments, ready, extra, env, litellm, self._in_process
                )
            )
        setup = self._running[key]
        if ready:
            wait_until_ready(setup.url)
        for fake in setup.fakes.values():
            fake.reset()
        return setup
