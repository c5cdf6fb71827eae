"""Poison rows in the decision log: every value an upstream or a client can put into a decision,
on SQLite and the real PostgreSQL. Each request keeps exactly one row, and no bad row holds up
the rows behind it."""

from __future__ import annotations

import logging
import math

import pytest

from intent_router.decisions import AttemptRecord, DecisionStore, DecisionWriter
from intent_router.decisions.store import attempts_of
from tests.integration.test_decision_store import _decision

LONE_SURROGATE = "boom \udfff"

POISONS = {
    "surrogate_in_attempt_error": dict(
        attempts=(AttemptRecord("gpt-4o", "failed", 500, LONE_SURROGATE, 1.0),)
    ),
    "surrogate_in_error": dict(status="failed", error=f"HTTP 500: {LONE_SURROGATE}"),
    "surrogate_in_prompt": dict(prompt_text="fix \ud800 this"),
    "nul_everywhere": dict(
        prompt_text="a\x00b",
        repo="acme\x00",
        error="e\x00",
        attempts=(AttemptRecord("gpt-4o", "failed", 500, "x\x00y", 1.0),),
    ),
    "huge_token_count": dict(prompt_tokens=10**300, completion_tokens=-(10**40)),
    "float_token_count": dict(prompt_tokens=float("nan"), completion_tokens=float("inf")),
    "non_finite_costs": dict(
        cost_usd=float("nan"),
        premium_cost_usd=float("inf"),
        latency_ms=-math.inf,
        confidence=float("nan"),
    ),
    "huge_int_cost": dict(cost_usd=10**400),
    "string_where_number": dict(prompt_tokens="many", completion_tokens=[1]),  # type: ignore[dict-item]
    "overlong_ids": dict(repo="r" * 5000, user="u" * 5000, deployment="d" * 500, intent="i" * 200),
    "bad_probabilities": dict(probabilities={"debugging": float("nan"), "x\udfff": 10**300}),
    "surrogate_in_chain": dict(chain=("gpt-4o", "bad\udcff")),
}


def _stored(store: DecisionStore, request_id: str) -> dict:
    row = store.get(request_id)
    assert row is not None, f"{request_id} lost"
    return row


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poison_row_is_stored_sanitised_and_blocks_nothing(
    database_url: str, poison: str
) -> None:
    store = DecisionStore(database_url)
    writer = DecisionWriter(store, interval_s=0.01)
    writer.submit(_decision("before"))
    writer.submit(_decision("poison", **POISONS[poison]))
    writer.submit(_decision("after"))
    assert writer.flush(timeout_s=20), "the writer is stuck behind a poison row"
    writer.close()
    assert store.count() == 3
    row = _stored(store, "poison")
    for name in ("prompt_tokens", "completion_tokens"):
        assert -(2**31) <= row[name] < 2**31
    for name in ("cost_usd", "premium_cost_usd", "latency_ms"):
        assert math.isfinite(row[name])
    text = repr(row)
    assert "\x00" not in text and "\\x00" not in text
    assert all(not ("\ud800" <= ch <= "\udfff") for ch in str(row))
    assert _stored(store, "before")["status"] == "ok" and _stored(store, "after")["status"] == "ok"
    store.dispose()


def test_sanitised_values_keep_what_can_be_kept(database_url: str) -> None:
    store = DecisionStore(database_url)
    store.insert_many(
        [
            _decision("p", **POISONS["surrogate_in_attempt_error"]),
            _decision("h", **POISONS["huge_token_count"]),
            _decision("n", **POISONS["non_finite_costs"]),
            _decision("l", **POISONS["overlong_ids"]),
        ]
    )
    assert attempts_of(_stored(store, "p"))[0].error == "boom \ufffd"
    huge = _stored(store, "h")
    assert huge["prompt_tokens"] == 2**31 - 1 and huge["completion_tokens"] == -(2**31)
    costs = _stored(store, "n")
    assert costs["cost_usd"] == 0.0 and costs["confidence"] is None
    long = _stored(store, "l")
    assert long["repo"] == "r" * 256 and long["deployment"] == "d" * 128
    store.dispose()


def test_a_row_the_database_refuses_is_logged_once_and_the_rest_are_written(
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request id written twice (the unique column refuses the second) is the one refusal
    sanitising cannot cure: it is logged with its id, the batch around it still lands."""
    store = DecisionStore(database_url)
    store.insert_many([_decision("dup")])
    writer = DecisionWriter(store, interval_s=0.05)
    with caplog.at_level(logging.ERROR, logger="intent_router.decisions"):
        for request_id in ("a", "dup", "b", "c"):
            writer.submit(_decision(request_id))
        assert writer.flush(timeout_s=20)
        writer.close()
    assert store.count() == 4 and {r["request_id"] for r in store.after(0)} == {
        "dup",
        "a",
        "b",
        "c",
    }
    refusals = [r.getMessage() for r in caplog.records if "dup" in r.getMessage()]
    assert len(refusals) == 1 and "IntegrityError" in refusals[0]
    assert not any("boom" in r.getMessage() for r in caplog.records)
    store.dispose()
