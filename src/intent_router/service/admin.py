"""The admin API: team overrides and client keys. Every call needs ``Authorization: Bearer $INTENT_ROUTER_ADMIN_KEY``;
without that variable the admin API is off (404)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from litestar import delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter

from intent_router.db import storage_outage_as_unavailable
from intent_router.exceptions import InvalidRequestError, UnknownRequestError
from intent_router.governance.client_keys import KeyLimits
from intent_router.routing.overrides import parse_override
from intent_router.service.openapi import ADMIN_ERRORS
from intent_router.service.recording import clean_id
from intent_router.service.schemas import ClientKeyCreate, ClientKeyList, OverrideBody, OverrideList
from intent_router.service.services import Services, services_of
from intent_router.settings import ADMIN_KEY_ENV

#: No control characters (NUL, newlines, escapes): ids and team names are printable text.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

_T = TypeVar("_T")


async def _stored(call: Callable[..., _T], *args: Any) -> _T:
    """A store call off the event loop; the database down is a 503 ``storage_unavailable``."""
    with storage_outage_as_unavailable():
        return await anyio.to_thread.run_sync(call, *args)


def admin_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected = services_of(connection.app).settings.admin_key
    if not expected:
        raise NotFoundException(f"the admin API is off: set ${ADMIN_KEY_ENV}")
    given = connection.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotAuthorizedException("admin key required: Authorization: Bearer <admin key>")


@get("/admin/overrides", guards=[admin_guard], responses=ADMIN_ERRORS, operation_id="listOverrides")
async def list_overrides(services: Services) -> OverrideList:
    """Every stored override (from the database, not a worker's cache)."""
    stored = await _stored(services.override_store.all)
    return OverrideList(data=[o.as_json() for o in stored.values()])


@put(
    "/admin/overrides",
    guards=[admin_guard],
    sync_to_thread=True,
    responses=ADMIN_ERRORS,
    operation_id="putOverride",
)
def put_override(data: OverrideBody, services: Services) -> dict:
    """Create or replace the override of one organisation, repo or user."""
    override = parse_override(data.as_dict(), services.router.config)
    with storage_outage_as_unavailable():
        services.override_store.put(override)
    services.override_cache.refresh()  # this worker at once; the others within refresh_s
    return override.as_json()


@delete(
    "/admin/overrides",
    guards=[admin_guard],
    sync_to_thread=True,
    status_code=200,
    responses=ADMIN_ERRORS,
    operation_id="deleteOverride",
)
def delete_override(
    services: Services,
    level: Annotated[
        str, Parameter(query="scope", description="org, repo or user", pattern=PRINTABLE)
    ],
    subject: Annotated[str, Parameter(query="subject", max_length=256, pattern=PRINTABLE)],
) -> dict[str, bool]:
    """Remove the override of one subject (``?scope=repo&subject=acme/api``)."""
    with storage_outage_as_unavailable():
        deleted = services.override_store.delete(level, subject)
    if not deleted:
        raise UnknownRequestError(f"no override for {level}:{subject}")
    services.override_cache.refresh()
    return {"deleted": True}


@post(
    "/admin/keys",
    guards=[admin_guard],
    status_code=201,
    responses=ADMIN_ERRORS,
    operation_id="createClientKey",
)
async def create_key(data: ClientKeyCreate, services: Services) -> dict[str, Any]:
    """A new client key for a team. ``key`` is in this answer only: it is stored hashed."""
    team = clean_id(data.team)
    if team is None:
        raise InvalidRequestError("team: must hold a printable character")
    limits = KeyLimits(
        data.budget_day_usd, data.budget_month_usd, data.rpm, data.tpm, data.over_budget
    )
    key, record = await _stored(services.key_store.create, team, clean_id(data.name) or "", limits)
    await anyio.to_thread.run_sync(
        services.key_cache.refresh
    )  # this worker at once; the others within 1 s
    return {"key": key, **record.as_json()}


@get("/admin/keys", guards=[admin_guard], responses=ADMIN_ERRORS, operation_id="listClientKeys")
async def list_keys(
    services: Services,
    team: Annotated[str | None, Parameter(query="team", max_length=256, pattern=PRINTABLE)] = None,
) -> ClientKeyList:
    """Every client key (revoked ones too; never the keys themselves), or one team's."""
    keys = await _stored(services.key_store.list, team)
    return ClientKeyList(data=[k.as_json() for k in keys])


@get(
    "/admin/keys/{key_id:str}",
    guards=[admin_guard],
    responses=ADMIN_ERRORS,
    operation_id="getClientKey",
)
async def get_key(
    key_id: Annotated[str, Parameter(max_length=64, pattern=PRINTABLE)], services: Services
) -> dict[str, Any]:
    """One client key and what it has spent this UTC day and month."""
    record = await _stored(services.key_store.get, key_id)
    if record is None:
        raise UnknownRequestError(f"no client key {key_id!r}")
    return {**record.as_json(), "spend": await services.limits.spend(record.id)}


@delete(
    "/admin/keys/{key_id:str}",
    guards=[admin_guard],
    status_code=200,
    responses=ADMIN_ERRORS,
    operation_id="revokeClientKey",
)
async def revoke_key(
    key_id: Annotated[str, Parameter(max_length=64, pattern=PRINTABLE)], services: Services
) -> dict[str, bool]:
    """Revoke a client key: every worker refuses it within a second."""
    if not await _stored(services.key_store.revoke, key_id):
        raise UnknownRequestError(f"no active client key {key_id!r}")
    await anyio.to_thread.run_sync(services.key_cache.refresh)
    return {"revoked": True}


@get("/admin/spend", guards=[admin_guard], responses=ADMIN_ERRORS, operation_id="teamSpend")
async def team_spend(
    services: Services,
    team: Annotated[str, Parameter(query="team", min_length=1, max_length=256, pattern=PRINTABLE)],
) -> dict[str, Any]:
    """What a team's keys (revoked ones included) have spent this UTC day and month."""
    keys = await _stored(services.key_store.list, team)
    if not keys:
        raise UnknownRequestError(f"team {team!r} has no client keys")
    rows: list[dict[str, Any]] = [
        {
            "id": k.id,
            "prefix": k.prefix,
            "name": k.name,
            "active": k.active,
            **await services.limits.spend(k.id),
        }
        for k in keys
    ]
    return {
        "team": team,
        "day_usd": round(sum(r["day_usd"] for r in rows), 6),
        "month_usd": round(sum(r["month_usd"] for r in rows), 6),
        "keys": rows,
    }


ADMIN_HANDLERS = [
    list_overrides,
    put_override,
    delete_override,
    create_key,
    list_keys,
    get_key,
    revoke_key,
    team_spend,
]
__all__ = ["ADMIN_HANDLERS", "ADMIN_KEY_ENV"]
