"""Client keys: the virtual API keys clients send (``Authorization: Bearer ir-...``).

A key is shown once, when it is created; the database keeps its SHA-256 only (the key is 256
random bits, so a fast hash is enough: there is nothing to brute-force) and a short prefix to
recognise it by. Each key belongs to a team and may carry budgets (USD per UTC day and month)
and rate limits (requests and tokens per minute). Revoking keeps the row, so a team's spend
still counts what its revoked keys spent.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, get_args

from sqlalchemy import Column, Float, Integer, String, Table, insert, select, update

from intent_router.db import MigratedStore, metadata
from intent_router.exceptions import InvalidRequestError
from intent_router.governance.snapshot import PolledSnapshot, bump_version, read_version
from intent_router.types import OverBudget

KEY_PREFIX = "ir-"
OVER_BUDGET_CHOICES: tuple[OverBudget, ...] = get_args(OverBudget)

client_keys = Table(
    "client_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("team", String(256), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("budget_day_usd", Float),
    Column("budget_month_usd", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("over_budget", String(16)),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)


@dataclass(frozen=True)
class ClientKey:
    """A client key as stored (never the key itself)."""

    id: str
    prefix: str
    team: str
    name: str
    budget_day_usd: float | None = None
    budget_month_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    over_budget: OverBudget | None = None  # None: the config's governance.over_budget
    created_at: float = 0.0
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KeyLimits:
    """What a new key may spend and send; None means unlimited."""

    budget_day_usd: float | None = None
    budget_month_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    over_budget: OverBudget | None = None

    def __post_init__(self) -> None:
        for name in ("budget_day_usd", "budget_month_usd"):
            value = getattr(self, name)
            if value is not None and not (0 <= value <= 1e9):
                raise InvalidRequestError(f"{name}: must be between 0 and 1e9 USD")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and not (1 <= value <= 10**9):
                raise InvalidRequestError(f"{name}: must be between 1 and 1e9 per minute")
        if self.over_budget is not None and self.over_budget not in OVER_BUDGET_CHOICES:
            raise InvalidRequestError(f"over_budget: must be one of {list(OVER_BUDGET_CHOICES)}")


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    """A fresh key: ``ir-`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _to_key(row: Any) -> ClientKey:
    return ClientKey(
        id=row["id"],
        prefix=row["prefix"],
        team=row["team"],
        name=row["name"],
        budget_day_usd=row["budget_day_usd"],
        budget_month_usd=row["budget_month_usd"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        over_budget=row["over_budget"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class ClientKeyStore(MigratedStore):
    """Create, list and revoke client keys; every change bumps the ``client_keys`` version."""

    def create(
        self, team: str, name: str, limits: KeyLimits = KeyLimits()
    ) -> tuple[str, ClientKey]:
        """A new key for ``team``: (the key, shown this once; what is stored)."""
        self.ensure_schema()
        key = new_key()
        record = ClientKey(
            id="key_" + secrets.token_hex(8),
            prefix=key[:10],
            team=team,
            name=name,
            created_at=time.time(),
            **asdict(limits),
        )
        with self.engine.begin() as connection:
            connection.execute(insert(client_keys).values(key_hash=hash_key(key), **asdict(record)))
            bump_version(connection, "client_keys")
        return key, record

    def get(self, key_id: str) -> ClientKey | None:
        self.ensure_schema()
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(client_keys).where(client_keys.c.id == key_id))
                .mappings()
                .first()
            )
        return _to_key(row) if row is not None else None

    def list(self, team: str | None = None) -> list[ClientKey]:
        """Every key (revoked ones too), oldest first; only ``team``'s when given."""
        self.ensure_schema()
        query = select(client_keys).order_by(client_keys.c.created_at, client_keys.c.id)
        if team is not None:
            query = query.where(client_keys.c.team == team)
        with self.engine.connect() as connection:
            return [_to_key(r) for r in connection.execute(query).mappings()]

    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False when there is no such active key."""
        self.ensure_schema()
        with self.engine.begin() as connection:
            done = connection.execute(
                update(client_keys)
                .where((client_keys.c.id == key_id) & client_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            if done:
                bump_version(connection, "client_keys")
        return bool(done)

    def version(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as connection:
            return read_version(connection, "client_keys")

    def active_by_hash(self) -> dict[str, ClientKey]:
        """Active keys by their hash: what a worker authenticates against."""
        self.ensure_schema()
        query = select(client_keys).where(client_keys.c.revoked_at.is_(None))
        with self.engine.connect() as connection:
            return {r["key_hash"]: _to_key(r) for r in connection.execute(query).mappings()}


class ClientKeyCache(PolledSnapshot[dict[str, ClientKey]]):
    """Active keys as of the last poll: a revoked key stops working on every worker within
    ``refresh_s`` plus one poll; looking a key up never touches the database."""

    def __init__(self, store: ClientKeyStore, refresh_s: float = 0.5) -> None:
        super().__init__("client-keys", store.version, store.active_by_hash, {}, refresh_s)
        self.store = store

    def lookup(self, key: str) -> ClientKey | None:
        """The active key ``key`` is, or None."""
        # Looking up the digest leaks nothing useful by timing: the attacker controls the key,
        # not its SHA-256.
        return self.current.get(hash_key(key))
