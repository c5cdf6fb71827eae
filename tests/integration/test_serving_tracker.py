"""The serving run, traces and feedback assessments, asserted through MlflowClient on a real
SQLite MLflow store; an unreachable tracking server loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from intent_router.decisions import AttemptRecord, Decision, DecisionStore, Feedback
from intent_router.tracking import SERVING_EXPERIMENT, ServingTracker


def _decision(i: int, traced: bool = False, **fields) -> Decision:
    base = dict(
        request_id=f"r{i}",
        created_at=time.time(),
        endpoint="chat",
        status="ok",
        intent="debugging",
        confidence=0.4,
        source="llm",
        chain=("claude-sonnet-4", "gpt-4o"),
        model_version="v1",
        prompt_sha256=f"{i:064d}",
        deployment="gpt-4o",
        attempts=(
            AttemptRecord("claude-sonnet-4", "failed", 529, "overloaded", 12.0),
            AttemptRecord("gpt-4o", "ok", None, None, 30.0),
        ),
        llm_label="debugging",
        prompt_tokens=100,
        completion_tokens=50,
        cost_usd=0.001,
        premium_cost_usd=0.004,
        latency_ms=50.0 + i,
        classify_ms=0.05,
        escalate_ms=20.0,
        traced=traced,
    )
    base.update(fields)
    return Decision(**base)


@pytest.fixture
def store(tmp_path: Path) -> DecisionStore:
    return DecisionStore(f"sqlite:///{tmp_path / 'decisions.db'}")


def _run_metrics(client: MlflowClient) -> dict[str, float]:
    experiment = client.get_experiment_by_name(SERVING_EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    return run.data.metrics


def test_a_flush_logs_the_summary_traces_and_feedback(
    store: DecisionStore, mlflow_uri: str
) -> None:
    store.insert_many(
        [
            _decision(0, traced=True),
            _decision(
                1,
                source="model",
                llm_label=None,
                deployment="claude-sonnet-4",
                attempts=(AttemptRecord("claude-sonnet-4", "ok", None, None, 25.0),),
            ),
            _decision(
                2,
                endpoint="route",
                deployment=None,
                attempts=(),
                intent="general",
                source="model",
                llm_label=None,
                cost_usd=0.0,
                premium_cost_usd=0.0,
            ),
        ]
    )
    store.add_feedback(
        Feedback("r0", correct_intent="security_audit", rating=2, comment="missed the CVE")
    )
    tracker = ServingTracker(store, mlflow_uri, interval_s=3600, owner="test")
    assert tracker.flush_once()
    client = MlflowClient(mlflow_uri)
    metrics = _run_metrics(client)
    assert metrics["requests"] == 3 and metrics["chat_requests"] == 2
    assert metrics["cost_usd"] == pytest.approx(0.002) and metrics[
        "savings_vs_premium"
    ] == pytest.approx(4.0)
    assert metrics["fallback_share"] == 0.5 and metrics["escalation_share"] == pytest.approx(1 / 3)
    assert metrics["requests_debugging"] == 2 and metrics["requests_general"] == 1

    trace_id = store.get("r0")["trace_id"]
    assert trace_id and store.get("r1")["trace_id"] is None  # only sampled decisions are traced
    trace = client.get_trace(trace_id)
    names = [span.name for span in trace.data.spans]
    assert names[0] == "intent-router chat"
    assert {"classify", "escalate", "attempt claude-sonnet-4", "attempt gpt-4o"} <= set(names)
    assessments = {a.name: a for a in trace.info.assessments}
    assert assessments["correct_intent"].value == "security_audit"
    assert assessments["rating"].value == 2
    assert trace.info.tags["request_id"] == "r0"

    store.insert_many([_decision(3)])
    assert tracker.flush_once()
    history = client.get_metric_history(
        client.search_runs([client.get_experiment_by_name(SERVING_EXPERIMENT).experiment_id])[
            0
        ].info.run_id,
        "requests",
    )
    assert [(m.step, m.value) for m in history] == [(1, 3.0), (2, 1.0)]


def test_an_unreachable_tracking_server_loses_nothing(
    store: DecisionStore, mlflow_uri: str
) -> None:
    store.insert_many([_decision(i) for i in range(20)])
    down = ServingTracker(store, "http://127.0.0.1:9", interval_s=3600, owner="test")
    started = time.monotonic()
    assert not down.flush_once()
    assert time.monotonic() - started < 15
    assert store.get_state("mlflow.decision_watermark") is None
    store.insert_many([_decision(i) for i in range(20, 30)])
    back = ServingTracker(store, mlflow_uri, interval_s=3600, owner="test")  # the server returns
    assert back.flush_once()
    assert _run_metrics(MlflowClient(mlflow_uri))["requests"] == 30


def test_only_the_lease_holder_flushes(store: DecisionStore, mlflow_uri: str) -> None:
    store.insert_many([_decision(0)])
    first = ServingTracker(store, mlflow_uri, interval_s=3600, owner="worker-1")
    second = ServingTracker(store, mlflow_uri, interval_s=3600, owner="worker-2")
    assert first.flush_once()
    assert not second.flush_once()


def test_trace_writing_is_capped_per_minute(store: DecisionStore, mlflow_uri: str) -> None:
    store.insert_many([_decision(i, traced=True) for i in range(5)])
    tracker = ServingTracker(
        store, mlflow_uri, interval_s=3600, owner="test", max_traces_per_minute=2
    )
    assert tracker.flush_once()
    trace_ids = [store.get(f"r{i}")["trace_id"] for i in range(5)]
    assert sum(1 for t in trace_ids if t != "-") == 2 and trace_ids.count("-") == 3
    store.add_feedback(Feedback("r4", rating=1))  # untraced after all: stored, not attached
    assert tracker.flush_once()
    assert _run_metrics(MlflowClient(mlflow_uri))["requests"] == 5


def test_the_serving_run_counts_cached_and_uncached_input_apart(
    store: DecisionStore, mlflow_uri: str
) -> None:
    store.insert_many(
        [
            _decision(
                0,
                deployment="claude-sonnet-4",
                prompt_tokens=1000,
                cached_tokens=800,
                cache_write_tokens=100,
                input_cost_usd=0.000915,
                cached_input_cost_usd=0.00024,
            ),
            _decision(1, deployment="claude-sonnet-4", prompt_tokens=1000, input_cost_usd=0.003),
            _decision(
                2,
                deployment="kimi-k2.6",
                prompt_tokens=400,
                cached_tokens=100,
                input_cost_usd=0.0002,
                cached_input_cost_usd=0.00001,
            ),
            _decision(3, status="failed", deployment=None, prompt_tokens=0),
        ]
    )  # no answer: no input
    assert ServingTracker(store, mlflow_uri, interval_s=3600, owner="test").flush_once()
    metrics = _run_metrics(MlflowClient(mlflow_uri))
    assert metrics["input_tokens_cached"] == 900 and metrics["input_tokens_uncached"] == 1500
    assert metrics["input_cost_cached_usd"] == pytest.approx(0.00025)
    assert metrics["input_cost_uncached_usd"] == pytest.approx(0.000915 + 0.003 + 0.0002 - 0.00025)
    assert metrics["cache_hit_rate"] == pytest.approx(900 / 2400)
    assert metrics["cache_hit_rate_claude-sonnet-4"] == pytest.approx(0.4)
    assert metrics["cache_hit_rate_kimi-k2.6"] == pytest.approx(0.25)
    assert metrics["input_tokens_cached_kimi-k2.6"] == 100
    stored = store.get("r0")
    assert (stored["cached_tokens"], stored["cache_write_tokens"]) == (800, 100)
