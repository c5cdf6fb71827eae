"""The client-key store on SQLite and the real PostgreSQL: hashed keys, revocation, versions."""

from __future__ import annotations

import pytest

from intent_router.exceptions import InvalidRequestError
from intent_router.governance.client_keys import ClientKeyCache, ClientKeyStore, KeyLimits, hash_key


def test_create_list_revoke_and_what_a_worker_sees(database_url: str) -> None:
    store = ClientKeyStore(database_url)
    cache = ClientKeyCache(store)
    try:
        assert store.version() == 0 and store.list() == []
        key, record = store.create(
            "acme", "ci", KeyLimits(budget_day_usd=2.5, rpm=60, over_budget="refuse")
        )
        other_key, other = store.create("globex", "bot")
        assert store.version() == 2
        assert store.get(record.id) == record and record.budget_day_usd == 2.5 and record.rpm == 60
        assert [k.id for k in store.list("acme")] == [record.id]
        assert [k.id for k in store.list()] == [record.id, other.id]

        assert cache.refresh() and cache.lookup(key) == record and cache.lookup(other_key) == other
        assert cache.lookup(key + "x") is None and cache.lookup("") is None
        assert set(store.active_by_hash()) == {hash_key(key), hash_key(other_key)}

        assert (
            store.revoke(record.id) and not store.revoke(record.id) and not store.revoke("key_nope")
        )
        assert store.version() == 3
        cache.refresh()
        assert cache.lookup(key) is None and cache.lookup(other_key) == other
        revoked = store.get(record.id)
        assert revoked is not None and not revoked.active and revoked.revoked_at is not None
        assert [k.id for k in store.list("acme")] == [record.id]  # revoked keys stay listed
    finally:
        cache.stop()
        store.dispose()


def test_a_cache_keeps_its_snapshot_when_the_database_goes_away(tmp_path) -> None:
    store = ClientKeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    key, record = store.create("acme", "ci")
    cache = ClientKeyCache(store)
    cache.refresh()
    store.dispose()
    (tmp_path / "keys.db").unlink()
    (tmp_path / "keys.db").mkdir()  # the path is now a directory: SQLite cannot open it
    assert cache.refresh() is False
    assert cache.lookup(key) == record  # requests keep authenticating from the last snapshot


@pytest.mark.parametrize(
    "limits", [{"budget_month_usd": 2e9}, {"tpm": 0}, {"over_budget": "sometimes"}]
)
def test_limits_are_checked_before_anything_is_stored(limits: dict) -> None:
    with pytest.raises(InvalidRequestError):
        KeyLimits(**limits)
