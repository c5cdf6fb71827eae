"""The baseline for the route bench: a bare Litestar app (the project's Litestar version) with
one POST endpoint answering a constant JSON, started with the same ``uvicorn.run`` call as
``python -m intent_router.service`` (factory, one worker, log level as given, uvloop and
httptools, no access log: the service's default).

    python -m tests.bench.bare_app --port 8001
"""

from __future__ import annotations

import argparse

from litestar import Litestar, post

from intent_router.service.__main__ import SERVER

ANSWER = {
    "intent": "refactoring",
    "confidence": 0.99,
    "source": "model",
    "chain": ["kimi-k2.6", "kimi-k2.6-together", "claude-sonnet-4"],
    "estimated_cost_usd": 0.0004,
    "model_version": "bare",
}


@post("/v1/route", status_code=200, sync_to_thread=False)
def route() -> dict[str, object]:
    return ANSWER


def create_app() -> Litestar:
    return Litestar(route_handlers=[route])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(
        "tests.bench.bare_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level=args.log_level,
        access_log=False,
        **SERVER,
    )


if __name__ == "__main__":
    main()
