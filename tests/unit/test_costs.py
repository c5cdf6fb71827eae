import pytest

from intent_router.config import load_config
from intent_router.costs import cost_usd, estimate_tokens

DEPLOYMENTS = load_config().deployments


def test_cost_follows_the_configured_prices() -> None:
    # Claude: $3 in / $15 out per 1M tokens.
    assert cost_usd(DEPLOYMENTS["claude-sonnet-4"], 1_000_000, 0) == pytest.approx(3.0)
    assert cost_usd(DEPLOYMENTS["claude-sonnet-4"], 1000, 1000) == pytest.approx(0.018)
    assert cost_usd(DEPLOYMENTS["qwen-32b-local"], 10**6, 10**6) == 0.0


def test_token_estimate_is_about_four_characters_per_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("x" * 4000) == 1000


def test_tokens_are_counted_offline_with_the_bundled_cl100k_encoding() -> None:
    from intent_router.tokens import count_tokens

    assert count_tokens("rename getUser to fetchUser everywhere") == 6
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens are plain text here
