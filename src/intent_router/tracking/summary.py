"""Pure: a window of decision-log rows -> the metrics a serving run logs."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from intent_router.labels import INTENTS

#: The decision-log columns a summary reads.
SUMMARY_COLUMNS = (
    "id",
    "endpoint",
    "status",
    "intent",
    "source",
    "chain",
    "deployment",
    "cost_usd",
    "premium_cost_usd",
    "latency_ms",
    "budget",
    "prompt_tokens",
    "cached_tokens",
    "input_cost_usd",
    "cached_input_cost_usd",
)


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Requests, spend, savings, fallback and escalation shares, latency percentiles and
    per-intent counts of one window of decisions (chat and route alike)."""
    if not rows:
        return {}
    chats = [r for r in rows if r["endpoint"] != "route"]
    answered = [r for r in chats if r["status"] == "ok" and r.get("deployment")]
    classified = [r for r in rows if r.get("intent")]
    escalated = [r for r in classified if r["source"] in ("llm", "default")]
    fell_back = [r for r in answered if r["chain"] and r["deployment"] != r["chain"][0]]
    cost = sum(float(r["cost_usd"]) for r in chats)
    premium = sum(float(r["premium_cost_usd"]) for r in chats)
    latencies = np.array([float(r["latency_ms"]) for r in rows])
    metrics: dict[str, float] = {
        "requests": float(len(rows)),
        "chat_requests": float(len(chats)),
        "failed_requests": float(sum(1 for r in rows if r["status"] != "ok")),
        "cost_usd": cost,
        "premium_cost_usd": premium,
        "savings_vs_premium": premium / cost if cost > 0 else 0.0,
        "fallback_share": len(fell_back) / len(answered) if answered else 0.0,
        "escalation_share": len(escalated) / len(classified) if classified else 0.0,
        "budget_downgrades": float(sum(1 for r in chats if r.get("budget") == "downgraded")),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
    }
    counts = Counter(r["intent"] for r in classified)
    for intent in INTENTS:
        metrics[f"requests_{intent}"] = float(counts.get(intent, 0))
    metrics.update(_cache_metrics(answered))
    return metrics


def _cache_metrics(answered: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Input tokens and input cost, cached (read from the provider's prompt cache) and
    uncached (the rest, cache writes included), and the cache hit rate overall and per
    deployment: cached input tokens over all input tokens of the answers."""
    cached = sum(int(r.get("cached_tokens") or 0) for r in answered)
    prompt = sum(int(r.get("prompt_tokens") or 0) for r in answered)
    input_cost = sum(float(r.get("input_cost_usd") or 0.0) for r in answered)
    cached_cost = sum(float(r.get("cached_input_cost_usd") or 0.0) for r in answered)
    metrics = {
        "input_tokens_cached": float(cached),
        "input_tokens_uncached": float(max(prompt - cached, 0)),
        "input_cost_cached_usd": cached_cost,
        "input_cost_uncached_usd": max(input_cost - cached_cost, 0.0),
        "cache_hit_rate": cached / prompt if prompt else 0.0,
    }
    per_deployment: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in answered:
        tokens = per_deployment[str(r["deployment"])]
        tokens[0] += int(r.get("cached_tokens") or 0)
        tokens[1] += int(r.get("prompt_tokens") or 0)
    for deployment, (hits, total) in per_deployment.items():
        name = _METRIC_UNSAFE.sub("_", deployment)
        metrics[f"input_tokens_cached_{name}"] = float(hits)
        metrics[f"cache_hit_rate_{name}"] = hits / total if total else 0.0
    return metrics


#: What MLflow does not accept in a metric name (a deployment's name may hold anything).
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/ ]")
