"""One decision-log row -> one MLflow trace whose spans show classify, escalate and each
provider attempt, with the timings the request measured (written after the fact)."""

from __future__ import annotations

from typing import Any

from intent_router.decisions.store import attempts_of

_NS = 1_000_000  # per millisecond


def write_trace(client: Any, experiment_id: str, row: dict[str, Any]) -> str:
    """Create the trace for ``row``; return its trace id."""
    start = int(float(row["created_at"]) * 1e9)
    end = start + int(float(row["latency_ms"]) * _NS)
    prompt = row["prompt_text"] if row.get("prompt_text") else f"sha256:{row['prompt_sha256']}"
    root = client.start_trace(
        name=f"intent-router {row['endpoint']}",
        span_type="CHAIN",
        inputs={"prompt": prompt, "repo": row.get("repo"), "user": row.get("user")},
        attributes={"request_id": row["request_id"], "model_version": row["model_version"]},
        tags={
            "request_id": row["request_id"],
            "intent": str(row.get("intent")),
            "source": row["source"],
        },
        experiment_id=experiment_id,
        start_time_ns=start,
    )
    trace_id, parent = root.trace_id, root.span_id
    cursor = start
    if row.get("intent") is not None:
        cursor = _span(
            client,
            trace_id,
            parent,
            "classify",
            "PARSER",
            cursor,
            float(row["classify_ms"]),
            inputs={"prompt": prompt},
            outputs={"confidence": row["confidence"], "probabilities": row.get("probabilities")},
        )
    if row["source"] in ("llm", "default"):
        cursor = _span(
            client,
            trace_id,
            parent,
            "escalate",
            "LLM",
            cursor,
            float(row["escalate_ms"]),
            outputs={"label": row.get("llm_label"), "error": row.get("escalation_error")},
            error=row["source"] == "default",
        )
    for attempt in attempts_of(row):
        cursor = _span(
            client,
            trace_id,
            parent,
            f"attempt {attempt.deployment}",
            "LLM",
            cursor,
            attempt.latency_ms,
            outputs={"outcome": attempt.outcome, "status": attempt.status, "error": attempt.error},
            error=attempt.outcome != "ok",
        )
    client.end_trace(
        trace_id,
        end_time_ns=max(end, cursor),
        outputs={
            "intent": row.get("intent"),
            "deployment": row.get("deployment"),
            "cost_usd": row["cost_usd"],
            "premium_cost_usd": row["premium_cost_usd"],
        },
        status="OK" if row["status"] == "ok" else "ERROR",
    )
    return str(trace_id)


def _span(
    client: Any,
    trace_id: str,
    parent: str,
    name: str,
    kind: str,
    start: int,
    ms: float,
    inputs: Any = None,
    outputs: Any = None,
    error: bool = False,
) -> int:
    end = start + max(int(ms * _NS), 1)
    span = client.start_span(
        name=name,
        trace_id=trace_id,
        parent_id=parent,
        span_type=kind,
        inputs=inputs,
        start_time_ns=start,
    )
    client.end_span(
        trace_id, span.span_id, outputs=outputs, status="ERROR" if error else "OK", end_time_ns=end
    )
    return end
