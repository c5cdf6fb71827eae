"""Property tests of config loading: any mutation of a valid config either loads or raises a
ConfigError naming the field (never another exception), and valid configs load as given."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intent_router import config as config_module
from intent_router.config import (
    DEFAULT_CONFIG,
    RETRYABLE_CONDITIONS,
    TIERS,
    load_config,
    parse_config,
)
from intent_router.exceptions import ConfigError
from intent_router.labels import INTENTS

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def _cost_map_read_once() -> Iterator[None]:
    """parse_config reads litellm's 1 MB cost map each time (~20 ms): read it once here."""
    prices = config_module._cost_map()
    assert prices, "litellm's bundled cost map is missing"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_module, "_cost_map", lambda: prices)
        yield


# --- valid configs --------------------------------------------------------------------------

# Pools rather than regexes: generating from a regex is most of the time these tests take.
NAME = st.sampled_from(
    [
        "a",
        "b",
        "gpt-4o",
        "kimi-k2",
        "claude",
        "q1",
        "local-2",
        "x-y-z",
        "no",
        "null",
        "on",
        "true",
        "0a",
        "m" * 12,
        "deep-seek",
        "llama3",
    ]
)
ENV = st.sampled_from(
    ["A", "_", "OPENAI_API_KEY", "K_1", "X" * 16, "_PRIVATE", "CLOUDFLARE_API_TOKEN"]
)
POSITIVE = st.floats(min_value=0.001, max_value=1e6) | st.integers(min_value=1, max_value=10**6)
COUNT = st.integers(min_value=1, max_value=10**6)
FRACTION = st.floats(min_value=0.0, max_value=1.0)
PRICE = st.floats(min_value=0.0, max_value=1e4) | st.integers(min_value=0, max_value=1000)
RETRY = st.lists(
    st.sampled_from(["429", 429, "529", 529, "5xx", "5XX", "timeout", "TIMEOUT", "oom"]), max_size=5
)
PATTERNS = st.dictionaries(
    NAME, st.sampled_from([r"\bacme_[0-9a-f]{32}\b", r"tok-\d+", "x+y"]), max_size=2
)


@st.composite
def deployment_specs(draw: st.DrawFn, name: str, others: list[str]) -> dict[str, Any]:
    provider = draw(st.sampled_from(["openai", "anthropic", "ollama", "together_ai", "acme"]))
    spec: dict[str, Any] = {
        "model": f"{provider}/m-{draw(NAME)}",  # never in litellm's cost map: prices are given
        "tier": draw(st.sampled_from(TIERS)),
        "input_cost_per_mtok": draw(PRICE),
        "output_cost_per_mtok": draw(PRICE),
    }
    optional = {
        "api_key_env": st.none() | ENV,
        "timeout_s": POSITIVE,
        "context_window": COUNT,
        "retry_on": RETRY,
        "fallbacks": st.lists(st.sampled_from(others), unique=True) if others else st.just([]),
        "api_style": st.sampled_from(["openai", "litellm"]),
        "api_base": st.none() | st.just(f"http://127.0.0.1:9/{name}/v1"),
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            spec[field] = draw(strategy)
    openai_style = spec.get("api_style") == "openai" or (
        provider == "openai" and "api_style" not in spec
    )
    if openai_style and spec.get("api_base") is None and provider not in ("openai", "together_ai"):
        spec["api_base"] = f"http://127.0.0.1:9/{name}/v1"
    return spec


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique=True))
    deployments = {n: draw(deployment_specs(n, [o for o in names if o != n])) for n in names}
    # A primary deployment: the work-in-progress budget downgrade needs one (see the report).
    deployments[names[0]]["tier"] = "primary"
    chains = st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True)
    raw: dict[str, Any] = {
        "deployments": deployments,
        "policy": {intent: draw(chains) for intent in INTENTS},
        "router": {
            "confidence_threshold": draw(st.none() | FRACTION),
            "request_deadline_s": draw(POSITIVE),
            "llm_classifier": {
                "deployment": draw(st.sampled_from(names)),
                "timeout_s": draw(POSITIVE),
            },
            "cooldown": {"failures": draw(COUNT), "seconds": draw(POSITIVE)},
            "output_tokens": draw(st.dictionaries(st.sampled_from(INTENTS), COUNT)),
        },
        "storage": {
            "database_url": draw(st.sampled_from(["sqlite:///d.db", "postgresql+psycopg://h/db"])),
            "store_prompts": draw(st.booleans()),
            "decision_log": draw(st.booleans()),
        },
        "tracking": {
            "enabled": draw(st.booleans()),
            "mlflow_tracking_uri": draw(st.none() | st.just("sqlite:///m.db")),
            "flush_interval_s": draw(POSITIVE),
            "trace_sample_rate": draw(FRACTION),
            "max_traces_per_minute": draw(COUNT),
            "premium_deployment": draw(st.none() | st.sampled_from(names)),
        },
        "sensitive": {"detect_secrets": draw(st.booleans()), "patterns": draw(PATTERNS)},
    }
    for section in ("router", "storage", "tracking", "sensitive"):  # every section is optional
        if draw(st.integers(0, 4)) == 0:
            del raw[section]
    return raw


