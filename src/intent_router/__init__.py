"""intent-router: route each coding-agent request to the right model at the right cost."""

from intent_router.labels import INTENTS

__all__ = ["INTENTS"]
__version__ = "0.1.0"
