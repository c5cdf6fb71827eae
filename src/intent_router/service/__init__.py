"""The Litestar service: HTTP only; routing decisions come from intent_router.router."""
