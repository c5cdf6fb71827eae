"""A provider client's bug reaches the client as a 500 ``internal_error`` and the log once."""

from __future__ import annotations

import logging

import pytest
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from intent_router.exceptions import ProviderClientBug
from intent_router.service.errors import EXCEPTION_HANDLERS


@post("/v1/chat/completions")
async def broken_chat(request: Request) -> None:
    request.state.request_id = "req-42"
    raise ProviderClientBug("claude-sonnet-4", "ModuleNotFoundError (module 'mcp')")


def test_a_client_bug_is_a_logged_500_internal_error_in_openai_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Litestar(
        [broken_chat],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        logging_config=None,
    )  # keep pytest's log capture
    with caplog.at_level(logging.ERROR, logger="intent_router.service"), TestClient(app) as client:
        response = client.post("/v1/chat/completions", json={})
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-42"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert "claude-sonnet-4" in error["message"] and "not retried" in error["message"]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("intent_router")]
    assert (
        len(lines) == 1
        and "req-42" in lines[0]
        and "ModuleNotFoundError (module 'mcp')" in lines[0]
    )
