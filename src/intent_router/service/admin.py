"""The admin API: team overrides. Every call needs ``Authorization: Bearer $INTENT_ROUTER_ADMIN_KEY``;
without that variable the admin API is off (404)."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

import anyio

from litestar import delete, get, put
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler

from intent_router.exceptions import UnknownRequestError
from intent_router.routing.overrides import parse_override
from intent_router.service.openapi import ADMIN_ERRORS
from intent_router.service.schemas import OverrideBody, OverrideList

ADMIN_KEY_ENV = "INTENT_ROUTER_ADMIN_KEY"


def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected = os.environ.get(ADMIN_KEY_ENV)
    if not expected:
        raise NotFoundException(f"the admin API is off: set ${ADMIN_KEY_ENV}")
    given = connection.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotAuthorizedException("admin key required: Authorization: Bearer <admin key>")


@get("/admin/overrides", guards=[admin_guard], responses=ADMIN_ERRORS, operation_id="listOverrides")
async def list_overrides(state: State) -> OverrideList:
    """Every stored override (from the database, not a worker's cache)."""
    stored = await anyio.to_thread.run_sync(state.override_store.all)
    return OverrideList(data=[o.as_json() for o in stored.values()])


@put("/admin/overrides", guards=[admin_guard], sync_to_thread=True, responses=ADMIN_ERRORS,
     operation_id="putOverride")
def put_override(data: OverrideBody, state: State) -> dict:
    """Create or replace the override of one organisation, repo or user."""
    override = parse_override(data.as_dict(), state.router.config)
    state.override_store.put(override)
    state.override_cache.refresh()  # this worker at once; the others within refresh_s
    return override.as_json()


@delete("/admin/overrides", guards=[admin_guard], sync_to_thread=True, status_code=200,
        responses=ADMIN_ERRORS, operation_id="deleteOverride")
def delete_override(
    state: State,
    level: Annotated[str, Parameter(query="scope", description="org, repo or user")],
    subject: Annotated[str, Parameter(query="subject", max_length=256)],
) -> dict[str, bool]:
    """Remove the override of one subject (``?scope=repo&subject=acme/api``)."""
    if not state.override_store.delete(level, subject):
        raise UnknownRequestError(f"no override for {level}:{subject}")
    state.override_cache.refresh()
    return {"deleted": True}


ADMIN_HANDLERS = [list_overrides, put_override, delete_override]
__all__ = ["ADMIN_HANDLERS", "ADMIN_KEY_ENV"]