def _assert_loaded_as_given(raw: dict[str, Any]) -> None:
    config = parse_config(raw)
    assert list(config.deployments) == list(raw["deployments"])
    for name, spec in raw["deployments"].items():
        d = config.deployments[name]
        assert (d.name, d.model, d.tier) == (name, spec["model"], spec["tier"])
        assert d.input_cost_per_mtok == spec["input_cost_per_mtok"]
        assert d.output_cost_per_mtok == spec["output_cost_per_mtok"]
        assert d.api_key_env == spec.get("api_key_env")
        assert d.timeout_s == spec.get("timeout_s", 60)
        assert d.context_window == spec.get("context_window", 128_000)
        assert d.retry_on == {
            str(c).lower() for c in spec.get("retry_on", ["429", "5xx", "timeout"])
        }
        assert d.fallbacks == tuple(spec.get("fallbacks", []))
        default_style = "openai" if spec["model"].startswith("openai/") else "litellm"
        assert d.api_style == (spec.get("api_style") or default_style)
        if spec.get("api_base") is not None:
            assert d.api_base == spec["api_base"]
        elif d.api_style == "openai":
            assert d.api_base == config_module.OPENAI_API_BASES[d.provider]
        else:
            assert d.api_base is None
    assert config.policy == {intent: tuple(chain) for intent, chain in raw["policy"].items()}
    router = raw.get("router", {})
    assert config.confidence_threshold == router.get("confidence_threshold")
    assert config.request_deadline_s == router.get("request_deadline_s", 60)
    assert config.llm_classifier == router.get("llm_classifier", {}).get(
        "deployment", next(iter(raw["deployments"]))
    )
    assert config.llm_classifier_timeout_s == router.get("llm_classifier", {}).get("timeout_s", 2.0)
    assert config.cooldown_failures == router.get("cooldown", {}).get("failures", 3)
    assert config.cooldown_s == router.get("cooldown", {}).get("seconds", 30)
    assert config.output_tokens == {
        **config_module.DEFAULT_OUTPUT_TOKENS,
        **router.get("output_tokens", {}),
    }
    storage, tracking, sensitive = (raw.get(k, {}) for k in ("storage", "tracking", "sensitive"))
    assert config.storage.database_url == storage.get("database_url", "sqlite:///intent-router.db")
    assert config.storage.store_prompts == storage.get("store_prompts", False)
    assert config.storage.decision_log == storage.get("decision_log", True)
    assert config.tracking.enabled == tracking.get("enabled", True)
    assert config.tracking.mlflow_tracking_uri == tracking.get("mlflow_tracking_uri")
    assert config.tracking.flush_interval_s == tracking.get("flush_interval_s", 30)
    assert config.tracking.trace_sample_rate == tracking.get("trace_sample_rate", 0.01)
    assert config.tracking.max_traces_per_minute == tracking.get("max_traces_per_minute", 60)
    assert config.tracking.premium_deployment == tracking.get("premium_deployment")
    assert config.premium_deployment in config.deployments
    assert config.sensitive.detect_secrets == sensitive.get("detect_secrets", True)
    assert config.sensitive.patterns == tuple(sensitive.get("patterns", {}).items())


@SETTINGS
@given(valid_configs())
def test_valid_configs_load_with_the_values_given(raw: dict[str, Any]) -> None:
    _assert_loaded_as_given(raw)


