"""Pure aggregation of replayed prompts: quality, escalation, cost per 1,000 requests against
always-premium and always-primary, under/over-routing, and the threshold trade-off curve."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from intent_router.evaluation.data import LabeledPrompt
from intent_router.evaluation.replay import (
    PromptOutcome,
    PromptTokens,
    ReplaySettings,
    price_per_mtok,
    replay,
)
from intent_router.labels import HIGH_STAKES_INTENTS, INTENTS
from intent_router.thresholds import (
    DEFAULT_TARGET_ACCURACY,
    THRESHOLD_GRID,
    CoveragePoint,
    recommend_threshold,
    risk_coverage_from,
)
from intent_router.types import Prediction


@dataclass(frozen=True)
class RoutingSummary:
    """What one replay amounts to; ``metrics()`` gives the MLflow metric names."""

    rows: int
    accuracy: float  # of the final intent
    macro_f1: float
    f1_per_label: dict[str, float]
    escalation_share: float
    cost_per_1k_routed_usd: float  # includes the LLM-classifier calls
    cost_per_1k_premium_usd: float
    cost_per_1k_primary_usd: float
    savings_vs_premium: float  # premium cost / routed cost
    under_routing_share: float  # of high-stakes prompts
    over_routing_share: float  # of the other prompts
    risk_coverage: tuple[CoveragePoint, ...]  # of the local predictions
    recommended_threshold: float

    def metrics(self) -> dict[str, float]:
        """Scalar metrics, named as logged to MLflow."""
        named = {
            name: float(getattr(self, name))
            for name in (
                "accuracy",
                "macro_f1",
                "escalation_share",
                "cost_per_1k_routed_usd",
                "cost_per_1k_premium_usd",
                "cost_per_1k_primary_usd",
                "savings_vs_premium",
                "under_routing_share",
                "over_routing_share",
                "recommended_threshold",
            )
        }
        named.update({f"f1_{label}": score for label, score in self.f1_per_label.items()})
        return named


@dataclass(frozen=True)
class TradeoffPoint:
    """One policy on the quality-vs-cost plane. ``accuracy`` is None for the fixed policies,
    which classify nothing."""

    policy: str
    threshold: float | None
    cost_per_1k_usd: float
    accuracy: float | None
    served_as_intended: float  # share routed at least as capably as the true intent's policy


def summarize(
    outcomes: Sequence[PromptOutcome],
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    thresholds: Sequence[float] = THRESHOLD_GRID,
) -> RoutingSummary:
    """Aggregate replayed prompts; the risk-coverage curve is over ``thresholds``."""
    if not outcomes:
        raise ValueError("nothing to summarize: no outcomes")
    macro_f1, per_label = _f1_scores(
        [o.true_intent for o in outcomes], [o.final_intent for o in outcomes]
    )
    routed = per_1k(o.cost_usd for o in outcomes)
    premium = per_1k(o.premium_cost_usd for o in outcomes)
    points = risk_coverage_from(
        np.array([o.confidence for o in outcomes]),
        np.array([o.local_correct for o in outcomes]),
        thresholds,
    )
    return RoutingSummary(
        rows=len(outcomes),
        accuracy=_share(o.correct for o in outcomes),
        macro_f1=macro_f1,
        f1_per_label=per_label,
        escalation_share=_share(o.escalated for o in outcomes),
        cost_per_1k_routed_usd=routed,
        cost_per_1k_premium_usd=premium,
        cost_per_1k_primary_usd=per_1k(o.primary_cost_usd for o in outcomes),
        savings_vs_premium=_ratio(premium, routed),
        under_routing_share=_share(o.under_routed for o in outcomes if o.high_stakes),
        over_routing_share=_share(o.over_routed for o in outcomes if not o.high_stakes),
        risk_coverage=tuple(points),
        recommended_threshold=recommend_threshold(points, target_accuracy),
    )


def tradeoff_curve(
    examples: Sequence[LabeledPrompt],
    predictions: Sequence[Prediction],
    tokens: Sequence[PromptTokens],
    settings: ReplaySettings,
    thresholds: Sequence[float] = THRESHOLD_GRID,
) -> list[TradeoffPoint]:
    """The routed policy at every threshold (same escalation mode), then the fixed policies."""
    points = []
    for threshold in thresholds:
        outcomes = replay(examples, predictions, tokens, replace(settings, threshold=threshold))
        points.append(
            TradeoffPoint(
                "routed",
                threshold,
                per_1k(o.cost_usd for o in outcomes),
                _share(o.correct for o in outcomes),
                _share(o.served_as_intended for o in outcomes),
            )
        )
    outcomes = replay(examples, predictions, tokens, settings)
    for policy, name, costs in (
        ("always-primary", settings.primary, [o.primary_cost_usd for o in outcomes]),
        ("always-premium", settings.premium, [o.premium_cost_usd for o in outcomes]),
    ):
        price = price_per_mtok(settings.config.deployments[name])
        served = _share(o.intended_price_per_mtok <= price for o in outcomes)
        points.append(TradeoffPoint(policy, None, per_1k(costs), None, served))
    return points


def breakdown(
    examples: Sequence[LabeledPrompt], outcomes: Sequence[PromptOutcome]
) -> dict[str, float]:
    """Accuracy of the locally kept share, and, for real corpus rows, the final intent's
    macro-F1 on clear and ambiguous prompts and accuracy per source type."""
    kept = [o for o in outcomes if not o.escalated]
    out = {"kept_accuracy": _share(o.local_correct for o in kept) if kept else 1.0}
    for name, flag in (("clear", False), ("ambiguous", True)):
        chosen = [o for e, o in zip(examples, outcomes) if e.ambiguous is flag]
        if chosen and any(e.ambiguous for e in examples):
            out[f"macro_f1_{name}"] = _f1_scores(
                [o.true_intent for o in chosen], [o.final_intent for o in chosen]
            )[0]
    for source in sorted({e.source_type for e in examples if e.source_type}):
        chosen = [o for e, o in zip(examples, outcomes) if e.source_type == source]
        out[f"accuracy_source_{source}"] = _share(o.correct for o in chosen)
    return out


def per_1k(costs: Iterable[float]) -> float:
    """Mean cost per request times 1,000."""
    values = list(costs)
    return 1000.0 * sum(values) / len(values) if values else 0.0


def _ratio(premium: float, routed: float) -> float:
    """How many times cheaper routing is; free routing saves infinitely, unless premium is free too."""
    if routed > 0:
        return premium / routed
    return math.inf if premium > 0 else 1.0


def _share(flags: Iterable[bool]) -> float:
    """The share of true flags; 0.0 when there are none (nothing could go wrong)."""
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def _f1_scores(y_true: list[str], y_pred: list[str]) -> tuple[float, dict[str, float]]:
    """Macro-F1 and per-label F1 over the labels that occur (true or predicted); F1 is
    2TP / (2TP + FP + FN), as sklearn's f1_score with zero_division=0."""
    true, pred = np.array(y_true), np.array(y_pred)
    labels = [label for label in INTENTS if label in set(y_true) | set(y_pred)]
    per_label = {}
    for label in labels:
        tp = int(np.sum((true == label) & (pred == label)))
        wrong = int(np.sum((true == label) != (pred == label)))  # FP + FN
        per_label[label] = 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0
    return float(np.mean(list(per_label.values()))), per_label


