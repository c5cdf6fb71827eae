"""SQLAlchemy Core tables of the decision log, and the queries the service, MLflow tracking
and `make harvest` need. Works on SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from intent_router.db import MigratedStore, metadata
from intent_router.decisions.records import Decision, Feedback
from intent_router.decisions.storable import clean_float, clean_int, clean_json, clean_text
from intent_router.types import Attempt

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("endpoint", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("intent", String(64)),
    Column("confidence", Float),
    Column("source", String(16), nullable=False),
    Column("chain", JSON, nullable=False),
    Column("deployment", String(128)),
    Column("attempts", JSON, nullable=False),
    Column("error", Text),
    Column("llm_label", String(64)),
    Column("escalation_error", Text),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cache_write_tokens", Integer, nullable=False),
    Column("input_cost_usd", Float, nullable=False),
    Column("cached_input_cost_usd", Float, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("premium_cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("classify_ms", Float, nullable=False),
    Column("escalate_ms", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("repo", String(256)),
    Column("user", String(256)),
    Column("org", String(256)),
    Column("client_key_id", String(32)),
    Column("budget", String(16)),
    Column("session_id", String(64)),
    Column("session", String(16)),
    Column("prompt_sha256", String(64), nullable=False),
    Column("prompt_text", Text),
    Column("probabilities", JSON, nullable=False),
    Column("traced", Boolean, nullable=False),
    Column("trace_id", String(64)),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("correct_intent", String(64)),
    Column("rating", Integer),
    Column("comment", Text),
)

tracking_state = Table(
    "tracking_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


class DecisionStore(MigratedStore):
    """The decision log's database (a database down at start delays the log: the writer
    retries, never the service)."""

    def insert_many(self, rows: Sequence[Decision]) -> None:
        """Write decisions in one transaction (all or none)."""
        self.insert_rows([_to_row(d) for d in rows])

    def insert_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write rows already made storable (``_to_row``, ``degraded_row``) in one transaction."""
        self.ensure_schema()
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(decisions), list(rows))

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def get(self, request_id: str) -> dict[str, Any] | None:
        self.ensure_schema()
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(decisions).where(decisions.c.request_id == request_id))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def count(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(decisions)).scalar_one())

    def after(
        self, last_id: int, limit: int = 10_000, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Decisions with an id above ``last_id``, oldest first (only ``columns`` if given)."""
        self.ensure_schema()
        selected = [decisions.c[name] for name in columns] if columns else [decisions]
        query = (
            select(*selected).where(decisions.c.id > last_id).order_by(decisions.c.id).limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def untraced_samples(self, first_id: int, last_id: int) -> list[dict[str, Any]]:
        """Sampled decisions in [first_id, last_id] whose trace is not written yet."""
        self.ensure_schema()
        query = (
            select(decisions)
            .where(
                decisions.c.id.between(first_id, last_id),
                decisions.c.traced,
                decisions.c.trace_id.is_(None),
            )
            .order_by(decisions.c.id)
        )
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def set_trace_id(self, request_id: str, trace_id: str) -> None:
        self.ensure_schema()
        with self.engine.begin() as connection:
            connection.execute(
                update(decisions)
                .where(decisions.c.request_id == request_id)
                .values(trace_id=trace_id)
            )

    def add_feedback(self, item: Feedback) -> None:
        self.ensure_schema()
        with self.engine.begin() as connection:
            connection.execute(
                insert(feedback).values(
                    **{k: _no_nul(v) for k, v in asdict(item).items()}, created_at=time.time()
                )
            )

    def feedback_for(self, request_id: str) -> list[dict[str, Any]]:
        self.ensure_schema()
        query = select(feedback).where(feedback.c.request_id == request_id).order_by(feedback.c.id)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def feedback_after(self, last_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Feedback with an id above ``last_id``, with its decision's trace fields."""
        self.ensure_schema()
        query = (
            select(feedback, decisions.c.traced, decisions.c.trace_id)
            .join(decisions, decisions.c.request_id == feedback.c.request_id)
            .where(feedback.c.id > last_id)
            .order_by(feedback.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def harvestable(self) -> Iterator[dict[str, Any]]:
        """Decisions the LLM classifier labeled, and decisions a user corrected (latest
        correction wins), as {request_id, intent, how, prompt_text, prompt_sha256}."""
        self.ensure_schema()
        latest = (
            select(feedback.c.request_id, func.max(feedback.c.id).label("fid"))
            .where(feedback.c.correct_intent.is_not(None))
            .group_by(feedback.c.request_id)
            .subquery()
        )
        corrected = (
            select(
                decisions.c.request_id,
                decisions.c.prompt_text,
                decisions.c.prompt_sha256,
                feedback.c.correct_intent,
            )
            .join(latest, latest.c.request_id == decisions.c.request_id)
            .join(feedback, feedback.c.id == latest.c.fid)
        )
        escalated = (
            select(
                decisions.c.request_id,
                decisions.c.prompt_text,
                decisions.c.prompt_sha256,
                decisions.c.llm_label,
            )
            .where(decisions.c.source == "llm", decisions.c.llm_label.is_not(None))
            .order_by(decisions.c.id)
        )
        with self.engine.connect() as connection:
            seen: set[str] = set()
            for row in connection.execute(corrected).mappings():
                seen.add(row["request_id"])
                yield {
                    "request_id": row["request_id"],
                    "intent": row["correct_intent"],
                    "how": "feedback",
                    "prompt_text": row["prompt_text"],
                    "prompt_sha256": row["prompt_sha256"],
                }
            for row in connection.execute(escalated).mappings():
                if row["request_id"] not in seen:
                    yield {
                        "request_id": row["request_id"],
                        "intent": row["llm_label"],
                        "how": "llm",
                        "prompt_text": row["prompt_text"],
                        "prompt_sha256": row["prompt_sha256"],
                    }

    def get_state(self, key: str) -> str | None:
        self.ensure_schema()
        with self.engine.connect() as connection:
            value = connection.execute(
                select(tracking_state.c.value).where(tracking_state.c.key == key)
            ).scalar()
        return None if value is None else str(value)

    def set_state(self, key: str, value: str) -> None:
        self.ensure_schema()
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(tracking_state).where(tracking_state.c.key == key).values(value=value)
            ).rowcount
            if not changed:
                connection.execute(insert(tracking_state).values(key=key, value=value))

    def take_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Hold ``name`` for ``ttl_s`` unless someone else holds it: one flusher at a time,
        across workers and instances sharing the database."""
        self.ensure_schema()
        now = time.time()
        key = f"lease:{name}"
        with self.engine.begin() as connection:
            current = connection.execute(
                select(tracking_state.c.value).where(tracking_state.c.key == key).with_for_update()
            ).scalar()
            if current is not None:
                holder, _, until = str(current).rpartition("|")
                if holder != owner and float(until) > now:
                    return False
                connection.execute(
                    update(tracking_state)
                    .where(tracking_state.c.key == key)
                    .values(value=f"{owner}|{now + ttl_s}")
                )
            else:
                connection.execute(
                    insert(tracking_state).values(key=key, value=f"{owner}|{now + ttl_s}")
                )
        return True


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


def _cleaner(column: Column[Any]) -> Callable[[Any], Any]:
    """How a value becomes storable in ``column`` (see decisions/storable.py)."""
    kind, nullable = column.type, bool(column.nullable)
    if isinstance(kind, (String, Text)):
        length = getattr(kind, "length", None)
        if nullable:
            return lambda value: clean_text(value, length)
        return lambda value: clean_text(value, length) or ""
    if isinstance(kind, Boolean):
        return bool
    if isinstance(kind, Integer):
        return lambda value: clean_int(value, None if nullable else 0)
    if isinstance(kind, Float):
        return lambda value: clean_float(value, None if nullable else 0.0)
    return clean_json


#: (field, cleaner) for every column a Decision fills.
_DECISION_COLUMNS = tuple(
    (f.name, _cleaner(decisions.c[f.name]))
    for f in fields(Decision)
    if f.name not in ("chain", "attempts")
)


def _no_nul(value: Any) -> Any:
    """Feedback text as PostgreSQL's text columns accept it (no NUL, no lone surrogate)."""
    return clean_text(value) if isinstance(value, str) else value


def _to_row(decision: Decision) -> dict[str, Any]:
    """A decision as a row any of our databases stores: text sanitised and cut to its column,
    numbers clamped or nulled (an upstream's 10**300 token count or a lone surrogate in its
    error must not cost the row)."""
    # Shallow, by hand: dataclasses.asdict deep-copies and costs several times more.
    row = {name: clean(getattr(decision, name)) for name, clean in _DECISION_COLUMNS}
    row["chain"] = clean_json(list(decision.chain))
    row["attempts"] = clean_json(
        [{name: getattr(a, name) for name in _ATTEMPT_FIELDS} for a in decision.attempts]
    )
    return row


def degraded_row(decision: Decision, reason: str) -> dict[str, Any]:
    """What is left of a decision the database refused even sanitised: who, when, what
    endpoint and status, with the reason in ``error``. Still one row per request."""
    bare = Decision(
        request_id=decision.request_id,
        created_at=decision.created_at,
        endpoint=decision.endpoint,
        status=decision.status,
        intent=None,
        confidence=None,
        source=decision.source,
        chain=(),
        model_version=decision.model_version,
        prompt_sha256=decision.prompt_sha256,
        error=f"decision row degraded, the database refused it: {reason}",
    )
    return _to_row(bare)


def attempts_of(row: dict[str, Any]) -> list[Attempt]:
    """The attempts of a stored decision row."""
    raw = row.get("attempts") or []
    if isinstance(raw, str):
        raw = json.loads(raw)
    return [Attempt(**a) for a in raw]
