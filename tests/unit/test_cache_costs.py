"""Prompt-cache-aware cost: cache prices from litellm's map or the config, the usage split."""

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import ConfigError, Deployment, load_config, parse_config
from intent_router.costs import InputTokens, cached_cost_usd, cost_usd, input_parts_usd
from intent_router.exceptions import ProviderError
from intent_router.providers.upstream_validation import checked_usage, usage_input_split
from intent_router.router import usage_cost

DEPLOYMENTS = load_config().deployments
CLAUDE = DEPLOYMENTS["claude-sonnet-4"]
counts = st.integers(min_value=0, max_value=2**31 - 1)
prices = st.one_of(st.none(), st.floats(min_value=0, max_value=1e4, allow_nan=False))


def _config(**prices: float) -> dict:
    return {
        "deployments": {"c": {"model": "anthropic/claude-sonnet-4-5", "tier": "primary", **prices}},
        "policy": {"default": ["c"]},
    }


def test_cache_prices_come_from_litellms_cost_map() -> None:
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write per 1M tokens
    assert CLAUDE.cache_read_cost_per_mtok == pytest.approx(0.30)
    assert CLAUDE.cache_write_cost_per_mtok == pytest.approx(3.75)
    tokens = InputTokens(uncached=1_000_000, cached=1_000_000, cache_write=1_000_000)
    assert cached_cost_usd(CLAUDE, tokens, 0) == pytest.approx(3.0 + 0.30 + 3.75)


def test_the_config_overrides_cache_prices_per_deployment() -> None:
    deployment = parse_config(
        _config(cache_read_cost_per_mtok=0.1, cache_write_cost_per_mtok=0)
    ).deployments["c"]
    assert (deployment.cache_read_cost_per_mtok, deployment.cache_write_cost_per_mtok) == (0.1, 0.0)
    with pytest.raises(ConfigError, match="cache_read_cost_per_mtok"):
        parse_config(_config(cache_read_cost_per_mtok=-1))


def test_a_configured_input_price_below_the_maps_caps_the_maps_cache_read_price() -> None:
    deployment = parse_config(_config(input_cost_per_mtok=0.2)).deployments["c"]
    assert deployment.cache_read_cost_per_mtok == pytest.approx(0.2)


def test_openai_cached_tokens_are_priced_at_the_cache_read_price() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 800},
    }
    assert usage_input_split(usage) == (200, 800, 0, 0)
    assert usage_cost(CLAUDE, usage) == pytest.approx((200 * 3.0 + 800 * 0.30) / 1e6)


def test_anthropic_cache_names_are_read_where_litellm_puts_them() -> None:
    top = {
        "prompt_tokens": 1000,
        "completion_tokens": 5,
        "cache_read_input_tokens": 600,
        "cache_creation_input_tokens": 300,
    }
    nested = {
        "prompt_tokens": 1000,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300},
    }
    assert usage_input_split(top) == usage_input_split(nested) == (100, 600, 300, 5)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}},
        {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": -1}},
        {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 1.5}},
        {"prompt_tokens": 10, "prompt_tokens_details": "many"},
        {"prompt_tokens": 10, "cache_read_input_tokens": 2**31},
        {"prompt_tokens": 10, "cache_read_input_tokens": 6, "cache_creation_input_tokens": 5},
    ],
)
def test_invalid_cache_counts_are_a_malformed_response(usage: dict) -> None:
    with pytest.raises(ProviderError) as caught:
        checked_usage(usage)
    assert caught.value.kind == "malformed_response"
    assert usage_input_split(usage)[1:3] == (0, 0)  # priced as uncached input, never negative


@given(prices, prices, st.floats(min_value=0, max_value=1e4), counts, counts, counts, counts)
def test_cost_is_never_negative_and_is_the_sum_of_its_parts(
    read: float | None,
    write: float | None,
    input_price: float,
    uncached: int,
    cached: int,
    cache_write: int,
    output: int,
) -> None:
    deployment = dataclasses.replace(
        CLAUDE,
        input_cost_per_mtok=input_price,
        cache_read_cost_per_mtok=read,
        cache_write_cost_per_mtok=write,
    )
    tokens = InputTokens(uncached, cached, cache_write)
    parts = input_parts_usd(deployment, tokens)
    total = cached_cost_usd(deployment, tokens, output)
    assert all(part >= 0 for part in parts) and total >= 0 and math.isfinite(total)
    assert total == pytest.approx(sum(parts) + cost_usd(deployment, 0, output))


@given(counts, counts, st.data())
def test_cached_input_never_costs_more_than_uncached_when_the_map_says_so(
    prompt: int, cached: int, data: st.DataObject
) -> None:
    cached = min(cached, prompt)
    name = data.draw(st.sampled_from(sorted(DEPLOYMENTS)))
    deployment: Deployment = DEPLOYMENTS[name]
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    if deployment.cache_read_cost_per_mtok is not None:
        assert deployment.cache_read_cost_per_mtok <= deployment.input_cost_per_mtok
    uncached = {"prompt_tokens": prompt, "completion_tokens": 0}
    assert usage_cost(deployment, usage) <= usage_cost(deployment, uncached) * (1 + 1e-12)