@FEW
@given(raw=valid_configs())
def test_valid_configs_survive_a_yaml_file(
    raw: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("yaml") / "router.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert load_config(path) == parse_config(raw)


# --- mutations ------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["gpt-4o", "primary", "openai", "429", "sk-live-1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _field(path: Path_) -> str:
    """A path as ConfigError names it: ``policy.debugging[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _node(raw: Any, path: Path_) -> Any:
    for part in path:
        raw = raw[part]
    return raw


#: Fields that refer to deployments (or their tiers): breaking a deployment may fail there,
#: and the message then names what is missing.
REFERENCES = (
    "policy.",
    "deployments.",
    "router.llm_classifier.deployment",
    "tracking.premium_deployment",
    "governance.",
)


def _check(raw: Any, mutated: Path_) -> None:
    """parse_config loads ``raw`` or raises a ConfigError naming a field related to ``mutated``."""
    try:
        parse_config(raw)
    except ConfigError as error:
        assert error.field and error.problem and "Traceback" not in str(error)
        assert str(error) == f"{error.field}: {error.problem}"
        here, parent = _field(mutated), _field(mutated[:-1])
        related = error.field.startswith(parent) or (
            here.startswith("deployments.") and error.field.startswith(REFERENCES)
        )
        assert related, f"mutating {here} failed at {error.field}"


@SETTINGS
@given(st.one_of(st.just(RAW), valid_configs()), st.data())
def test_replacing_any_value_loads_or_names_the_field(
    base: dict[str, Any], data: st.DataObject
) -> None:
    raw = copy.deepcopy(base)
    path = data.draw(st.sampled_from(list(_paths(raw))))
    _node(raw, path[:-1])[path[-1]] = data.draw(JUNK)
    _check(raw, path)


@SETTINGS
@given(st.one_of(st.just(RAW), valid_configs()), st.data())
def test_removing_anything_loads_or_names_the_field(
    base: dict[str, Any], data: st.DataObject
) -> None:
    raw = copy.deepcopy(base)
    path = data.draw(st.sampled_from(list(_paths(raw))))
    del _node(raw, path[:-1])[path[-1]]
    try:
        parse_config(raw)
    except ConfigError as error:
        if path[0] == "deployments" and len(path) == 2:  # a whole deployment: its referrers fail
            assert path[1] in error.problem or error.field.startswith(("deployments", "governance"))
        else:
            assert error.field.startswith(_field(path[:-1])), (path, error)


@SETTINGS
@given(st.one_of(st.just(RAW), valid_configs()), st.data())
def test_unknown_keys_are_named(base: dict[str, Any], data: st.DataObject) -> None:
    raw = copy.deepcopy(base)
    free_form = {("deployments",), ("sensitive", "patterns")}  # keys are names there
    mappings = [
        p for p in [(), *_paths(raw)] if isinstance(_node(raw, p), dict) and p not in free_form
    ]
    path = data.draw(st.sampled_from(mappings))
    key = data.draw(
        st.from_regex(r"[a-z_]{1,10}", fullmatch=True).filter(lambda k: k not in _node(raw, path))
    )
    _node(raw, path)[key] = data.draw(JUNK)
    if path[:2] in (("router", "output_tokens"), ("policy",)) and key in INTENTS:
        _check(raw, (*path, key))  # a missing intent just got a value
        return
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field.startswith(f"{_field(path) or 'config'}.{key}")


# --- each kind of field, each kind of wrong value ---------------------------------------------

NOT_A_NUMBER = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.just(math.nan),
)
NON_POSITIVE = st.one_of(
    NOT_A_NUMBER,
    st.integers(max_value=0),
    st.floats(max_value=0.0),
    st.just(math.inf),
    st.just(1e12),
)
NUMBERS = {
    "router/request_deadline_s": NON_POSITIVE,
    "router/llm_classifier/timeout_s": NON_POSITIVE,
    "router/cooldown/seconds": NON_POSITIVE,
    "tracking/flush_interval_s": NON_POSITIVE,
    "deployments/gpt-4o/timeout_s": NON_POSITIVE,
    # counts: also no fraction that int() would turn into 0 or silently round
    "router/cooldown/failures": NON_POSITIVE | st.floats(0.01, 0.99) | st.just(2.5),
    "router/output_tokens/debugging": NON_POSITIVE | st.floats(0.01, 0.99),
    "tracking/max_traces_per_minute": NON_POSITIVE | st.floats(0.01, 0.99),
    "deployments/qwen-32b-local/context_window": NON_POSITIVE | st.floats(0.01, 0.99),
    "router/confidence_threshold": st.one_of(
        st.booleans(),
        st.text(max_size=3),
        st.floats(max_value=-0.001),
        st.floats(min_value=1.001),
        st.just(math.nan),
    ),
    "tracking/trace_sample_rate": st.one_of(
        st.none(), st.floats(max_value=-0.001), st.floats(min_value=1.001), st.just(math.nan)
    ),
    "deployments/gpt-4o/input_cost_per_mtok": st.one_of(
        NOT_A_NUMBER, st.floats(max_value=-1e-9), st.just(math.inf)
    ),
    "deployments/qwen-32b-local/output_cost_per_mtok": st.one_of(
        NOT_A_NUMBER, st.integers(max_value=-1)
    ),
    "storage/store_prompts": st.one_of(st.none(), st.integers(), st.text(max_size=4)),
    "tracking/enabled": st.one_of(st.none(), st.integers(), st.sampled_from(["yes", "true", "on"])),
    "sensitive/detect_secrets": st.one_of(st.none(), st.integers(), st.text(max_size=4)),
}


@pytest.mark.parametrize("where", sorted(NUMBERS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_wrong_number_or_flag_is_named_exactly(where: str, data: st.DataObject) -> None:
    raw = copy.deepcopy(RAW)
    *parents, leaf = where.split("/")
    _node(raw, tuple(parents))[leaf] = data.draw(NUMBERS[where])
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field == where.replace("/", ".")


ENUMS = {
    "tier": st.text(max_size=12).filter(lambda t: t not in TIERS),
    "api_style": st.text(min_size=1, max_size=8).filter(lambda t: t not in ("openai", "litellm")),
    "retry_on": st.lists(st.text(max_size=5), min_size=1).filter(
        lambda xs: not {x.lower() for x in xs} <= RETRYABLE_CONDITIONS
    )
    | st.text(max_size=5)
    | st.integers(),
    # a key, a URL, a lower-case or dashed name: never an environment variable's name
    "api_key_env": st.one_of(
        st.from_regex(r"sk-[A-Za-z0-9]{8,20}", fullmatch=True),
        st.integers(),
        st.booleans(),
        st.text(max_size=12).filter(lambda t: not t.isupper() or not t.isidentifier()),
    ),
    "model": st.one_of(
        st.text(max_size=12).filter(lambda t: "/" not in t), st.none(), st.integers()
    ),
}


@pytest.mark.parametrize("field", sorted(ENUMS))
@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(RAW["deployments"])), data=st.data())
def test_a_bad_tier_style_condition_env_name_or_model_is_named(
    field: str, name: str, data: st.DataObject
) -> None:
    raw = copy.deepcopy(RAW)
    value = data.draw(ENUMS[field])
    if field == "api_key_env" and isinstance(value, str) and config_module._ENV_NAME.match(value):
        return  # the filter let a valid name through (e.g. "A_1")
    raw["deployments"][name][field] = value
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field == f"deployments.{name}.{field}"
    if field == "api_key_env" and isinstance(value, str) and value:
        assert "not hold a key" in info.value.problem


@SETTINGS
@given(
    ghost=NAME.filter(lambda n: n not in RAW["deployments"]),
    where=st.sampled_from(["policy", "fallbacks", "classifier", "premium"]),
    intent=st.sampled_from(INTENTS),
    owner=st.sampled_from(sorted(RAW["deployments"])),
)
def test_an_unknown_deployment_anywhere_is_named(
    ghost: str, where: str, intent: str, owner: str
) -> None:
    raw = copy.deepcopy(RAW)
    if where == "policy":
        raw["policy"][intent] = [*raw["policy"][intent], ghost]
        expected = f"policy.{intent}[{len(raw['policy'][intent]) - 1}]"
    elif where == "fallbacks":
        raw["deployments"][owner]["fallbacks"] = [ghost]
        expected = f"deployments.{owner}.fallbacks[0]"
    elif where == "classifier":
        raw["router"]["llm_classifier"]["deployment"] = ghost
        expected = "router.llm_classifier.deployment"
    else:
        raw["tracking"]["premium_deployment"] = ghost
        expected = "tracking.premium_deployment"
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field == expected and repr(ghost) in info.value.problem


def test_deployment_references_of_the_wrong_type_are_named() -> None:
    for path, value, field in [
        ("policy/debugging", [["gpt-4o"]], "policy.debugging[0]"),
        ("policy/general", ["gpt-4o", {"name": "kimi-k2.6"}], "policy.general[1]"),
        ("tracking/premium_deployment", ["gpt-4o"], "tracking.premium_deployment"),
        ("deployments/gpt-4o/retry_on", 429, "deployments.gpt-4o.retry_on"),
        ("deployments/gpt-4o/retry_on", None, "deployments.gpt-4o.retry_on"),
        ("deployments/gpt-4o/retry_on", "429", "deployments.gpt-4o.retry_on"),
        ("sensitive/patterns", {"huge": "a{99999999999}"}, "sensitive.patterns.huge"),
    ]:
        raw = copy.deepcopy(RAW)
        *parents, leaf = path.split("/")
        _node(raw, tuple(parents))[leaf] = value
        with pytest.raises(ConfigError) as info:
            parse_config(raw)
        assert info.value.field == field, path


# --- files ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_content_loads_or_raises_config_error(
    content: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "router.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)  # nothing this short is a complete config
    assert info.value.field.startswith("config")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"router: {}\ndeployments: \xff\xfe\n", "not UTF-8"),
        (b"a: " + b"[" * 600 + b"]" * 600, "not valid YAML"),
        (b"? [a, b]\n: 1\n", "not valid YAML"),
        (b"deployments: &d [*d]\n", "deployments"),
    ],
)
def test_hostile_files_fail_clearly(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "router.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_the_service_refuses_a_bad_config_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from intent_router.service.__main__ import main

    raw = copy.deepcopy(RAW)
    raw["deployments"]["gpt-4o"]["retry_on"] = 429
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "deployments.gpt-4o.retry_on: must be a list" in err and "Traceback" not in err
