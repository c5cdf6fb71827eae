import pytest

from intent_router.config import load_config
from intent_router.costs import cost_usd

DEPLOYMENTS = load_config().deployments


def test_cost_follows_the_configured_prices() -> None:
    # Claude: $3 in / $15 out per 1M tokens.
    assert cost_usd(DEPLOYMENTS["claude-sonnet-4"], 1_000_000, 0) == pytest.approx(3.0)
    assert cost_usd(DEPLOYMENTS["claude-sonnet-4"], 1000, 1000) == pytest.approx(0.018)
    assert cost_usd(DEPLOYMENTS["qwen-32b-local"], 10**6, 10**6) == 0.0
