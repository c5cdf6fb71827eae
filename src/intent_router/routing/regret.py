"""Pure: route on the probability vector. Which intent's chain to use, and whether asking the
LLM classifier is worth its price.

Routing a request of true intent ``t`` as intent ``a`` (using ``a``'s chain) loses

    loss(t, a) = weight * regret[t][a] + max(0, cost[a] - cost[t])

where ``regret`` is the configured matrix (USD a request: the quality lost by a cheaper chain
than ``t`` needs, 0 on the diagonal) and ``cost[x]`` is what the request costs on ``x``'s
chain, so the second term is the money spent above what ``t`` needed (over-routing). A right
route loses nothing. Under the classifier's probabilities ``p`` the chosen intent minimises
the expected loss ``L(a) = sum_t p[t] * loss(t, a)``; ties go to the more probable intent.

Asking the LLM classifier (taken to be right with probability ``llm_accuracy``) would turn
the expected loss ``min_a L(a)`` into about ``(1 - llm_accuracy) * min_a L(a)``: the gain
``llm_accuracy * min_a L(a)`` is weighed against the call's price plus its latency's worth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RegretChoice:
    """The intent whose chain to use, every candidate's expected loss, and whether to ask."""

    routed_as: str
    expected_loss: dict[str, float]
    escalation_gain_usd: float
    escalate: bool


def expected_losses(
    probabilities: Mapping[str, float],
    regret: Mapping[str, Mapping[str, float]],
    costs: Mapping[str, float],
    weight: float = 1.0,
) -> dict[str, float]:
    """``L(a)`` for every intent ``a`` of ``costs`` (USD a request)."""
    return {
        routed: sum(
            p * (weight * regret[true][routed] + max(0.0, cost - costs[true]))
            for true, p in probabilities.items()
            if p > 0.0
        )
        for routed, cost in costs.items()
    }


def route_as(
    probabilities: Mapping[str, float],
    regret: Mapping[str, Mapping[str, float]],
    costs: Mapping[str, float],
    weight: float = 1.0,
) -> str:
    """The intent minimising expected loss; ties go to the more probable intent."""
    return choose(probabilities, regret, costs, weight).routed_as


def choose(
    probabilities: Mapping[str, float],
    regret: Mapping[str, Mapping[str, float]],
    costs: Mapping[str, float],
    weight: float = 1.0,
    *,
    llm_accuracy: float = 0.9,
    escalation_cost_usd: float = 0.0,
) -> RegretChoice:
    """The route and the escalation decision. ``escalation_cost_usd`` is the classifier call's
    price plus what its latency is worth; asking must gain strictly more than that."""
    losses = expected_losses(probabilities, regret, costs, weight)
    best = min(losses, key=lambda a: (losses[a], -probabilities.get(a, 0.0), a))
    gain = llm_accuracy * losses[best]
    return RegretChoice(best, losses, gain, gain > escalation_cost_usd)
