import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import DEFAULT_CONFIG, load_config, parse_config
from intent_router.exceptions import ConfigError
from intent_router.labels import INTENTS
from intent_router.settings import ServiceSettings

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())


def _with(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    node = raw
    *parents, leaf = path.split("/")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return raw


def test_the_default_config_mirrors_the_tier_table() -> None:
    config = load_config()
    tiers = {d.tier: d for d in config.deployments.values() if d.name != "kimi-k2.6-together"}
    assert tiers["primary"].model == "cloudflare/@cf/moonshotai/kimi-k2.6"
    assert config.deployments["kimi-k2.6"].fallbacks == ("kimi-k2.6-together", "claude-sonnet-4")
    assert "oom" in tiers["local"].retry_on and tiers["local"].api_style == "openai"
    assert tiers["primary"].input_cost_per_mtok == 0.50
    assert tiers["fallback_1"].input_cost_per_mtok == 3.0  # from litellm's local cost map
    assert tiers["fallback_2"].input_cost_per_mtok == 2.5
    assert tiers["local"].input_cost_per_mtok == 0.0
    assert "529" in tiers["fallback_1"].retry_on
    assert set(config.policy) == set(INTENTS)
    assert config.policy["architecture_review"][0] == "claude-sonnet-4"
    assert config.confidence_threshold is None


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("deployments/gpt-4o/timeout_s", -1, "deployments.gpt-4o.timeout_s"),
        ("deployments/gpt-4o/timeout_s", "fast", "deployments.gpt-4o.timeout_s"),
        ("deployments/gpt-4o/tier", "premium", "deployments.gpt-4o.tier"),
        ("deployments/gpt-4o/model", "gpt-4o", "deployments.gpt-4o.model"),
        ("deployments/gpt-4o/api_key_env", "sk-live-123", "deployments.gpt-4o.api_key_env"),
        ("deployments/gpt-4o/retry_on", ["418"], "deployments.gpt-4o.retry_on"),
        ("deployments/gpt-4o/input_cost_per_mtok", -2, "deployments.gpt-4o.input_cost_per_mtok"),
        ("deployments/gpt-4o/colour", "red", "deployments.gpt-4o.colour"),
        ("policy/debugging", [], "policy.debugging"),
        ("policy/debugging", ["gpt-4o", "nope"], "policy.debugging[1]"),
        ("policy/chit_chat", ["gpt-4o"], "policy.chit_chat"),
        ("router/confidence_threshold", 1.5, "router.confidence_threshold"),
        ("router/llm_classifier/deployment", "ghost", "router.llm_classifier.deployment"),
        ("router/request_deadline_s", 0, "router.request_deadline_s"),
        ("deployments/claude-sonnet-4/api_style", "openai", "deployments.claude-sonnet-4.api_base"),
        ("router/output_tokens/debugging", 0, "router.output_tokens.debugging"),
        ("router/output_tokens/poetry", 10, "router.output_tokens.poetry"),
        ("router/routing", {"mode": "cheapest"}, "router.routing.mode"),
        ("router/routing", {"weight": -1}, "router.routing.weight"),
        (
            "router/routing",
            {"matrix": {"debugging": {"general": -0.1}}},
            "router.routing.matrix.debugging.general",
        ),
        (
            "router/routing",
            {"matrix": {"debugging": {"debugging": 0.1}}},
            "router.routing.matrix.debugging.debugging",
        ),
        ("router/routing", {"matrix": {"poetry": {}}}, "router.routing.matrix.poetry"),
        ("router/routing", {"llm_accuracy": 2}, "router.routing.llm_accuracy"),
        ("router/conversation", {"latest_weight": 0.3}, "router.conversation.latest_weight"),
        ("router/conversation", {"max_turns": 0}, "router.conversation.max_turns"),
        ("router/conversation", {"turns": 2}, "router.conversation.turns"),
    ],
)
def test_a_bad_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with(path, value))
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_openai_compatible_deployments_get_their_provider_default_api_base() -> None:
    deployments = load_config().deployments
    assert deployments["gpt-4o"].api_base == "https://api.openai.com/v1"
    assert deployments["kimi-k2.6-together"].api_base == "https://api.together.xyz/v1"


def test_a_model_missing_from_the_cost_map_needs_prices() -> None:
    raw = _with("deployments/gpt-4o/model", "openai/no-such-model-xyz")
    with pytest.raises(ConfigError, match=r"deployments\.gpt-4o\.input_cost_per_mtok"):
        parse_config(raw)


