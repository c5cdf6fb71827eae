"""The fake fleet (one fake per default deployment) and a service pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.fakes.provider_fleet import FakeProvider
from tests.integration.service_process import running_service

KEYS = {"CLOUDFLARE_API_KEY": "cf-k", "TOGETHER_API_KEY": "tg-k", "ANTHROPIC_API_KEY": "an-k",
        "OPENAI_API_KEY": "oa-k"}
FAKES = {"kimi-k2.6": "kimi", "kimi-k2.6-together": "together", "claude-sonnet-4": "claude",
         "gpt-4o": "gpt", "qwen-32b-local": "ollama"}
CLOUD = ("kimi", "together", "claude", "gpt")
OOM = "model requires more system memory (21.5 GiB) than is available (15.2 GiB)"


@dataclass
class Setup:
    url: str
    fakes: dict[str, FakeProvider]

    def chat(self, model: str, text: str = "hello", **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=30)

    def calls(self, name: str) -> int:
        return len(self.fakes[name].requests)


def fleet_config(tmp_path: Path, fakes: dict[str, FakeProvider], router: dict[str, Any] | None = None,
                 deployments: dict[str, dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """The bundled config pointed at the fakes, with ``router``, ``deployments`` and other
    sections (``extra``) updated; written to ``tmp_path/router.yaml``."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for deployment, fake in FAKES.items():
        spec = raw["deployments"][deployment]
        if fake == "claude":
            spec.update(api_base=fakes[fake].url, timeout_s=3)  # litellm's Anthropic path
        else:
            spec.update(api_base=f"{fakes[fake].url}/v1", api_style="openai", timeout_s=3)
        spec.update((deployments or {}).get(deployment, {}))
    raw["router"].update({"confidence_threshold": 0.0, "request_deadline_s": 10,
                          "cooldown": {"failures": 3, "seconds": 60}, **(router or {})})
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
def fleet_service(tmp_path: Path, router: dict[str, Any] | None = None,
                  deployments: dict[str, dict[str, Any]] | None = None,
                  ready: bool = False, extra: dict[str, Any] | None = None,
                  env: dict[str, str] | None = None) -> Iterator[Setup]:
    """The fleet and a service over it; ``ready`` waits until litellm (Anthropic's path) is loaded."""
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        path = fleet_config(tmp_path, fakes, router, deployments, extra)
        url = stack.enter_context(running_service(path, env={**KEYS, **(env or {})}, ready=ready))
        yield Setup(url, fakes)
