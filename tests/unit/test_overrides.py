"""Override precedence and its effect on chains (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import load_config
from intent_router.exceptions import ForbiddenDeploymentError, InvalidRequestError
from intent_router.labels import INTENTS
from intent_router.routing.overrides import Override, parse_override, resolve
from intent_router.routing.policy import choose_chain

CONFIG = load_config()
NAMES = sorted(CONFIG.deployments)
PROVIDERS = sorted({d.provider for d in CONFIG.deployments.values()})

overrides = st.builds(
    Override,
    scope=st.just("x"),
    subject=st.just("x"),
    policy=st.dictionaries(
        st.sampled_from(INTENTS),
        st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True).map(tuple),
        max_size=3,
    ),
    pin=st.none() | st.sampled_from(NAMES),
    forbid_deployments=st.frozensets(st.sampled_from(NAMES), max_size=2),
    forbid_providers=st.frozensets(st.sampled_from(PROVIDERS), max_size=1),
    sensitive=st.booleans(),
)


@given(
    org=st.none() | overrides,
    repo=st.none() | overrides,
    user=st.none() | overrides,
    intent=st.sampled_from(INTENTS),
)
def test_preferences_take_the_most_specific_level_and_restrictions_accumulate(
    org, repo, user, intent
) -> None:
    table = {}
    for scope, item in (("org", org), ("repo", repo), ("user", user)):
        if item is not None:
            table[(scope, scope + "-1")] = Override(
                **{**item.__dict__, "scope": scope, "subject": scope + "-1"}
            )
    effective = resolve(table, "org-1", "repo-1", "user-1")
    levels = [x for x in (user, repo, org) if x is not None]  # most specific first
    assert effective.pin == next((x.pin for x in levels if x.pin), None)
    assert effective.policy.get(intent) == next(
        (x.policy[intent] for x in levels if intent in x.policy), None
    )
    assert effective.forbid_deployments == frozenset().union(
        *(x.forbid_deployments for x in levels)
    )
    assert effective.sensitive == any(x.sensitive for x in levels)
    try:
        chain = choose_chain(CONFIG, intent, "auto", False, effective).chain
    except (ForbiddenDeploymentError, InvalidRequestError):
        return
    assert chain
    for name in chain:
        deployment = CONFIG.deployments[name]
        assert (
            name not in effective.forbid_deployments
            and deployment.provider not in effective.forbid_providers
        )
        if effective.sensitive:
            assert deployment.tier == "local"


def test_overrides_of_other_subjects_do_not_apply() -> None:
    table = {("repo", "acme/api"): Override("repo", "acme/api", pin="gpt-4o")}
    assert resolve(table, None, "acme/web", "ana").applied == ()
    assert resolve(table, None, "acme/api", None).pin == "gpt-4o"


def test_naming_a_forbidden_deployment_is_refused() -> None:
    effective = resolve(
        {("org", "acme"): Override("org", "acme", forbid_providers=frozenset({"openai"}))},
        "acme",
        None,
        None,
    )
    with pytest.raises(ForbiddenDeploymentError, match="org:acme"):
        choose_chain(CONFIG, "general", "gpt-4o", False, effective)
    assert "gpt-4o" not in choose_chain(CONFIG, "debugging", "auto", False, effective).chain


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"scope": "team", "subject": "x"}, "scope"),
        ({"scope": "repo", "subject": ""}, "subject"),
        ({"scope": "repo", "subject": "x" * 257}, "subject"),
        ({"scope": "repo", "subject": "x", "pin": "gpt-9"}, "pin"),
        ({"scope": "repo", "subject": "x", "policy": {"poetry": ["gpt-4o"]}}, "policy.poetry"),
        ({"scope": "repo", "subject": "x", "policy": {"debugging": []}}, "policy.debugging"),
        ({"scope": "repo", "subject": "x", "forbid_providers": ["acme"]}, "forbid_providers"),
        ({"scope": "repo", "subject": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_overrides_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"^{field}"):
        parse_override(raw, CONFIG)