def test_unreadable_and_invalid_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("deployments: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_yaml_value_either_parses_or_raises_config_error(raw: Any) -> None:
    try:
        parse_config(raw)
    except ConfigError:
        pass


@given(
    st.sampled_from(sorted(INTENTS)),
    st.sampled_from(["timeout_s", "context_window"]),
    st.one_of(st.integers(max_value=0), st.text(max_size=5), st.booleans()),
)
def test_invalid_numbers_anywhere_name_their_field(intent: str, field: str, value: Any) -> None:
    name = RAW["policy"][intent][0]
    with pytest.raises(ConfigError) as info:
        parse_config(_with(f"deployments/{name}/{field}", value))
    assert info.value.field == f"deployments.{name}.{field}"


def test_infinite_numbers_are_refused() -> None:
    with pytest.raises(ConfigError, match="context_window"):
        parse_config(_with("deployments/gpt-4o/context_window", float("inf")))


def test_fallbacks_must_name_other_known_deployments() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with("deployments/gpt-4o/fallbacks", ["gpt-4o"]))
    assert info.value.field == "deployments.gpt-4o.fallbacks[0]"


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ({"over_budget": "shrug"}, None, "governance.over_budget"),
        ({"downgrade_tier": "cheap"}, None, "governance.downgrade_tier"),
        ({"redis_url": "http://cache:6379"}, None, "governance.redis_url"),
        ({"redis_url": "redis://user:hunter2@cache:6379/0"}, None, "governance.redis_url"),
        ({"client_keys": "yes"}, None, "governance.client_keys"),
        ({"budgets": {}}, None, "governance.budgets"),
    ],
)
def test_a_bad_governance_field_is_named(section: dict, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as bad:
        parse_config(_with("governance", {**RAW["governance"], **section}))
    assert bad.value.field == field
    assert "hunter2" not in str(bad.value)  # a password in the file is refused, never echoed


def test_downgrading_needs_a_deployment_on_the_downgrade_tier() -> None:
    raw = _with("governance", {**RAW["governance"], "downgrade_tier": "fallback_2"})
    raw["deployments"]["gpt-4o"]["tier"] = "fallback_1"
    with pytest.raises(ConfigError, match="no deployment has tier 'fallback_2'"):
        parse_config(raw)
    raw["governance"]["over_budget"] = "refuse"  # refusing needs no tier to go to
    assert parse_config(raw).governance.over_budget == "refuse"


def test_the_redis_url_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(_with("governance", {"redis_url": "redis://127.0.0.1:6379/0"}))
    assert (
        config.governance.resolved_redis_url(ServiceSettings.from_env().redis_url)
        == "redis://127.0.0.1:6379/0"
    )
    monkeypatch.setenv("INTENT_ROUTER_REDIS_URL", "redis://:secret@cache:6379/1")
    assert (
        config.governance.resolved_redis_url(ServiceSettings.from_env().redis_url)
        == "redis://:secret@cache:6379/1"
    )
    assert not load_config().governance.client_keys  # the embedded default: no keys


def test_the_production_profile_is_the_default_with_keys_redis_and_postgresql() -> None:
    production_path = DEFAULT_CONFIG.with_name("production.yaml")
    production = yaml.safe_load(production_path.read_text())
    # Everything but governance and storage stays in step with the bundled config.
    assert {k: v for k, v in production.items() if k not in ("governance", "storage")} == {
        k: v for k, v in RAW.items() if k not in ("governance", "storage")
    }
    config = load_config(production_path)
    assert (
        config.governance.client_keys and config.governance.redis_url == "redis://127.0.0.1:6379/0"
    )
    assert config.storage.database_url.startswith("postgresql+psycopg://")


def test_the_body_limit_is_configurable_within_bounds() -> None:
    assert load_config().max_body_bytes == 1024 * 1024
    assert parse_config(_with("router/max_body_bytes", 4096)).max_body_bytes == 4096
    for bad in (512, 2**27, 1.5, "1MiB"):
        with pytest.raises(ConfigError) as refused:
            parse_config(_with("router/max_body_bytes", bad))
        assert refused.value.field == "router.max_body_bytes"


def test_regret_routing_is_off_by_default_and_matrix_cells_override_the_defaults() -> None:
    default = load_config()
    assert default.routing.mode == "argmax" and default.conversation.enabled
    raw = _with(
        "router/routing",
        {"mode": "regret", "weight": 2, "matrix": {"documentation": {"general": 0.2}}},
    )
    routing = parse_config(raw).routing
    matrix = routing.regret_matrix()
    assert (routing.mode, routing.weight, matrix["documentation"]["general"]) == (
        "regret",
        2.0,
        0.2,
    )
    assert (
        matrix["security_audit"]["general"]
        == default.routing.regret_matrix()["security_audit"]["general"]
    )


def test_the_bundled_file_restates_the_schema_defaults() -> None:
    """The defaults are stated once, in config.py; router.yaml writes them out as a commented
    reference, and this keeps the two in step (production.yaml differs in governance and
    storage only, which another test checks)."""
    import msgspec

    from intent_router import config as config_module

    defaults = msgspec.to_builtins(config_module._Config(deployments={}, policy={}))
    stated = copy.deepcopy({k: v for k, v in RAW.items() if k not in ("deployments", "policy")})
    # Not defaults in the schema: the classifier's deployment defaults to the first one, and
    # unset output-token estimates come from DEFAULT_OUTPUT_TOKENS.
    assert stated["router"]["llm_classifier"].pop("deployment") == next(iter(RAW["deployments"]))
    assert stated["router"].pop("output_tokens") == config_module.DEFAULT_OUTPUT_TOKENS
    del defaults["router"]["llm_classifier"]["deployment"], defaults["router"]["output_tokens"]
    assert stated == {k: v for k, v in defaults.items() if k not in ("deployments", "policy")}


def test_msgspec_errors_name_the_field_in_our_words() -> None:
    for path, value, expected in [
        (
            "deployments/gpt-4o/timeout_s",
            "fast",
            "deployments.gpt-4o.timeout_s: must be a number, got a string",
        ),
        (
            "router/cooldown/failures",
            2.5,
            "router.cooldown.failures: must be an integer, got a float",
        ),
        (
            "router/upstream/max_body_bytes",
            10,
            "router.upstream.max_body_bytes: must be an integer >= 1024",
        ),
        ("router/upstream/colour", 1, "router.upstream.colour: unknown field"),
        ("colour", 1, "config.colour: unknown field"),
        (
            "deployments",
            {7: {"model": "openai/gpt-4o", "tier": "local"}},
            "deployments: has a key that is not a string",
        ),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config(_with(path, value))
        assert str(info.value) == expected
    raw = copy.deepcopy(RAW)
    del raw["deployments"]["gpt-4o"]["tier"]
    with pytest.raises(ConfigError, match=r"^deployments\.gpt-4o\.tier: is required$"):
        parse_config(raw)
