"""Where MLflow runs go unless told otherwise: one rule for training, evaluation and serving."""

from __future__ import annotations

import os
from pathlib import Path


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` (SQLite) in the working directory, beside
    the ``mlruns/`` artifacts MLflow keeps there. The Makefile's targets run from the repo root,
    where ``make mlflow-ui`` looks (the file is gitignored)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
