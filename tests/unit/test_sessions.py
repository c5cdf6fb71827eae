"""The sticky-session rule (routing/sessions.py): naming, deciding, settling; examples and properties."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import ConfigError, SessionRule, parse_config
from intent_router.labels import INTENTS
from intent_router.routing.sessions import decide, name_session, settle
from intent_router.types import OUTCOMES, Proposal, SessionState

RULE = SessionRule()
NOW = 1_800_000_000.0
KIMI = ("kimi-k2.6", "kimi-k2.6-together", "claude-sonnet-4", "gpt-4o")
CLAUDE = ("claude-sonnet-4", "gpt-4o", "kimi-k2.6")


def _proposal(
    intent: str = "code_generation",
    confidence: float = 0.95,
    chain: tuple[str, ...] = KIMI,
    binding: str | None = None,
) -> Proposal:
    return Proposal(intent, confidence, chain, binding)


def _state(
    intent: str = "debugging",
    chain: tuple[str, ...] = CLAUDE,
    deployment: str | None = None,
    turns: int = 1,
    expires_at: float = NOW + 60,
) -> SessionState:
    return SessionState(chain, deployment or chain[0], intent, 0.9, turns, expires_at)


# --- examples ---------------------------------------------------------------------------------


def test_the_first_turn_fixes_the_chain() -> None:
    choice = decide(None, _proposal("debugging", chain=CLAUDE), NOW, RULE)
    assert (choice.outcome, choice.chain, choice.prefer) == ("new", CLAUDE, None)
    assert choice.state == SessionState(
        CLAUDE, "claude-sonnet-4", "debugging", 0.95, 1, NOW + RULE.ttl_s
    )


def test_yes_do_it_after_a_traceback_stays_on_the_session_chain() -> None:
    # "yes do it" alone looks like general (Kimi): the session keeps Claude.
    choice = decide(_state("debugging"), _proposal("general", 0.7), NOW, RULE)
    assert (choice.outcome, choice.chain, choice.prefer) == ("stuck", CLAUDE, "claude-sonnet-4")
    assert choice.sticky and choice.state.turns == 2 and choice.state.expires_at == NOW + RULE.ttl_s


def test_a_confident_high_stakes_turn_upgrades_a_cheap_session() -> None:
    choice = decide(
        _state("code_generation", KIMI), _proposal("security_audit", 0.95, CLAUDE), NOW, RULE
    )
    assert (choice.outcome, choice.chain) == ("upgraded", CLAUDE)
    assert choice.state.intent == "security_audit" and choice.state.turns == 2
    assert "security_audit at confidence 0.95" in choice.reason


def test_an_unsure_high_stakes_turn_does_not_upgrade() -> None:
    choice = decide(
        _state("code_generation", KIMI), _proposal("security_audit", 0.6, CLAUDE), NOW, RULE
    )
    assert (choice.outcome, choice.chain) == ("stuck", KIMI)


def test_a_session_never_moves_down_to_a_cheaper_intent() -> None:
    choice = decide(_state("security_audit"), _proposal("documentation", 0.99, KIMI), NOW, RULE)
    assert (choice.outcome, choice.chain) == ("stuck", CLAUDE)


def test_an_idle_session_expires_and_is_routed_afresh() -> None:
    state = _state("debugging", expires_at=NOW)
    choice = decide(state, _proposal("general", chain=KIMI), NOW, RULE)
    assert (choice.outcome, choice.chain, choice.state.turns) == ("expired", KIMI, 2)


def test_a_cooling_down_deployment_falls_back_then_the_session_sticks_to_who_answered() -> None:
    blocked = {"claude-sonnet-4": "is cooling down"}.get
    choice = decide(_state("debugging"), _proposal("general"), NOW, RULE, blocked)
    assert (choice.outcome, choice.chain, choice.prefer) == ("switched", CLAUDE, None)
    state, outcome, reason = settle(choice, "gpt-4o")
    assert state.deployment == "gpt-4o" and state.chain == CLAUDE and outcome == "switched"
    assert "claude-sonnet-4 is cooling down" in reason and "now sticks to gpt-4o" in reason
    nxt = decide(state, _proposal("general"), NOW + 1, RULE)
    assert (nxt.outcome, nxt.prefer) == ("stuck", "gpt-4o")


def test_a_stuck_deployment_that_fails_moves_the_session_to_who_answered() -> None:
    choice = decide(_state("debugging"), _proposal("general"), NOW, RULE)
    state, outcome, reason = settle(choice, "gpt-4o")
    assert (state.deployment, outcome) == ("gpt-4o", "switched")
    assert reason == "claude-sonnet-4 did not answer: the session now sticks to gpt-4o"


def test_a_new_session_sticks_to_the_group_member_that_answered() -> None:
    choice = decide(None, _proposal(), NOW, RULE)
    state, outcome, _ = settle(choice, "kimi-k2.6-together")
    assert (state.chain, state.deployment, outcome) == (KIMI, "kimi-k2.6-together", "new")
    assert decide(state, _proposal(), NOW, RULE).prefer == "kimi-k2.6-together"


def test_a_bound_turn_takes_its_own_chain_once_and_the_session_keeps_its_own() -> None:
    local = ("qwen-32b-local",)
    choice = decide(
        _state("debugging"), _proposal(chain=local, binding="contains a secret: aws_key"), NOW, RULE
    )
    assert (choice.outcome, choice.chain, choice.sticky) == ("switched", local, False)
    state, outcome, _ = settle(choice, "qwen-32b-local")
    assert (state.chain, state.deployment, outcome) == (CLAUDE, "claude-sonnet-4", "switched")
    assert decide(state, _proposal(), NOW + 1, RULE).chain == CLAUDE


def test_session_names_header_first_scoped_by_client_and_hashed() -> None:
    a = name_session(
        header="task-7", metadata="m", client="key1", system="", first_user="x", user_turns=1
    )
    b = name_session(
        header="task-7", metadata=None, client="key2", system="", first_user="x", user_turns=1
    )
    meta = name_session(
        header=None, metadata="task-7", client="key1", system="", first_user="x", user_turns=1
    )
    assert a is not None and b is not None and meta is not None
    assert a.source == "header" and not a.opening and a.key != b.key and meta.key == a.key
    assert len(a.key) == 64 and "task-7" not in a.key


def test_a_derived_session_opens_with_one_user_turn_and_continues_with_more() -> None:
    one = name_session(
        header=None, metadata=None, client="ana", system="sys", first_user="fix it", user_turns=1
    )
    two = name_session(
        header=None, metadata=None, client="ana", system="sys", first_user="fix it", user_turns=3
    )
    other = name_session(
        header=None, metadata=None, client="ana", system="sys2", first_user="fix it", user_turns=3
    )
    assert one is not None and two is not None and other is not None
    assert one.opening and not two.opening and one.key == two.key != other.key
    assert (
        name_session(
            header=None, metadata=None, client=None, system="", first_user=None, user_turns=0
        )
        is None
    )


def test_session_config_is_validated_naming_the_field() -> None:
    base = {
        "deployments": {"a": {"model": "openai/gpt-4o", "tier": "primary"}},
        "policy": {"default": ["a"]},
    }
    config = parse_config(
        {
            **base,
            "router": {
                "sessions": {
                    "ttl_s": 600,
                    "upgrade": {"intents": ["security_audit"], "min_confidence": 0.7},
                }
            },
        }
    )
    assert config.sessions == SessionRule(
        ttl_s=600, upgrade_intents=("security_audit",), upgrade_min_confidence=0.7
    )
    bad = [
        ({"ttl_s": 0}, "router.sessions.ttl_s"),
        ({"enabled": "yes"}, "router.sessions.enabled"),
        ({"upgrade": {"intents": ["typo"]}}, "router.sessions.upgrade.intents[0]"),
        ({"upgrade": {"min_confidence": 2}}, "router.sessions.upgrade.min_confidence"),
        ({"max_sessions": 0.5}, "router.sessions.max_sessions"),
        ({"ttl": 5}, "router.sessions.ttl"),
    ]
    for given_, field in bad:
        with pytest.raises(ConfigError) as raised:
            parse_config({**base, "router": {"sessions": given_}})
        assert str(raised.value).startswith(field), raised.value


# --- properties -------------------------------------------------------------------------------

NAMES = ("a", "b", "c", "d", "e")
chains = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True).map(tuple)
intents = st.sampled_from(INTENTS)
confidences = st.floats(0.0, 1.0)
proposals = st.builds(
    Proposal, intents, confidences, chains, st.one_of(st.none(), st.just("contains a secret"))
)


@st.composite
def states(draw: st.DrawFn) -> SessionState:
    chain = draw(chains)
    return SessionState(
        chain,
        draw(st.sampled_from(chain)),
        draw(intents),
        draw(confidences),
        draw(st.integers(1, 500)),
        NOW + draw(st.floats(-7200, 7200)),
    )


@given(st.one_of(st.none(), states()), proposals, st.sets(st.sampled_from(NAMES)))
def test_every_turn_takes_the_session_or_its_own_chain_and_refreshes_the_session(
    state: SessionState | None, proposal: Proposal, cooling: set[str]
) -> None:
    choice = decide(
        state, proposal, NOW, RULE, lambda n: "is cooling down" if n in cooling else None
    )
    assert choice.outcome in OUTCOMES and choice.reason
    assert choice.chain in {proposal.chain, state.chain if state else proposal.chain}
    assert choice.state.expires_at == NOW + RULE.ttl_s
    assert choice.state.turns == (state.turns + 1 if state else 1)
    assert choice.prefer is None or (
        choice.prefer == choice.state.deployment and choice.prefer not in cooling
    )
    assert choice.state.deployment in choice.state.chain


@given(states(), proposals)
def test_a_live_unbound_session_only_leaves_its_chain_by_an_upgrade(
    state: SessionState, proposal: Proposal
) -> None:
    choice = decide(state, replace(proposal, binding=None), NOW, RULE)
    if state.expires_at > NOW and choice.chain != state.chain:
        assert choice.outcome == "upgraded"
        assert proposal.intent in RULE.upgrade_intents and state.intent not in RULE.upgrade_intents
        assert proposal.confidence >= RULE.upgrade_min_confidence
    if state.expires_at <= NOW:
        assert choice.outcome == "expired" and choice.chain == proposal.chain


@given(states(), proposals, st.sampled_from(NAMES))
def test_a_bound_turn_never_changes_what_the_session_stuck_to(
    state: SessionState, proposal: Proposal, answered: str
) -> None:
    state = replace(state, expires_at=NOW + 10)
    choice = decide(state, replace(proposal, binding="contains a secret"), NOW, RULE)
    after, outcome, _ = settle(choice, answered)
    assert outcome == "switched" and choice.chain == proposal.chain
    assert (after.chain, after.deployment, after.intent) == (
        state.chain,
        state.deployment,
        state.intent,
    )


@given(
    st.lists(
        st.tuples(proposals, st.floats(0, 7200), st.sampled_from(NAMES)), min_size=1, max_size=30
    )
)
def test_between_expiries_a_session_upgrades_at_most_once_and_sticks_to_who_answered(
    turns: list[tuple[Proposal, float, str]],
) -> None:
    state: SessionState | None = None
    now = NOW
    upgrades = 0
    for proposal, gap, answered_pick in turns:
        now += gap
        choice = decide(state, proposal, now, RULE)
        if choice.outcome in ("new", "expired"):
            upgrades = 0
        upgrades += choice.outcome == "upgraded"
        assert upgrades <= 1
        answered = answered_pick if answered_pick in choice.chain else choice.chain[0]
        state, outcome, _ = settle(choice, answered)
        assert outcome in OUTCOMES
        if choice.sticks:
            assert state.deployment == answered


@given(states())
def test_state_round_trips_through_json(state: SessionState) -> None:
    assert SessionState.from_json(state.to_json()) == state


@given(st.one_of(st.text(), st.binary()))
def test_a_corrupt_stored_state_reads_as_none_never_raises(text: str | bytes) -> None:
    state = SessionState.from_json(text)
    assert state is None or isinstance(state, SessionState)
