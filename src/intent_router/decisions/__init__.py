"""The decision log: every routing decision, durably, in a SQL table (SQLite by default)."""

from intent_router.decisions.records import AttemptRecord, Decision, Feedback, prompt_digest
from intent_router.decisions.store import DecisionStore
from intent_router.decisions.writer import DecisionWriter

__all__ = [
    "AttemptRecord",
    "Decision",
    "DecisionStore",
    "DecisionWriter",
    "Feedback",
    "prompt_digest",
]
