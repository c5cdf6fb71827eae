"""`make fake-fleet PORT=9100`: the fake provider fleet as a server of its own, for trying the
router without any provider account. One fake on 127.0.0.1 answers OpenAI's chat completions
(``/v1/chat/completions``, streaming too) and Anthropic's messages (``/v1/messages``);
``src/intent_router/defaults/examples/fake-fleet.yaml`` points every deployment at it:

    make fake-fleet                                 # one terminal
    make serve CONFIG=src/intent_router/defaults/examples/fake-fleet.yaml      # another
"""

from __future__ import annotations

import argparse
import threading

from tests.fakes.provider_fleet import FakeProvider

DEFAULT_PORT = 9100  # the port src/intent_router/defaults/examples/fake-fleet.yaml expects


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.serve_fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="obey [hostile:MODE] markers in prompts (tests/fakes/hostile_faults.py)",
    )
    args = parser.parse_args(argv)
    with FakeProvider("fleet", port=args.port, hostile=args.hostile) as fleet:
        print(
            f"fake provider fleet on {fleet.url} (OpenAI: {fleet.url}/v1, Anthropic: {fleet.url}); "
            "Ctrl-C stops it",
            flush=True,
        )
        if args.port != DEFAULT_PORT:
            print(
                f"src/intent_router/defaults/examples/fake-fleet.yaml expects port {DEFAULT_PORT}: change its api_base lines "
                f"to {fleet.url}/v1",
                flush=True,
            )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
