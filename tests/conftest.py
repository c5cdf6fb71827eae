"""Shared fixtures: no test may reach a real provider or a proxy by accident."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's per-example deadline measures wall time, which a loaded CI machine stretches:
# a property test fails on what it asserts, never on how busy the machine is (speed is
# measured by the benchmarks, not by tests).
settings.register_profile(
    "project", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("project")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_SECRET_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ACCOUNT_ID",
    "TOGETHERAI_API_KEY",
    "TOGETHER_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@pytest.fixture(autouse=True)
def _no_provider_keys_or_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


MlflowStoreMaker = Callable[[Path, Path], str]


@pytest.fixture(scope="session")
def fresh_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStoreMaker:
    """``fresh_mlflow_store(path, cwd)``: a new, empty MLflow SQLite store at ``path``; returns
    its URI. MLflow makes a store by running its fifty-odd migrations, seconds of CPU each
    time: here one is made per session and copied. The copy's Default experiment keeps its
    artifacts under ``cwd/mlruns``, where MLflow would have put them for a process there."""
    from mlflow import MlflowClient

    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()

    def make(path: Path, cwd: Path) -> str:
        with sqlite3.connect(template) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
            copy.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(cwd.resolve() / "mlruns" / "0"),),
            )
        return f"sqlite:///{path}"

    return make


@pytest.fixture
def mlflow_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_mlflow_store: MlflowStoreMaker
) -> str:
    """A fresh SQLite MLflow store in a temp dir, set as MLFLOW_TRACKING_URI."""
    uri = fresh_mlflow_store(tmp_path / "mlflow.db", tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts land under tmp_path/mlruns
    return uri


POSTGRES_URL = os.environ.get(
    "INTENT_ROUTER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """The URL of a fresh schema in the local PostgreSQL (database ``test``), dropped afterwards."""
    import uuid

    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL (database ``test``), dropped afterwards."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite (the embedded default) and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    return str(request.getfixturevalue("postgres_url"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The bounded load runs (marker ``load``, the longest files by far) first: pytest-xdist
    hands files out in collection order, so a long file collected last leaves one process
    working alone at the end of ``make test`` while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("load") is None)
