"""Pure policy: an intent (or a requested deployment) -> the ordered chain of deployments."""

from __future__ import annotations

from dataclasses import dataclass

from intent_router.config import RouterConfig
from intent_router.exceptions import (
    ForbiddenDeploymentError,
    InvalidRequestError,
    UnknownModelError,
)
from intent_router.routing.overrides import NO_OVERRIDE, EffectiveOverride

#: Model names that ask the router to choose by intent.
AUTO_MODELS = frozenset({"auto", "intent-router"})


class NoLocalDeploymentError(InvalidRequestError):
    """A sensitive request, but no local-tier deployment is configured: fail closed."""


@dataclass(frozen=True)
class ChainChoice:
    """The deployments to try in order, and why."""

    chain: tuple[str, ...]
    reason: str


def choose_chain(
    config: RouterConfig,
    intent: str,
    requested_model: str = "auto",
    sensitive: bool = False,
    override: EffectiveOverride = NO_OVERRIDE,
) -> ChainChoice:
    """The chain for a request.

    ``auto`` follows the override's pin or its chain for the intent, else the config's intent
    policy; a concrete deployment (by name or litellm model id) goes first. Either way the
    chain continues along its deployments' configured fallbacks. Deployments and providers the
    override forbids are dropped (naming a forbidden one is refused). A sensitive request (or a
    sensitive subject) keeps local-tier deployments only, and fails closed when there is none.
    """
    if requested_model in AUTO_MODELS:
        preferred: tuple[str, ...]
        if override.pin is not None:
            preferred, reason = (override.pin,), f"pinned to {override.pin}"
        elif intent in override.policy:
            preferred, reason = override.policy[intent], f"override policy for {intent}"
        else:
            preferred, reason = config.policy[intent], f"policy for {intent}"
        chain = _with_fallbacks(config, preferred)
    else:
        first = deployment_named(config, requested_model)
        if override.forbids(first, config.deployments[first].provider):
            raise ForbiddenDeploymentError(
                f"{first!r} is forbidden for {', '.join(override.applied)}"
            )
        chain = _with_fallbacks(config, (first,))
        reason = f"requested {first}"
    if override.applied:
        chain = tuple(n for n in chain if not override.forbids(n, config.deployments[n].provider))
        reason += f" ({', '.join(override.applied)})"
        if not chain and not (
            sensitive or override.sensitive
        ):  # sensitive: any allowed local below
            raise ForbiddenDeploymentError(
                f"every deployment of the chain is forbidden for {', '.join(override.applied)}"
            )
    if sensitive or override.sensitive:
        chain = tuple(n for n in chain if config.deployments[n].tier == "local") or tuple(
            n
            for n, d in config.deployments.items()
            if d.tier == "local" and not override.forbids(n, d.provider)
        )
        if not chain:
            raise NoLocalDeploymentError("sensitive request and no local-tier deployment")
        reason += ", sensitive: local tier only"
    return ChainChoice(chain, reason)


def deployment_named(config: RouterConfig, requested: str) -> str:
    """The deployment a client names by its name or by its upstream model id (the first
    deployment serving that id); UnknownModelError otherwise."""
    if requested in config.deployments:
        return requested
    for name, deployment in config.deployments.items():
        if deployment.model == requested:
            return name
    raise UnknownModelError(f"unknown model {requested!r}; use 'auto' or a listed deployment")


def _with_fallbacks(config: RouterConfig, preferred: tuple[str, ...]) -> tuple[str, ...]:
    """``preferred``, then (breadth first) every fallback not in it yet."""
    chain = list(preferred)
    frontier = list(preferred)
    while frontier:
        for name in config.deployments[frontier.pop(0)].fallbacks:
            if name not in chain:
                chain.append(name)
                frontier.append(name)
    return tuple(chain)


def downgrade_chain(
    config: RouterConfig,
    tier: str,
    sensitive: bool = False,
    override: EffectiveOverride = NO_OVERRIDE,
) -> tuple[str, ...]:
    """The cheaper chain a request over its budget is downgraded to: the deployments of
    ``tier`` in config order, minus what the override forbids (local-tier ones only for a
    sensitive request). Empty when nothing is left."""
    local_only = sensitive or override.sensitive
    return tuple(
        name
        for name, d in config.deployments.items()
        if d.tier == ("local" if local_only else tier) and not override.forbids(name, d.provider)
    )
