"""``python -m intent_router.evaluation.sessions`` end to end: the committed model over the
shipped conversation set, printed and logged to a fresh MLflow store on SQLite."""

from __future__ import annotations

import contextlib
import io

from mlflow import MlflowClient

from intent_router.evaluation.sessions import main


def test_the_session_replay_prints_and_logs_both_policies(mlflow_uri: str) -> None:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["--cache-after-switch", "lost"]) == 0
    printed = stdout.getvalue()
    assert "model switches per session" in printed and "input cost with cache discounts" in printed
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("routing-eval").experiment_id])
    assert run.info.run_name == "session-replay" and run.info.run_id in printed
    metrics, params = run.data.metrics, run.data.params
    assert params["cache_after_switch"] == "lost" and params["prefix_tokens"] == "4000"
    assert metrics["per_turn_sessions"] == metrics["sticky_sessions"] >= 30
    # Sticky routing switches less, by construction of the rule; by how much is the measurement.
    assert metrics["sticky_switches_per_session"] < metrics["per_turn_switches_per_session"]
    for policy in ("per_turn", "sticky"):
        assert (
            0
            < metrics[f"{policy}_input_cost_usd"]
            <= metrics[f"{policy}_list_input_cost_usd"] * 1.25
        )
        assert f"{metrics[f'{policy}_input_cost_usd']:.4f}" in printed
    assert 0 <= metrics["sticky_under_routing_share"] <= 1 and "under-routing" in printed
    assert "per_session.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
