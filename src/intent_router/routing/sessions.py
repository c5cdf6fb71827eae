"""Pure rule: sticky sessions. Which chain a turn of a conversation takes, and why.

**Naming.** A session is named by the client: the ``x-session-id`` header, else the request's
``metadata.session_id``. Without either, it is derived: the client (its client key, else its
``user``), the system prompt and the first user message, hashed. An id is scoped to the client
that sent it (two client keys sending the same ``x-session-id`` are two sessions), and only
its SHA-256 (``SessionId.key``) leaves this module: it is the store's key and what the
decision log records. A derived session with a single user turn is the opening of a
conversation, so it always starts afresh (sending the same first prompt again is a new task).

**Deciding** (``decide``): the first routed turn fixes the session's chain. Later turns reuse
it (``stuck``), trying first the deployment that last answered (for a model group: the member,
whose prompt cache is warm), unless

- the turn is bound to its own chain (a secret in it, a pin or a forbidding override): it takes
  that chain this once (``switched``) and the session keeps its own;
- the deployment it stuck to is cooling down: the turn falls back along the session's chain
  (``switched``), and ``settle`` then sticks the session to whichever deployment answered;
- the turn's intent is one of ``upgrade_intents`` (the high-stakes ones by default), the
  session's is not, and the local classifier is at least ``upgrade_min_confidence`` sure: the
  turn takes its own chain and the session follows it (``upgraded``);
- the session was idle for ``ttl_s`` or more: routed afresh (``expired``).

A session never moves down: a cheap intent after a high-stakes one stays on the high-stakes
chain. Every function here is pure; the clock is an argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from intent_router.config import SessionRule
from intent_router.types import (
    Proposal,
    SessionChoice,
    SessionId,
    SessionOutcome,
    SessionState,
)


def name_session(
    *,
    header: str | None,
    metadata: str | None,
    client: str | None,
    system: str,
    first_user: str | None,
    user_turns: int,
) -> SessionId | None:
    """The session a request belongs to; None when it names none and has no user message."""
    scope = client or ""
    for given, source in ((header, "header"), (metadata, "metadata")):
        if given:
            return SessionId(_digest("id", scope, given), source)  # type: ignore[arg-type]
    if first_user is None:
        return None
    return SessionId(
        _digest("derived", scope, system, first_user), "derived", opening=user_turns <= 1
    )


def _digest(*parts: str) -> str:
    # Each part prefixed with its length (netstring-like): no two part lists hash alike.
    text = "".join(f"{len(part)}:{part}," for part in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def decide(
    state: SessionState | None,
    proposal: Proposal,
    now: float,
    rule: SessionRule,
    blocked: Callable[[str], str | None] = lambda _: None,
) -> SessionChoice:
    """The chain of one turn of a session in ``state`` (None: unknown), given how the turn
    would be routed alone; ``blocked(deployment)`` says why a deployment cannot be tried now
    (cooling down), or None."""
    if state is None:
        return _fresh(proposal, now, rule, "new", "first turn of the session", turns=1)
    if now >= state.expires_at:
        return _fresh(
            proposal,
            now,
            rule,
            "expired",
            f"idle for over {rule.ttl_s:g} s: routed afresh",
            turns=state.turns + 1,
        )
    ongoing = SessionState(
        state.chain,
        state.deployment,
        state.intent,
        state.confidence,
        state.turns + 1,
        now + rule.ttl_s,
    )
    if proposal.binding is not None:
        return SessionChoice(
            proposal.chain,
            None,
            "switched",
            f"{proposal.binding}: this turn only",
            ongoing,
            sticks=False,
        )
    if _upgrades(state, proposal, rule):
        if proposal.chain[0] != state.chain[0]:
            return _fresh(
                proposal,
                now,
                rule,
                "upgraded",
                f"{proposal.intent} at confidence {proposal.confidence:.2f} >= "
                f"{rule.upgrade_min_confidence:g}: upgraded from {state.intent}",
                turns=ongoing.turns,
            )
        ongoing = replace(ongoing, intent=proposal.intent, confidence=proposal.confidence)
    why = blocked(state.deployment)
    if why is not None:
        return SessionChoice(
            state.chain,
            None,
            "switched",
            f"{state.deployment} {why}: falling back along the session's chain",
            ongoing,
        )
    return SessionChoice(
        state.chain,
        state.deployment,
        "stuck",
        f"turn {ongoing.turns} of a session on {state.deployment}",
        ongoing,
    )


def _upgrades(state: SessionState, proposal: Proposal, rule: SessionRule) -> bool:
    return (
        proposal.intent in rule.upgrade_intents
        and state.intent not in rule.upgrade_intents
        and proposal.confidence >= rule.upgrade_min_confidence
    )


def _fresh(
    proposal: Proposal,
    now: float,
    rule: SessionRule,
    outcome: SessionOutcome,
    reason: str,
    turns: int,
) -> SessionChoice:
    state = SessionState(
        proposal.chain,
        proposal.chain[0],
        proposal.intent,
        proposal.confidence,
        turns,
        now + rule.ttl_s,
    )
    return SessionChoice(proposal.chain, None, outcome, reason, state)


def settle(choice: SessionChoice, answered: str) -> tuple[SessionState, SessionOutcome, str]:
    """The session after ``answered`` (a deployment of the turn's walk) answered the turn, and
    the turn's final outcome and reason: a session sticks to whoever answered."""
    state = choice.state
    if not choice.sticks or answered == state.deployment:
        return state, choice.outcome, choice.reason
    moved = replace(state, deployment=answered)
    if choice.outcome == "stuck":
        return (
            moved,
            "switched",
            f"{state.deployment} did not answer: the session now sticks to {answered}",
        )
    if choice.outcome == "switched":
        return moved, "switched", f"{choice.reason}; the session now sticks to {answered}"
    return moved, choice.outcome, f"{choice.reason}; sticks to {answered}, which answered"