#: The regret weights the cost-quality curve sweeps (the config's weight multiplies the matrix).
REGRET_WEIGHTS: Final[tuple[float, ...]] = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: Prices of a second of LLM-classifier latency (USD) the escalation curve sweeps.
ASK_PRICES: Final[tuple[float, ...]] = (0.0, 0.002, 0.004, 0.006, 0.008, 0.012, 0.02, 0.05)
#: The routing variants ``make eval`` compares: (name, mode, asks the LLM classifier).
ROUTING_VARIANTS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("argmax_alone", "argmax", False),
    ("regret_alone", "regret", False),
    ("argmax", "argmax", True),
    ("regret", "regret", True),
)


@dataclass(frozen=True)
class RegretPoint:
    """Regret routing (the model alone) at one weight."""

    weight: float
    under_routing_share: float
    over_routing_share: float
    cost_per_1k_usd: float
    accuracy_served: float  # share routed at least as capably as the true intent needs
    under_routing_worst_intent: float = 0.0  # the worst of the high-stakes intents


@dataclass(frozen=True)
class AskPoint:
    """Regret routing with the LLM classifier at one price of its latency."""

    latency_usd_per_s: float
    escalation_share: float
    under_routing_share: float
    under_routing_worst_intent: float
    over_routing_share: float
    cost_per_1k_usd: float


