"""Pure: a conversation's turns as routed one by one -> which deployment answers each turn when
every turn is routed on its own (per-turn) and under sticky sessions (routing/sessions.py),
and what each costs with the providers' prompt cache (session_cost.py). No I/O, no MLflow.

Every deployment is assumed to answer (no failures, no cooldowns), turns come
``TURN_INTERVAL_S`` apart (well within a session's TTL), and a model group's member is drawn
by its strategy's order with nothing measured yet (``weighted``: by weight).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from intent_router.config import RouterConfig
from intent_router.evaluation.replay import price_per_mtok
from intent_router.evaluation.session_cost import SessionCost, session_cost
from intent_router.labels import HIGH_STAKES_INTENTS
from intent_router.routing.groups import Member, expand_chain, order_members
from intent_router.routing.sessions import decide, settle
from intent_router.types import Proposal, SessionState

TURN_INTERVAL_S: Final[float] = 60.0


@dataclass(frozen=True)
class TurnRoute:
    """How a turn is routed on its own: its intent, the confidence, the policy's chain."""

    intent: str
    confidence: float
    chain: tuple[str, ...]


@dataclass(frozen=True)
class ConversationTokens:
    """A conversation's user turns and answers, in tokens (the same under every policy)."""

    id: str
    user_tokens: tuple[int, ...]
    reply_tokens: tuple[int, ...]


@dataclass(frozen=True)
class SessionReplay:
    """One conversation under both policies."""

    conversation: str
    per_turn: SessionCost
    sticky: SessionCost
    sticky_outcomes: tuple[str, ...]  # the session rule's outcome of every turn


def under_routed(
    cost: SessionCost, intents: Sequence[str | None], config: RouterConfig
) -> tuple[int, int]:
    """(high-stakes turns answered by a deployment cheaper than their labelled intent's policy
    wants, labelled high-stakes turns): the quality side of sticking (``make eval``'s
    under-routing, turn by turn)."""
    under = stakes = 0
    for turn, intent in zip(cost.turns, intents):
        if intent in HIGH_STAKES_INTENTS:
            stakes += 1
            intended = config.deployments[config.policy[intent][0]]
            under += price_per_mtok(config.deployments[turn.deployment]) < price_per_mtok(intended)
    return under, stakes


def first_deployment(chain: Sequence[str], config: RouterConfig, rng: random.Random) -> str:
    """Who a chain tries first: its first entry, or for a model group the member its strategy
    orders first."""
    group_of = {n: d.group for n, d in config.deployments.items()}

    def order(group: str) -> tuple[str, ...]:
        spec = config.groups[group]
        members = [Member(n, config.deployments[n].weight) for n in spec.members]
        return order_members(members, spec.strategy, rng)

    return expand_chain(chain[:1], group_of, order)[0]


def per_turn_deployments(
    routes: Sequence[TurnRoute], config: RouterConfig, rng: random.Random
) -> list[str]:
    return [first_deployment(route.chain, config, rng) for route in routes]


def sticky_deployments(
    routes: Sequence[TurnRoute], config: RouterConfig, rng: random.Random
) -> tuple[list[str], list[str]]:
    """The deployment of every turn and the rule's outcome, a session from the first turn."""
    state: SessionState | None = None
    answered: list[str] = []
    outcomes: list[str] = []
    for index, route in enumerate(routes):
        choice = decide(
            state,
            Proposal(route.intent, route.confidence, route.chain),
            index * TURN_INTERVAL_S,
            config.sessions,
        )
        deployment = choice.prefer or first_deployment(choice.chain, config, rng)
        state, outcome, _ = settle(choice, deployment)
        answered.append(deployment)
        outcomes.append(outcome)
    return answered, outcomes


def replay_session(
    conversation: ConversationTokens,
    routes: Sequence[TurnRoute],
    config: RouterConfig,
    prefix_tokens: int,
    seed: int = 0,
    kept: bool = True,
) -> SessionReplay:
    """Both policies on one conversation (each drawing group members from its own ``seed``);
    ``kept``: a deployment's prompt cache outlives a switch away from it (session_cost.py)."""
    if len(routes) != len(conversation.user_tokens):
        raise ValueError("one route per turn")
    per_turn = per_turn_deployments(routes, config, random.Random(seed))
    sticky, outcomes = sticky_deployments(routes, config, random.Random(seed))

    def cost(names: Sequence[str]) -> SessionCost:
        return session_cost(
            [config.deployments[n] for n in names],
            conversation.user_tokens,
            conversation.reply_tokens,
            prefix_tokens,
            kept,
        )

    return SessionReplay(conversation.id, cost(per_turn), cost(sticky), tuple(outcomes))
