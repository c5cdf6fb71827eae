"""policy.default: a small config lists one chain for every intent without its own."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import load_config, parse_config
from intent_router.exceptions import ConfigError
from intent_router.labels import INTENTS
from tests.conftest import REPO_ROOT

ONE: dict[str, Any] = {
    "deployments": {
        "a": {
            "model": "openai/a",
            "tier": "primary",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
        },
        "b": {
            "model": "openai/b",
            "tier": "fallback_1",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
        },
    },
    "policy": {"default": ["a", "b"]},
}


def _with_policy(policy: Any) -> dict[str, Any]:
    raw = copy.deepcopy(ONE)
    raw["policy"] = policy
    return raw


def test_every_intent_without_a_chain_gets_the_default() -> None:
    config = parse_config(_with_policy({"default": ["a", "b"], "debugging": ["b"]}))
    assert config.policy["debugging"] == ("b",)
    assert all(config.policy[i] == ("a", "b") for i in INTENTS if i != "debugging")
    assert set(config.policy) == set(INTENTS)  # "default" is not an intent


@pytest.mark.parametrize(
    "policy, field",
    [
        ({"debugging": ["a"]}, "policy.code_generation"),  # no default: every intent must be listed
        ({"default": []}, "policy.default"),
        ({"default": ["a", "nope"]}, "policy.default[1]"),
        ({"default": ["a", "a"]}, "policy.default"),
        ({"default": ["a"], "chit_chat": ["a"]}, "policy.chit_chat"),
    ],
)
def test_a_bad_default_names_its_field(policy: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_with_policy(policy))
    assert raised.value.field == field


@pytest.mark.parametrize("name", ["minimal.yaml", "fake-fleet.yaml"])
def test_the_example_configs_load(name: str) -> None:
    config = load_config(REPO_ROOT / "src/intent_router/defaults/examples" / name)
    assert set(config.policy) == set(INTENTS)


@given(
    listed=st.dictionaries(st.sampled_from(INTENTS), st.sampled_from([["a"], ["b"], ["b", "a"]])),
    default=st.sampled_from([["a"], ["a", "b"]]),
)
def test_each_intent_gets_its_own_chain_else_the_default(
    listed: dict[str, list[str]], default: list[str]
) -> None:
    config = parse_config(_with_policy({**listed, "default": default}))
    assert config.policy == {i: tuple(listed.get(i, default)) for i in INTENTS}
