"""Property tests of policy resolution on generated configs and override tables: choose_chain
with resolve()d overrides, and parse_override on anything an admin could send."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from intent_router.config import TIERS, Deployment, RouterConfig, load_config
from intent_router.exceptions import (
    ForbiddenDeploymentError,
    InvalidRequestError,
    UnknownModelError,
)
from intent_router.labels import INTENTS
from intent_router.routing.overrides import NO_OVERRIDE, Override, parse_override, resolve
from intent_router.routing.policy import NoLocalDeploymentError, choose_chain

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROVIDERS = ("openai", "anthropic", "ollama", "cloudflare")
NAMES = ("a", "b", "c", "d", "e", "f", "gpt", "kimi")
DEFAULT = load_config()


@st.composite
def configs(draw: st.DrawFn) -> RouterConfig:
    """A valid config: 1-6 deployments on a few providers, any tiers, any fallback graph."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    deployments = {}
    for index, name in enumerate(names):
        provider = draw(st.sampled_from(PROVIDERS))
        others = [n for n in names if n != name]
        deployments[name] = Deployment(
            name=name,
            model=f"{provider}/model-{index}",
            tier=draw(st.sampled_from(TIERS)),
            api_base=None,
            api_key_env=None,
            timeout_s=10.0,
            context_window=8192,
            input_cost_per_mtok=1.0,
            output_cost_per_mtok=2.0,
            retry_on=frozenset({"429"}),
            fallbacks=tuple(draw(st.lists(st.sampled_from(others), unique=True))) if others else (),
        )
    chain = st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True).map(tuple)
    return RouterConfig(
        deployments=deployments,
        policy={intent: draw(chain) for intent in INTENTS},
        confidence_threshold=None,
        request_deadline_s=60.0,
        llm_classifier=names[0],
        llm_classifier_timeout_s=2.0,
        cooldown_failures=3,
        cooldown_s=30.0,
        output_tokens=dict.fromkeys(INTENTS, 100),
    )


@st.composite
def override_bodies(
    draw: st.DrawFn, config: RouterConfig, scope: str, subject: str
) -> dict[str, Any]:
    """What an admin could PUT for ``config``: every field optional."""
    names = sorted(config.deployments)
    providers = sorted({d.provider for d in config.deployments.values()})
    body: dict[str, Any] = {"scope": scope, "subject": subject}
    fields = {
        "policy": st.dictionaries(
            st.sampled_from(INTENTS),
            st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True),
            max_size=3,
        ),
        "pin": st.none() | st.sampled_from(names),
        "forbid_deployments": st.lists(st.sampled_from(names), max_size=2, unique=True),
        "forbid_providers": st.lists(st.sampled_from(providers), max_size=1, unique=True),
        "sensitive": st.booleans(),
    }
    for field, strategy in fields.items():
        if draw(st.integers(0, 2)) == 0:  # a third of the overrides set each field
            body[field] = draw(strategy)
    return body


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[RouterConfig, dict[tuple[str, str], Override], dict[str, Override]]:
    """A config, an override table (the request's own org/repo/user and some other subjects)
    and which of the request's levels have an override."""
    config = draw(configs())
    table: dict[tuple[str, str], Override] = {}
    mine: dict[str, Override] = {}
    for scope in ("org", "repo", "user"):
        if draw(st.booleans()):
            mine[scope] = parse_override(
                draw(override_bodies(config, scope, f"my-{scope}")), config
            )
            table[(scope, f"my-{scope}")] = mine[scope]
        if draw(st.booleans()):  # someone else's: must never apply
            table[(scope, f"other-{scope}")] = parse_override(
                draw(override_bodies(config, scope, f"other-{scope}")), config
            )
    return config, table, mine


def _closure(config: RouterConfig, preferred: tuple[str, ...]) -> set[str]:
    seen, stack = set(preferred), list(preferred)
    while stack:
        for name in config.deployments[stack.pop()].fallbacks:
            if name not in seen:
                seen.add(name)
                stack.append(name)
    return seen


def _is_subsequence(short: list[str], long: tuple[str, ...]) -> bool:
    items = iter(long)
    return all(name in items for name in short)


