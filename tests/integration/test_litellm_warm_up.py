"""litellm's first-call costs are paid at warm-up, off the request path."""

from __future__ import annotations

import importlib.util
import sys

from intent_router.providers import litellm_client


def test_every_module_the_warm_up_imports_exists_in_the_pinned_litellm() -> None:
    # a rename in a litellm upgrade would silently put ~2 s back on the first request
    missing = [m for m in litellm_client._FIRST_CALL_MODULES if importlib.util.find_spec(m) is None]
    assert missing == []


def test_warm_up_imports_them_and_survives_a_model_litellm_cannot_place() -> None:
    litellm_client.warm(["anthropic/claude-sonnet-4-5", "no-such-provider/model"])
    assert all(m in sys.modules for m in litellm_client._FIRST_CALL_MODULES)
