"""What a handler pays to get the service's ``Services``: Litestar's dependency injection
(``Provide``, as the cold handlers get it), ``State`` as a handler parameter, or read from the
``Request`` the handler takes anyway (what /v1/route and chat do). In-process ASGI calls of
one minimal POST handler each, CPU time per request, interleaved rounds; the median is printed.

    python -m tests.bench.services_access
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, post
from litestar.datastructures import State
from litestar.di import Provide

ROUNDS, CALLS = 11, 5000
BODY = b'{"prompt": "rename getUser to fetchUser everywhere"}'


@dataclass(frozen=True, slots=True)
class _Services:
    answer: int


@post("/provide", status_code=200)
async def via_provide(
    data: dict[str, Any], request: Request, services: _Services
) -> dict[str, int]:
    return {"answer": services.answer}


@post("/state", status_code=200)
async def via_state(data: dict[str, Any], request: Request, state: State) -> dict[str, int]:
    return {"answer": state.services.answer}


@post("/request", status_code=200)
async def via_request(data: dict[str, Any], request: Request) -> dict[str, int]:
    services: _Services = request.app.state["services"]
    return {"answer": services.answer}


def _provide(state: State) -> _Services:
    services: _Services = state["services"]
    return services


APP = Litestar(
    [via_provide, via_state, via_request],
    logging_config=None,
    dependencies={"services": Provide(_provide, sync_to_thread=False)},
    state=State({"services": _Services(1)}),
)


async def _call(path: str) -> None:
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await APP(scope, receive, send)  # type: ignore[arg-type]


async def main() -> None:
    paths = ("/provide", "/state", "/request")
    for path in paths:  # warm up
        for _ in range(CALLS // 2):
            await _call(path)
    cpu_us: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(ROUNDS):
        for path in paths:
            began = time.process_time()
            for _ in range(CALLS):
                await _call(path)
            cpu_us[path].append((time.process_time() - began) / CALLS * 1e6)
    median = {path: sorted(times)[ROUNDS // 2] for path, times in cpu_us.items()}
    for path in paths:
        print(
            f"{path:9} {median[path]:6.1f} us CPU a request  "
            f"({median[path] / median['/request']:.2f}x reading it from the Request)"
        )


if __name__ == "__main__":
    asyncio.run(main())
