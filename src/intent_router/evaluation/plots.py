"""Figures logged with a routing evaluation (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intent_router.evaluation.summary import AskPoint, RegretPoint, TradeoffPoint
from intent_router.thresholds import CoveragePoint


def plot_regret_curve(
    points: Sequence[RegretPoint], argmax: dict[str, float], title: str, path: Path
) -> Path:
    """Cost per 1,000 requests against under- and over-routing: regret routing (the model
    alone) at each weight, and argmax routing (the model alone) as one point."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    costs = [p.cost_per_1k_usd for p in points]
    ax.plot(costs, [p.under_routing_share for p in points], "o-", label="regret: under-routing")
    ax.plot(
        costs,
        [p.over_routing_share for p in points],
        "s--",
        alpha=0.7,
        label="regret: over-routing",
    )
    for p in points:
        ax.annotate(
            f"w={p.weight:g}",
            (p.cost_per_1k_usd, p.under_routing_share),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 4),
        )
    ax.plot(
        [argmax["cost_per_1k_usd"]],
        [argmax["under_routing_share"]],
        "r*",
        markersize=14,
        label="argmax: under-routing",
    )
    ax.plot(
        [argmax["cost_per_1k_usd"]],
        [argmax["over_routing_share"]],
        "rX",
        markersize=10,
        label="argmax: over-routing",
    )
    ax.axhline(0.05, color="grey", linestyle=":", label="5% under-routing target")
    ax.set_xlabel("cost per 1,000 requests (USD)")
    ax.set_ylabel("share of prompts (under: high-stakes; over: the others)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(plt, fig, path)


def plot_ask_curve(
    points: Sequence[AskPoint], argmax: dict[str, float], title: str, path: Path
) -> Path:
    """Escalation share against under-routing (all high-stakes and the worst intent) and cost,
    regret routing with the LLM classifier at each latency price; argmax with it as a point."""
    plt = _pyplot()
    fig, (quality, money) = plt.subplots(1, 2, figsize=(12, 5))
    shares = [p.escalation_share for p in points]
    quality.plot(
        shares, [p.under_routing_share for p in points], "o-", label="regret: under-routing"
    )
    quality.plot(
        shares,
        [p.under_routing_worst_intent for p in points],
        "s--",
        label="regret: worst high-stakes intent",
    )
    quality.plot(shares, [p.over_routing_share for p in points], "^:", label="regret: over-routing")
    for p in points:
        quality.annotate(
            f"${p.latency_usd_per_s:g}/s",
            (p.escalation_share, p.under_routing_share),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 4),
        )
    quality.plot(
        [argmax["escalation_share"]],
        [argmax["under_routing_share"]],
        "r*",
        markersize=14,
        label="argmax + LLM: under-routing",
    )
    quality.axhline(0.05, color="grey", linestyle=":", label="5% target")
    quality.set_xlabel("escalation share")
    quality.set_ylabel("share of prompts")
    quality.legend(fontsize=8)
    money.plot(shares, [p.cost_per_1k_usd for p in points], "o-", label="regret + LLM")
    money.plot(
        [argmax["escalation_share"]],
        [argmax["cost_per_1k_usd"]],
        "r*",
        markersize=14,
        label="argmax + LLM",
    )
    money.set_xlabel("escalation share")
    money.set_ylabel("cost per 1,000 requests (USD)")
    money.legend(fontsize=8)
    for ax in (quality, money):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)


def plot_quality_vs_cost(
    points: Sequence[TradeoffPoint], threshold: float, title: str, path: Path
) -> Path:
    """Cost per 1,000 requests against quality: the routed policy at each grid threshold (intent
    accuracy, and the share served at the intended tier or better) and the fixed policies."""
    plt = _pyplot()
    routed = [p for p in points if p.policy == "routed"]
    fig, ax = plt.subplots(figsize=(8, 6))
    costs = [p.cost_per_1k_usd for p in routed]
    ax.plot(costs, [p.accuracy for p in routed], "o-", label="routed: intent accuracy")
    ax.plot(
        costs,
        [p.served_as_intended for p in routed],
        "s--",
        alpha=0.7,
        label="routed: served at intended tier or better",
    )
    for p in (routed[0], routed[-1]):  # the grid's ends; every label overlaps when costs are close
        ax.annotate(
            f"t={p.threshold:.2f}",
            (p.cost_per_1k_usd, p.accuracy or 0.0),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 4),
        )
    chosen = min(routed, key=lambda p: abs((p.threshold or 0.0) - threshold))
    ax.plot(
        [chosen.cost_per_1k_usd],
        [chosen.accuracy],
        "r*",
        markersize=14,
        label=f"routed at threshold {threshold:.2f}",
    )
    for p, marker in zip([p for p in points if p.policy != "routed"], ("D", "^")):
        ax.plot(
            [p.cost_per_1k_usd],
            [p.served_as_intended],
            marker,
            markersize=10,
            label=f"{p.policy} (served at intended tier or better)",
        )
    ax.set_xlabel("cost per 1,000 requests (USD)")
    ax.set_ylabel("share of prompts")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, path)


def plot_risk_coverage(
    points: Sequence[CoveragePoint], threshold: float, recommended: float, path: Path
) -> Path:
    """Coverage (decided locally) and the local accuracy on that share, per threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    grid = [p.threshold for p in points]
    ax.plot(grid, [p.coverage for p in points], "o-", label="coverage (decided locally)")
    ax.plot(grid, [p.accuracy for p in points], "s-", label="local accuracy on covered share")
    ax.axvline(threshold, color="grey", linestyle="--", label=f"threshold in use {threshold:.2f}")
    ax.axvline(recommended, color="red", linestyle=":", label=f"recommended {recommended:.2f}")
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Risk-coverage of the local classifier")
    return _save(plt, fig, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
