"""ServingTracker: a background thread that turns the decision log into an MLflow serving run.

Every ``interval_s`` the one worker holding the lease (several workers or instances may share
the database) reads the decisions past its watermark, logs their summary as one step of the
run in experiment ``routing-serving``, writes a trace for each sampled decision, attaches
new feedback to traces as assessments, and only then advances the watermarks. MLflow being
down costs nothing but delay: the decision log keeps everything and the next flush that
reaches MLflow catches up (at least once: a flush cut short may repeat a step).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from intent_router.decisions.store import DecisionStore
from intent_router.mlflow_store import default_tracking_uri
from intent_router.tracking.summary import SUMMARY_COLUMNS, summarize
from intent_router.tracking.traces import write_trace

SERVING_EXPERIMENT = "routing-serving"
log = logging.getLogger("intent_router.tracking")

_RUN_ID = "mlflow.serving_run_id"
_STEP = "mlflow.step"
_DECISIONS_SEEN = "mlflow.decision_watermark"
_FEEDBACK_SEEN = "mlflow.feedback_watermark"
SKIPPED = "-"  # the trace_id of a sampled decision past the trace budget


class ServingTracker:
    """Flushes decision-log summaries, traces and feedback to MLflow, off the request path."""

    def __init__(
        self,
        store: DecisionStore,
        tracking_uri: str | None = None,
        interval_s: float = 30.0,
        owner: str | None = None,
        batch: int = 5000,
        max_traces_per_minute: int = 60,
    ) -> None:
        self.store = store
        self.max_traces_per_minute = max_traces_per_minute
        self._trace_times: list[float] = []
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.interval_s = interval_s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._experiment_id: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlflow-serving", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush_once()
        if self._client is not None:  # what the last interval left (mlflow is loaded already)
            self.flush_once()

    def flush_once(self) -> bool:
        """One flush; True when MLflow took everything pending. Never raises."""
        try:
            if not self.store.take_lease(
                "mlflow", self.owner, ttl_s=max(3 * self.interval_s, 30.0)
            ):
                return False
            while self._flush_decisions():
                pass
            self._flush_feedback()
            return True
        except Exception as exc:  # MLflow or the database is unreachable: retry next time
            log.warning(
                "MLflow flush failed, will retry: %s: %s", type(exc).__name__, str(exc)[:300]
            )
            self._client = None
            return False

    def _mlflow(self) -> tuple[Any, str]:
        if self._client is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, retry later
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            # Already off the request path: write traces synchronously, so feedback can find
            # them; and never phone home.
            os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            import mlflow
            from mlflow import MlflowClient

            mlflow.set_tracking_uri(self.tracking_uri)  # mlflow.log_feedback uses the global one
            client = MlflowClient(self.tracking_uri)
            experiment = client.get_experiment_by_name(SERVING_EXPERIMENT)
            self._experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else client.create_experiment(SERVING_EXPERIMENT)
            )
            self._client = client
        assert self._experiment_id is not None
        return self._client, self._experiment_id

    def _run_id(self, client: Any, experiment_id: str) -> str:
        run_id = self.store.get_state(_RUN_ID)
        if run_id is not None:
            try:
                if client.get_run(run_id).info.lifecycle_stage == "active":
                    return run_id
            except Exception:
                pass  # deleted or another store: start a new run
        run = client.create_run(
            experiment_id, run_name="serving", tags={"intent_router.kind": "serving"}
        )
        self.store.set_state(_RUN_ID, run.info.run_id)
        return str(run.info.run_id)

    def _flush_decisions(self) -> bool:
        """Flush one batch; True when there may be more."""
        seen = int(self.store.get_state(_DECISIONS_SEEN) or 0)
        rows = self.store.after(seen, limit=self.batch, columns=SUMMARY_COLUMNS)
        if not rows:
            return False
        from mlflow.entities import Metric

        client, experiment_id = self._mlflow()
        run_id = self._run_id(client, experiment_id)
        step = int(self.store.get_state(_STEP) or 0) + 1
        now_ms = int(time.time() * 1000)
        metrics = [Metric(key, value, now_ms, step) for key, value in summarize(rows).items()]
        client.log_batch(run_id, metrics=metrics)
        for row in self.store.untraced_samples(rows[0]["id"], rows[-1]["id"]):
            trace_id = write_trace(client, experiment_id, row) if self._trace_budget() else SKIPPED
            self.store.set_trace_id(row["request_id"], trace_id)
        self.store.set_state(_STEP, str(step))
        self.store.set_state(_DECISIONS_SEEN, str(rows[-1]["id"]))
        return len(rows) == self.batch

    def _trace_budget(self) -> bool:
        """True while fewer than ``max_traces_per_minute`` traces were written in the last minute."""
        now = time.monotonic()
        self._trace_times = [t for t in self._trace_times if now - t < 60]
        if len(self._trace_times) >= self.max_traces_per_minute:
            return False
        self._trace_times.append(now)
        return True

    def _flush_feedback(self) -> None:
        seen = int(self.store.get_state(_FEEDBACK_SEEN) or 0)
        items = self.store.feedback_after(seen)
        for item in items:
            if item["traced"] and not item.get("trace_id"):
                break  # its trace is not written yet: attach with a later flush
            if item.get("trace_id") and item["trace_id"] != SKIPPED:
                self._attach(item)
            seen = int(item["id"])
        self.store.set_state(_FEEDBACK_SEEN, str(seen))

    def _attach(self, item: dict[str, Any]) -> None:
        import mlflow
        from mlflow.entities import AssessmentSource

        self._mlflow()
        source = AssessmentSource(source_type="HUMAN", source_id="feedback-api")
        if item.get("correct_intent"):
            mlflow.log_feedback(
                trace_id=item["trace_id"],
                name="correct_intent",
                value=item["correct_intent"],
                source=source,
                rationale=item.get("comment"),
            )
        if item.get("rating") is not None:
            mlflow.log_feedback(
                trace_id=item["trace_id"],
                name="rating",
                value=int(item["rating"]),
                source=source,
                rationale=item.get("comment"),
            )
