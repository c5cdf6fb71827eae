"""The decision log's tables and queries, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from intent_router.decisions import AttemptRecord, Decision, DecisionStore, DecisionWriter, Feedback
from intent_router.decisions.store import attempts_of


def _decision(request_id: str, **fields) -> Decision:
    base = dict(
        request_id=request_id,
        created_at=time.time(),
        endpoint="chat",
        status="ok",
        intent="debugging",
        confidence=0.42,
        source="llm",
        chain=("claude-sonnet-4", "gpt-4o"),
        model_version="v1",
        prompt_sha256="ab" * 32,
        deployment="gpt-4o",
        attempts=(
            AttemptRecord("claude-sonnet-4", "failed", 529, "overloaded", 12.5),
            AttemptRecord("gpt-4o", "ok", None, None, 30.0),
        ),
        llm_label="debugging",
        prompt_tokens=10,
        completion_tokens=20,
        cost_usd=0.001,
        premium_cost_usd=0.002,
        latency_ms=45.0,
        repo="acme/api",
        user="ana",
    )
    base.update(fields)
    return Decision(**base)


def test_decisions_round_trip(database_url: str) -> None:
    store = DecisionStore(database_url)
    hostile = "'; DROP TABLE decisions; -- ünïcødé " + "x" * 200
    store.insert_many([_decision("r1"), _decision("r2", repo=hostile[:256], user=None)])
    row = store.get("r1")
    assert (
        row is not None
        and row["intent"] == "debugging"
        and row["chain"] == ["claude-sonnet-4", "gpt-4o"]
    )
    assert attempts_of(row)[0] == AttemptRecord(
        "claude-sonnet-4", "failed", 529, "overloaded", 12.5
    )
    assert store.get("r2")["repo"] == hostile[:256]
    assert store.count() == 2 and store.get("missing") is None
    assert [r["request_id"] for r in store.after(0)] == ["r1", "r2"]
    assert [r["request_id"] for r in store.after(store.get("r1")["id"])] == ["r2"]
    store.dispose()


def test_feedback_and_harvest_prefer_the_latest_correction(database_url: str) -> None:
    store = DecisionStore(database_url)
    store.insert_many(
        [
            _decision("esc", prompt_text="why does it crash?"),  # LLM-labeled
            _decision("corrected", source="model", llm_label=None, prompt_text="add docs"),
            _decision("both", prompt_text="review this"),  # LLM, then corrected
            _decision("plain", source="model", llm_label=None),  # nothing to learn
        ]
    )
    store.add_feedback(Feedback("corrected", correct_intent="refactoring"))
    store.add_feedback(Feedback("corrected", correct_intent="documentation", rating=4))
    store.add_feedback(Feedback("both", correct_intent="security_audit"))
    store.add_feedback(Feedback("plain", rating=5))
    harvested = {r["request_id"]: (r["intent"], r["how"]) for r in store.harvestable()}
    assert harvested == {
        "esc": ("debugging", "llm"),
        "corrected": ("documentation", "feedback"),
        "both": ("security_audit", "feedback"),
    }
    assert [f["rating"] for f in store.feedback_for("corrected")] == [None, 4]
    store.dispose()


def test_one_lease_holder_at_a_time(database_url: str) -> None:
    store = DecisionStore(database_url)
    assert store.take_lease("flush", "worker-a", ttl_s=30)
    assert not store.take_lease("flush", "worker-b", ttl_s=30)
    assert store.take_lease("flush", "worker-a", ttl_s=0.01)  # the holder renews
    time.sleep(0.05)
    assert store.take_lease("flush", "worker-b", ttl_s=30)  # expired: taken over
    store.set_state("watermark", "7")
    store.set_state("watermark", "9")
    assert store.get_state("watermark") == "9" and store.get_state("nope") is None
    store.dispose()


def test_the_writer_keeps_rows_while_the_database_is_unreachable(tmp_path: Path) -> None:
    missing_dir = tmp_path / "not-yet"
    store = DecisionStore(f"sqlite:///{missing_dir / 'decisions.db'}")  # cannot open: no directory
    writer = DecisionWriter(store, interval_s=0.05)
    for i in range(50):
        writer.submit(_decision(f"r{i}"))
    assert not writer.flush(timeout_s=0.5) and writer.backlog == 50
    missing_dir.mkdir()  # the database comes back
    assert writer.flush(timeout_s=15)
    assert store.count() == 50
    writer.close()


def test_concurrent_submitters_lose_nothing(database_url: str) -> None:
    store = DecisionStore(database_url)
    writer = DecisionWriter(store, interval_s=0.02)

    def submit(thread: int) -> None:
        for i in range(100):
            writer.submit(_decision(f"t{thread}-{i}"))

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert store.count() == 400


def test_the_writer_builds_deferred_rows_on_its_own_thread_and_survives_a_failing_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DecisionStore(f"sqlite:///{tmp_path / 'decisions.db'}")
    writer = DecisionWriter(store, interval_s=0.01)
    built_on: list[str] = []

    def build(request_id: str) -> Decision:
        built_on.append(threading.current_thread().name)
        return _decision(request_id)

    def broken() -> Decision:
        raise KeyError("a bug in building the row")

    writer.submit(lambda: build("before"))
    writer.submit(broken)
    writer.submit(lambda: build("after"))
    assert writer.flush(timeout_s=10) and writer.backlog == 0  # the dropped row is accounted for
    writer.close()
    assert store.count() == 2 and store.get("before") and store.get("after")
    assert built_on == ["decision-writer", "decision-writer"]
    assert any("could not be built" in r.getMessage() for r in caplog.records)
    store.dispose()
