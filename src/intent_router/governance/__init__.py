"""Governance: team overrides, client keys, budgets and rate limits."""

from intent_router.governance.counters import (
    Counters,
    CountersUnavailable,
    InProcessCounters,
    RateDecision,
    RedisCounters,
    Reservation,
    make_counters,
)

__all__ = [
    "Counters",
    "CountersUnavailable",
    "InProcessCounters",
    "RateDecision",
    "RedisCounters",
    "Reservation",
    "make_counters",
]
