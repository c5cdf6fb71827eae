"""Pure: team overrides of the routing policy and how they combine.

An override belongs to an organisation, a repo or a user. It can map intents to chains, pin
one deployment for everything, forbid deployments or whole providers, or mark its subject
sensitive (local tier only). Preferences take the most specific level (user over repo over
organisation over the config's policy); restrictions accumulate: a forbidden deployment or
provider stays forbidden, and sensitive stays sensitive, whatever a more specific level says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from intent_router.config import RouterConfig
from intent_router.exceptions import InvalidRequestError
from intent_router.labels import INTENTS

SCOPES: Final[tuple[str, ...]] = ("user", "repo", "org")  # most specific first
MAX_SUBJECT_CHARS: Final[int] = 256


@dataclass(frozen=True)
class Override:
    """One stored override of one subject."""

    scope: str
    subject: str
    policy: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pin: str | None = None
    forbid_deployments: frozenset[str] = frozenset()
    forbid_providers: frozenset[str] = frozenset()
    sensitive: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "subject": self.subject,
            "policy": {k: list(v) for k, v in self.policy.items()},
            "pin": self.pin,
            "forbid_deployments": sorted(self.forbid_deployments),
            "forbid_providers": sorted(self.forbid_providers),
            "sensitive": self.sensitive,
        }


@dataclass(frozen=True)
class EffectiveOverride:
    """What applies to one request after combining its organisation, repo and user."""

    applied: tuple[str, ...] = ()  # e.g. ("user:ana", "org:acme"), most specific first
    policy: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pin: str | None = None
    forbid_deployments: frozenset[str] = frozenset()
    forbid_providers: frozenset[str] = frozenset()
    sensitive: bool = False

    def forbids(self, name: str, provider: str) -> bool:
        return name in self.forbid_deployments or provider in self.forbid_providers


NO_OVERRIDE = EffectiveOverride()

OverrideTable = Mapping[tuple[str, str], Override]


def resolve(
    table: OverrideTable, org: str | None, repo: str | None, user: str | None
) -> EffectiveOverride:
    """Combine the overrides of ``user``, ``repo`` and ``org`` (most specific first)."""
    found = [
        table[(scope, subject)]
        for scope, subject in (("user", user), ("repo", repo), ("org", org))
        if subject is not None and (scope, subject) in table
    ]
    if not found:
        return NO_OVERRIDE
    policy: dict[str, tuple[str, ...]] = {}
    for override in reversed(found):  # least specific first, so the most specific wins
        policy.update(override.policy)
    return EffectiveOverride(
        applied=tuple(f"{o.scope}:{o.subject}" for o in found),
        policy=policy,
        pin=next((o.pin for o in found if o.pin), None),
        forbid_deployments=frozenset().union(*(o.forbid_deployments for o in found)),
        forbid_providers=frozenset().union(*(o.forbid_providers for o in found)),
        sensitive=any(o.sensitive for o in found),
    )


def parse_override(raw: Mapping[str, Any], config: RouterConfig) -> Override:
    """Validate an override as the admin API receives it; errors name the field."""
    scope = raw.get("scope")
    if scope not in SCOPES:
        raise InvalidRequestError(f"scope: must be one of {list(SCOPES)}")
    subject = raw.get("subject")
    if (
        not isinstance(subject, str)
        or not subject.strip()
        or len(subject) > MAX_SUBJECT_CHARS
        or not subject.isprintable()
    ):
        raise InvalidRequestError(
            f"subject: a printable string of 1 to {MAX_SUBJECT_CHARS} characters"
        )
    unknown = set(raw) - {
        "scope",
        "subject",
        "policy",
        "pin",
        "forbid_deployments",
        "forbid_providers",
        "sensitive",
    }
    if unknown:
        raise InvalidRequestError(f"{sorted(unknown)[0]}: unknown field")
    known = set(config.deployments)
    policy_raw = raw.get("policy")
    policy_raw = {} if policy_raw is None else policy_raw
    if not isinstance(policy_raw, dict):
        raise InvalidRequestError("policy: must map intents to lists of deployments")
    policy: dict[str, tuple[str, ...]] = {}
    for intent, chain in policy_raw.items():
        if intent not in INTENTS:
            raise InvalidRequestError(f"policy.{intent}: unknown intent")
        if (
            not isinstance(chain, list)
            or not chain
            or any(not isinstance(name, str) or name not in known for name in chain)
            or len(set(chain)) != len(chain)
        ):
            raise InvalidRequestError(
                f"policy.{intent}: a non-empty list of distinct configured deployments"
            )
        policy[intent] = tuple(chain)
    pin = raw.get("pin")
    if pin is not None and (not isinstance(pin, str) or pin not in known):
        raise InvalidRequestError(f"pin: unknown deployment {pin!r}")
    forbid_deployments = _names(raw.get("forbid_deployments"), "forbid_deployments", known)
    providers = {d.provider for d in config.deployments.values()}
    forbid_providers = _names(raw.get("forbid_providers"), "forbid_providers", providers)
    sensitive = raw.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise InvalidRequestError("sensitive: must be true or false")
    return Override(scope, subject, policy, pin, forbid_deployments, forbid_providers, sensitive)


def _names(value: Any, where: str, known: set[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or any(not isinstance(v, str) or v not in known for v in value):
        raise InvalidRequestError(f"{where}: a list of {sorted(known)}")
    return frozenset(value)
