"""Pure: a window of decision-log rows -> the metrics a serving run logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from intent_router.labels import INTENTS

#: The decision-log columns a summary reads.
SUMMARY_COLUMNS = ("id", "endpoint", "status", "intent", "source", "chain", "deployment",
                   "cost_usd", "premium_cost_usd", "latency_ms", "budget")


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
    return metrics
