"""MLflow for serving: periodic summaries of the decision log and sampled traces, built off
the request path from what the decision log already holds."""

from intent_router.tracking.serving import SERVING_EXPERIMENT, ServingTracker
from intent_router.tracking.summary import summarize

__all__ = ["SERVING_EXPERIMENT", "ServingTracker", "summarize"]
