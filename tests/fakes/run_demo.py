"""`make demo`: the fake provider fleet, the service on it, a handful of requests, and how each
was routed, including a fallback after an injected 529. Everything stays on 127.0.0.1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests.fakes.provider_fleet import FakeProvider, Status
from tests.integration.service_process import running_service

PROMPTS = [
    ("write a Python function that parses ISO 8601 dates into datetime objects", None),
    ("rename getUser to fetchUser everywhere", None),
    ("should we split our monolith into microservices or keep a modular monolith?", None),
    ("is this regex vulnerable to ReDoS? ^(a+)+$", Status(529, "Overloaded")),
    ("TypeError: Cannot read properties of undefined (reading 'map') in my React list", None),
    ("add docstrings to every public function in utils.py", None),
    ("thanks, that worked!", None),
]
DEMO_KEYS = {
    "CLOUDFLARE_API_KEY": "demo-cf",
    "TOGETHER_API_KEY": "demo-tg",
    "ANTHROPIC_API_KEY": "demo-ant",
    "OPENAI_API_KEY": "demo-oai",
}


def main() -> None:
    with (
        FakeProvider("kimi") as kimi,
        FakeProvider("claude") as claude,
        FakeProvider("gpt") as gpt,
        FakeProvider("together") as together,
        tempfile.TemporaryDirectory() as tmp,
    ):
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        raw["deployments"]["kimi-k2.6"].update(api_base=f"{kimi.url}/v1", api_style="openai")
        raw["deployments"]["kimi-k2.6-together"].update(api_base=f"{together.url}/v1")
        raw["deployments"]["gpt-4o"].update(api_base=f"{gpt.url}/v1")
        raw["deployments"]["claude-sonnet-4"].update(api_base=claude.url)
        config = Path(tmp) / "demo.yaml"
        config.write_text(yaml.safe_dump(raw))
        print(
            "starting the service (litellm, which serves Anthropic here, loads for a few seconds)"
        )
        with running_service(config, env=DEMO_KEYS, ready=True) as url:
            print(
                f"service {url}; fake fleet: kimi {kimi.url}, claude {claude.url}, gpt {gpt.url}\n"
            )
            print(
                f"{'intent':<20}{'conf':>6}  {'answered by':<16}{'attempts':>8}  {'cost $':>10}  prompt"
            )
            for prompt, fault in PROMPTS:
                if fault is not None:
                    claude.script(fault)
                response = httpx.post(
                    f"{url}/v1/chat/completions",
                    timeout=30,
                    json={"model": "auto", "messages": [{"role": "user", "content": prompt}]},
                )
                route = httpx.post(f"{url}/v1/route", json={"prompt": prompt}).json()
                h = response.headers
                note = "  <- 529 injected at claude-sonnet-4, fell back" if fault else ""
                print(
                    f"{h['x-intent-router-intent']:<20}{route['confidence']:>6.2f}  "
                    f"{h['x-intent-router-deployment']:<16}{h['x-intent-router-attempts']:>8}  "
                    f"{float(h['x-intent-router-cost-usd']):>10.6f}  {prompt[:48]}{note}"
                )


if __name__ == "__main__":
    main()