@SETTINGS
@given(
    scenario=scenarios(), intent=st.sampled_from(INTENTS), sensitive=st.booleans(), data=st.data()
)
def test_chains_respect_every_level_of_the_overrides(
    scenario, intent: str, sensitive: bool, data: st.DataObject
) -> None:
    config, table, mine = scenario
    model = data.draw(
        st.sampled_from(
            [
                "auto",
                "intent-router",
                *config.deployments,
                *(d.model for d in config.deployments.values()),
            ]
        )
    )
    effective = resolve(table, "my-org", "my-repo", "my-user")
    levels = [mine[s] for s in ("user", "repo", "org") if s in mine]  # most specific first
    forbidden_names = set().union(*(o.forbid_deployments for o in levels))
    forbidden_providers = set().union(*(o.forbid_providers for o in levels))
    local_only = sensitive or any(o.sensitive for o in levels)

    def forbidden(name: str) -> bool:
        return name in forbidden_names or config.deployments[name].provider in forbidden_providers

    # Preferences: the most specific level that says anything wins, else the config.
    pin = next((o.pin for o in levels if o.pin), None)
    preferred = (
        (pin,)
        if pin
        else next((o.policy[intent] for o in levels if intent in o.policy), config.policy[intent])
    )
    if model not in ("auto", "intent-router"):
        preferred = (next(n for n, d in config.deployments.items() if model in (n, d.model)),)
    allowed_locals = [
        n for n, d in config.deployments.items() if d.tier == "local" and not forbidden(n)
    ]
    try:
        choice = choose_chain(config, intent, model, sensitive, effective)
    except NoLocalDeploymentError:
        assert local_only and not allowed_locals  # fails closed only when no local is allowed
        return
    except ForbiddenDeploymentError as error:
        assert levels and all(f"{s}:my-{s}" in str(error) for s in mine)
        if model in ("auto", "intent-router"):
            assert not local_only and all(forbidden(n) for n in _closure(config, preferred))
        else:
            assert forbidden(preferred[0])
        return
    chain = choice.chain
    assert chain, "an empty chain without an error"
    assert len(set(chain)) == len(chain) and set(chain) <= set(config.deployments)
    assert not any(forbidden(n) for n in chain), "a forbidden deployment or provider"
    assert not any(f"other-{s}" in choice.reason for s in ("org", "repo", "user"))
    if local_only:
        assert all(config.deployments[n].tier == "local" for n in chain)
        assert set(chain) <= set(allowed_locals)
    else:
        wanted = [n for n in preferred if not forbidden(n)]
        assert list(chain[: len(wanted)]) == wanted, "the preferred chain comes first, in order"
        # ... then every allowed fallback reachable from it, and nothing else
        assert set(chain) == {n for n in _closure(config, preferred) if not forbidden(n)}


def _chain_or_nothing(config: RouterConfig, intent: str, effective: Any) -> tuple[str, ...]:
    try:
        return choose_chain(config, intent, "auto", False, effective).chain
    except ForbiddenDeploymentError:
        return ()


@SETTINGS
@given(scenario=scenarios(), intent=st.sampled_from(INTENTS), data=st.data())
def test_forbidding_one_more_deployment_only_removes_it(
    scenario, intent: str, data: st.DataObject
) -> None:
    config, table, mine = scenario
    extra = data.draw(st.sampled_from(sorted(config.deployments)))
    level = data.draw(st.sampled_from(["org", "repo", "user"]))
    current = mine.get(level) or Override(level, f"my-{level}")
    stricter = {
        **table,
        (level, f"my-{level}"): replace(
            current, forbid_deployments=current.forbid_deployments | {extra}
        ),
    }
    before = resolve(table, "my-org", "my-repo", "my-user")
    after = resolve(stricter, "my-org", "my-repo", "my-user")
    assume(not before.sensitive)
    assert after.forbid_deployments == before.forbid_deployments | {
        extra
    }  # restrictions accumulate
    assert (after.pin, after.policy) == (before.pin, before.policy)
    old, new = _chain_or_nothing(config, intent, before), _chain_or_nothing(config, intent, after)
    assert new == tuple(n for n in old if n != extra)


@SETTINGS
@given(
    scenario=scenarios(), intent=st.sampled_from(INTENTS), model=st.sampled_from(["auto", "gpt-x"])
)
def test_overrides_of_other_subjects_change_nothing(scenario, intent: str, model: str) -> None:
    config, table, _mine = scenario
    only_mine = {k: v for k, v in table.items() if k[1].startswith("my-")}
    strangers = resolve(table, "nobody", None, "someone")
    assert strangers == NO_OVERRIDE
    for org, repo, user in (
        ("my-org", "my-repo", "my-user"),
        (None, "my-repo", None),
        ("my-org", None, None),
    ):
        assert resolve(table, org, repo, user) == resolve(only_mine, org, repo, user)
    if model == "gpt-x":
        with pytest.raises(UnknownModelError):
            choose_chain(
                config, intent, model, False, resolve(table, "my-org", "my-repo", "my-user")
            )


