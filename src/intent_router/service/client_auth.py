"""Client keys on the /v1 endpoints: who is asking, checked against every worker's key snapshot.

With ``governance.client_keys: false`` (the embedded default) requests need no key and any
Authorization header is ignored (OpenAI clients always send one). With it on, a request must
carry an active client key, as ``Authorization: Bearer ir-...`` or ``x-api-key: ir-...``.
"""

from __future__ import annotations

from litestar import Request
from litestar.connection import ASGIConnection

from intent_router.exceptions import AuthenticationError
from intent_router.governance.client_keys import ClientKey
from intent_router.service.services import services_of


def presented_key(connection: ASGIConnection) -> str | None:
    """The key a request presents: a Bearer token, else ``x-api-key``; None when neither."""
    authorization = connection.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return connection.headers.get("x-api-key") or None


async def require_client_key(request: Request) -> None:
    """Sets ``request.state.client_key`` (None when keys are off) or raises a 401. Async (it
    never blocks: keys come from the worker's snapshot) so Litestar calls it inline.

    A ``before_request`` hook rather than a guard: it runs at the same point (before the body
    is parsed), without the copy of the route handler Litestar makes for every guard call
    (about 4% of /v1/route's CPU)."""
    services = services_of(request.app)
    key: ClientKey | None = None
    if services.router.config.governance.client_keys:
        given = presented_key(request)
        if given is None:
            raise AuthenticationError(
                "a client key is required: Authorization: Bearer <client key>"
            )
        key = services.key_cache.lookup(given)
        if key is None:
            raise AuthenticationError("the client key is not valid or has been revoked")
    request.state.client_key = key


__all__ = ["presented_key", "require_client_key"]