def routing_quality(outcomes: Sequence[PromptOutcome]) -> dict[str, float]:
    """Under-routing (all high-stakes prompts and per high-stakes intent), over-routing, cost
    per 1,000 requests and escalation share of one replay."""
    out = {
        "under_routing_share": _share(o.under_routed for o in outcomes if o.high_stakes),
        "over_routing_share": _share(o.over_routed for o in outcomes if not o.high_stakes),
        "cost_per_1k_usd": per_1k(o.cost_usd for o in outcomes),
        "escalation_share": _share(o.escalated for o in outcomes),
    }
    per_intent = {
        intent: _share(o.under_routed for o in outcomes if o.true_intent == intent)
        for intent in sorted(HIGH_STAKES_INTENTS)
    }
    out.update({f"under_routing_{intent}": share for intent, share in per_intent.items()})
    out["under_routing_worst_intent"] = max(per_intent.values())
    return out


def compare_routing(
    examples: Sequence[LabeledPrompt],
    predictions: Sequence[Prediction],
    tokens: Sequence[PromptTokens],
    settings: ReplaySettings,
) -> dict[str, dict[str, float]]:
    """``routing_quality`` of argmax and regret routing, the model alone and with escalation
    (in the settings' escalation mode), keyed by variant name."""
    return {
        name: routing_quality(
            replay(
                examples, predictions, tokens, replace(settings, mode=mode, ask=ask, weight=None)
            )
        )
        for name, mode, ask in ROUTING_VARIANTS
    }


def regret_curve(
    examples: Sequence[LabeledPrompt],
    predictions: Sequence[Prediction],
    tokens: Sequence[PromptTokens],
    settings: ReplaySettings,
    weights: Sequence[float] = REGRET_WEIGHTS,
) -> list[RegretPoint]:
    """Regret routing of the model alone at every weight: the cost-quality curve."""
    points = []
    for weight in weights:
        outcomes = replay(
            examples,
            predictions,
            tokens,
            replace(settings, mode="regret", ask=False, weight=weight),
        )
        quality = routing_quality(outcomes)
        points.append(
            RegretPoint(
                weight,
                quality["under_routing_share"],
                quality["over_routing_share"],
                quality["cost_per_1k_usd"],
                _share(o.served_as_intended for o in outcomes),
                quality["under_routing_worst_intent"],
            )
        )
    return points


def ask_curve(
    examples: Sequence[LabeledPrompt],
    predictions: Sequence[Prediction],
    tokens: Sequence[PromptTokens],
    settings: ReplaySettings,
    prices: Sequence[float] = ASK_PRICES,
) -> list[AskPoint]:
    """Regret routing with the LLM classifier (the settings' escalation mode, the config's
    weight) at every price of a second of its latency: how escalation share buys quality."""
    points = []
    for price in prices:
        routing = replace(settings.config.routing, latency_usd_per_s=price)
        config = replace(settings.config, routing=routing)
        q = routing_quality(
            replay(
                examples,
                predictions,
                tokens,
                replace(settings, config=config, mode="regret", ask=True, weight=None),
            )
        )
        points.append(
            AskPoint(
                price,
                q["escalation_share"],
                q["under_routing_share"],
                q["under_routing_worst_intent"],
                q["over_routing_share"],
                q["cost_per_1k_usd"],
            )
        )
    return points
