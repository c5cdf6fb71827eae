"""Prometheus metrics: one registry per app, aggregated across workers when the service runs
several (``PROMETHEUS_MULTIPROC_DIR`` set: prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from intent_router.providers.upstream_validation import usage_input_split
from intent_router.types import Attempt

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class RouterMetrics:
    """Requests, latency, escalations, fallbacks, provider errors and cost."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "intent_router_requests_total",
            "Requests by endpoint, intent, decision source and HTTP status (failed ones too)",
            ["endpoint", "intent", "source", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "intent_router_request_seconds",
            "Request latency by endpoint and HTTP status",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.escalations = Counter(
            "intent_router_escalations_total",
            "LLM-classifier escalations by outcome (llm or default)",
            ["outcome"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "intent_router_fallbacks_total",
            "Chat requests answered by a deployment other than the chain's first",
            registry=self.registry,
        )
        self.provider_errors = Counter(
            "intent_router_provider_errors_total",
            "Failed or skipped attempts by deployment and outcome",
            ["deployment", "outcome", "status"],
            registry=self.registry,
        )
        self.cost = Counter(
            "intent_router_cost_usd_total",
            "Spend by answering deployment",
            ["deployment"],
            registry=self.registry,
        )
        self.input_tokens = Counter(
            "intent_router_input_tokens_total",
            "Input tokens by answering deployment, read from the provider's prompt "
            "cache (cached=true) or not (cache writes count as false)",
            ["deployment", "cached"],
            registry=self.registry,
        )
        self.governance = Counter(
            "intent_router_governance_total",
            "Client-key events: unauthenticated, rate_limit_exceeded, budget_exceeded, downgraded",
            ["event"],
            registry=self.registry,
        )
        self.sessions = Counter(
            "intent_router_session_turns_total",
            "Turns of sticky sessions by endpoint and outcome: new, stuck, switched, "
            "upgraded, expired",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        # labels() takes a lock and checks its arguments at every call: each request's children
        # are looked up once per label set, then kept.
        self._children: dict[tuple[str, ...], Any] = {}

    def record_route(
        self, endpoint: str, intent: str | None, source: str, status: int = 200
    ) -> None:
        """One request of ``endpoint``; a failed one with the status it was answered."""
        self._child(self.requests, "requests", endpoint, intent or "-", source, str(status)).inc()
        if source in ("llm", "default") and intent is not None:
            self.escalations.labels(source).inc()

    def record_input_tokens(self, deployment: str, usage: Any) -> int:
        """An answer's input tokens, cached and not; returns the cached count (0 without usage)."""
        uncached, cached, cache_write, _ = usage_input_split(usage)
        if uncached + cache_write:
            self._child(self.input_tokens, "input_tokens", deployment, "false").inc(
                uncached + cache_write
            )
        if cached:
            self._child(self.input_tokens, "input_tokens", deployment, "true").inc(cached)
        return cached

    def record_session(self, endpoint: str, outcome: str) -> None:
        self._child(self.sessions, "sessions", endpoint, outcome).inc()

    def record_latency(self, endpoint: str, status: int, seconds: float) -> None:
        self._child(self.latency, "latency", endpoint, str(status)).observe(seconds)

    def _child(self, metric: Any, name: str, *labels: str) -> Any:
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        attempts = list(attempts)
        for attempt in attempts:
            if attempt.outcome != "ok":
                self.provider_errors.labels(
                    attempt.deployment, attempt.outcome, str(attempt.status or "-")
                ).inc()
        if attempts and attempts[-1].outcome == "ok" and len(attempts) > 1:
            self.fallbacks.inc()

    def render(self) -> bytes:
        """This process's metrics, or every worker's summed when running multiprocess."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)
