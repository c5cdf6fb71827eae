"""service/errors.py without a service: which errors say "do not retry", and a bug's 500 is
answered in OpenAI's format and logged once with the request id and the type, never the text."""

from __future__ import annotations

import logging

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from intent_router.exceptions import ProviderClientBug
from intent_router.service.errors import EXCEPTION_HANDLERS, ApiError

SECRET = "sk-live-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "status, retry",
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (405, False),
        (413, False),
        (422, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_the_status_decides_whether_a_retry_may_help(status: int, retry: bool) -> None:
    assert ApiError(status, "m", "t").should_retry is retry


def test_a_config_error_says_no_retry_whatever_its_status() -> None:
    assert ApiError(503, "no keys", "all_providers_failed", retryable=False).should_retry is False


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise ValueError(f"bad value near {SECRET}")


def test_a_bug_is_a_logged_500_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    app = Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)  # type: ignore[arg-type]
    with (
        caplog.at_level(logging.WARNING, logger="intent_router.service"),
        TestClient(app) as client,
    ):
        answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {
        "error": {
            "message": "internal error",
            "type": "server_error",
            "code": "internal_error",
            "param": None,
            "attempts": None,
        }
    }
    rid = answer.headers["x-request-id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "intent_router.service"]
    assert len(lines) == 1 and rid in lines[0] and "ValueError" in lines[0]
    assert "test_error_mapping.py:" in lines[0]  # where it was raised
    assert SECRET not in caplog.text and SECRET not in answer.text


@get("/bug", sync_to_thread=False)
def client_bug() -> None:
    raise ProviderClientBug("claude-sonnet-4", "TypeError")


def test_a_provider_client_bug_says_not_to_retry() -> None:
    # It fails the same way on every call: an SDK retrying the 500 would only wait.
    app = Litestar([client_bug], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)  # type: ignore[arg-type]
    with TestClient(app) as client:
        answer = client.get("/bug")
    assert answer.status_code == 500 and answer.headers["x-should-retry"] == "false"
    assert answer.json()["error"]["code"] == "internal_error"