@SETTINGS
@given(config=configs(), intent=st.sampled_from(INTENTS), data=st.data())
def test_a_deployment_named_by_name_or_model_id_gets_the_same_chain(
    config: RouterConfig, intent: str, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(config.deployments)))
    by_name = choose_chain(config, intent, name)
    by_model = choose_chain(config, intent, config.deployments[name].model)
    assert by_name == by_model and by_name.chain[0] == name
    assert set(by_name.chain) == _closure(config, (name,))


@SETTINGS
@given(
    config=configs(),
    intent=st.sampled_from(INTENTS),
    scope=st.sampled_from(["org", "repo", "user"]),
)
def test_a_sensitive_subject_with_every_cloud_forbidden_still_gets_its_local_tier(
    config: RouterConfig, intent: str, scope: str
) -> None:
    clouds = sorted(
        {d.provider for d in config.deployments.values() if d.tier != "local"}
        - {d.provider for d in config.deployments.values() if d.tier == "local"}
    )
    override = Override(scope, "s", sensitive=True, forbid_providers=frozenset(clouds))
    effective = resolve({(scope, "s"): override}, "s", "s", "s")
    locals_ = [n for n, d in config.deployments.items() if d.tier == "local"]
    if not locals_:
        with pytest.raises(NoLocalDeploymentError):
            choose_chain(config, intent, "auto", False, effective)
        return
    chain = choose_chain(config, intent, "auto", False, effective).chain
    assert chain and set(chain) <= set(locals_)


# --- parse_override on anything ---------------------------------------------------------------

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(sorted(DEFAULT.deployments))
    | st.sampled_from(INTENTS)
    | st.sampled_from(["openai", "org"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=12) | st.sampled_from(INTENTS), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    "scope",
    "subject",
    "policy",
    "pin",
    "forbid_deployments",
    "forbid_providers",
    "sensitive",
)


@settings(max_examples=200, deadline=None)
@given(
    raw=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JUNK, max_size=7)
    | override_bodies(DEFAULT, "repo", "acme/api").flatmap(
        lambda body: st.tuples(st.just(body), st.sampled_from(FIELDS), JUNK).map(
            lambda t: {**t[0], t[1]: t[2]}
        )
    )
)
def test_any_admin_body_is_an_override_or_an_error_naming_the_field(raw: dict[str, Any]) -> None:
    try:
        override = parse_override(raw, DEFAULT)
    except InvalidRequestError as error:
        assert str(error).startswith(tuple(f"{k}{sep}" for k in (*FIELDS, *raw) for sep in ":.")), (
            str(error)
        )
        return
    assert override.scope in ("org", "repo", "user") and override.subject == raw["subject"]
    assert override.pin is None or override.pin in DEFAULT.deployments
    assert all(
        set(chain) <= set(DEFAULT.deployments) and len(set(chain)) == len(chain)
        for chain in override.policy.values()
    )
    assert parse_override(override.as_json(), DEFAULT) == override


@SETTINGS
@given(config=configs(), data=st.data())
def test_valid_overrides_survive_their_json(config: RouterConfig, data: st.DataObject) -> None:
    body = data.draw(
        override_bodies(config, data.draw(st.sampled_from(["org", "repo", "user"])), "ana")
    )
    override = parse_override(body, config)
    assert parse_override(override.as_json(), config) == override
    assert override.policy == {k: tuple(v) for k, v in (body.get("policy") or {}).items()}
    assert override.forbid_deployments == frozenset(body.get("forbid_deployments") or ())
    assert override.sensitive == body.get("sensitive", False)


def test_deployment_names_of_the_wrong_type_are_refused_not_crashed() -> None:
    for raw, field in [
        (
            {"scope": "repo", "subject": "x", "policy": {"debugging": [["gpt-4o"]]}},
            "policy.debugging",
        ),
        (
            {"scope": "repo", "subject": "x", "policy": {"debugging": [{"name": "gpt-4o"}]}},
            "policy.debugging",
        ),
        ({"scope": "repo", "subject": "x", "pin": ["gpt-4o"]}, "pin"),
        ({"scope": "repo", "subject": "x", "policy": []}, "policy"),
    ]:
        with pytest.raises(InvalidRequestError, match=f"^{field}"):
            parse_override(raw, DEFAULT)
