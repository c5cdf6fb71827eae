"""What a client key may send and spend: rate limits before a request, a budget hold around it.

Budgets are held per key for the UTC day and the UTC month. A request holds its estimate (the
dearest answer its chain could give, see ``Router.estimate_cost``) in both periods before any
provider is called, and settles the hold at the real cost afterwards, so concurrent requests
on any number of workers never overspend beyond the in-flight requests whose real cost
exceeded their estimate (none, when clients set ``max_tokens``). A key without a budget is
still metered, so its spend can be read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from intent_router.exceptions import (
    BudgetExceededError,
    CountersUnavailable,
    RateLimitedError,
)
from intent_router.governance.client_keys import ClientKey
from intent_router.governance.counters import Counters, Period, Reservation, period_end
from intent_router.router import Router
from intent_router.routing.overrides import NO_OVERRIDE, EffectiveOverride
from intent_router.types import Plan

log = logging.getLogger("intent_router.governance")

UNLIMITED_USD = 1e9
#: Tries to charge a settled request when the shared counters do not answer in time.
SETTLE_ATTEMPTS = 3
"""The budget a key without one is metered against (micro-dollars stay exact below 2**53)."""
PERIODS: tuple[Period, ...] = ("day", "month")


@dataclass(frozen=True)
class BudgetHold:
    """Estimates held against a key's day and month budgets until the request settles."""

    reservations: tuple[Reservation, ...]

    @property
    def estimate_usd(self) -> float:
        return self.reservations[0].estimate_usd if self.reservations else 0.0


def budget_scope(key_id: str) -> str:
    return f"key:{key_id}"


class Limits:
    """Rate limits and budget holds of client keys, over shared or in-process counters."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    async def admit(self, key: ClientKey, tokens: int | None = None) -> None:
        """Count one request (and ``tokens`` against TPM, when given) or raise RateLimitedError."""
        if key.rpm is not None:
            rpm = await self.counters.hit(f"rpm:{key.id}", key.rpm)
            if not rpm.allowed:
                raise RateLimitedError(
                    f"client key {key.prefix}... is over its limit of {key.rpm} "
                    f"requests per minute",
                    rpm.retry_after_s,
                )
        if key.tpm is not None and tokens:
            if tokens > key.tpm:
                raise RateLimitedError(
                    f"this request needs about {tokens} tokens, more than client key "
                    f"{key.prefix}... may send in a minute ({key.tpm})",
                    60.0,
                )
            tpm = await self.counters.hit(f"tpm:{key.id}", key.tpm, tokens)
            if not tpm.allowed:
                raise RateLimitedError(
                    f"client key {key.prefix}... is over its limit of {key.tpm} tokens per minute",
                    tpm.retry_after_s,
                )

    async def hold(self, key: ClientKey, estimate_usd: float) -> BudgetHold | BudgetExceededError:
        """Hold ``estimate_usd`` against the key's day and month budgets, or say which one
        cannot cover it (returned, not raised: the caller may downgrade and try again)."""
        held: list[Reservation] = []
        for period in PERIODS:
            budget = _budget(key, period)
            reservation = await self.counters.reserve(
                budget_scope(key.id),
                period,
                UNLIMITED_USD if budget is None else budget,
                estimate_usd,
            )
            if reservation is None:
                for earlier in held:
                    await self.counters.release(earlier)
                now = time.time()
                return BudgetExceededError(
                    f"client key {key.prefix}... has not enough of its {period} budget "
                    f"(${UNLIMITED_USD if budget is None else budget:g}) "
                    f"left for this request (up to ${estimate_usd:.6f})",
                    max(period_end(period, now) - now, 1.0),
                )
            held.append(reservation)
        return BudgetHold(tuple(held))

    async def settle(self, hold: BudgetHold, actual_usd: float) -> None:
        """Charge the real cost in place of the estimate. Never raises: the answer has been
        given; if the counters are down the hold expires and the spend is logged as lost."""
        for reservation in hold.reservations:
            for attempt in range(1, SETTLE_ATTEMPTS + 1):
                try:  # a commit is idempotent, so one that timed out is sent again
                    await self.counters.commit(reservation, max(actual_usd, 0.0))
                    break
                except CountersUnavailable as exc:
                    if attempt == SETTLE_ATTEMPTS:
                        log.warning(
                            "could not charge $%.6f to %s (%s) in %d attempts: %s",
                            actual_usd,
                            reservation.scope,
                            reservation.period,
                            attempt,
                            type(exc).__name__,
                        )
                    else:
                        await asyncio.sleep(0.05 * attempt)

    async def spend(self, key_id: str) -> dict[str, float]:
        """What the key has spent (settled) this UTC day and month, in USD."""
        scope = budget_scope(key_id)
        return {f"{period}_usd": await self.counters.spent(scope, period) for period in PERIODS}


async def hold_budget(
    limits: Limits,
    router: Router,
    key: ClientKey,
    plan: Plan,
    request: dict[str, Any],
    prompt: str,
    sensitive: bool = False,
    override: EffectiveOverride = NO_OVERRIDE,
) -> tuple[Plan, BudgetHold, bool]:
    """Hold a chat request's estimate against the key's budgets: (the plan to run, its hold,
    whether it was downgraded). When the budgets cannot cover it, the key's (else the config's)
    ``over_budget`` applies: ``downgrade`` re-plans on the config's downgrade tier if that is
    cheaper and fits; otherwise BudgetExceededError is raised (HTTP 429)."""
    intent = plan.decision.intent if plan.decision else None
    estimate = router.estimate_cost(plan.chain, request, prompt, intent)
    held = await limits.hold(key, estimate)
    if isinstance(held, BudgetHold):
        return plan, held, False
    if (key.over_budget or router.config.governance.over_budget) == "downgrade":
        cheaper = router.downgraded(plan, sensitive, override)
        cheaper_estimate = (
            router.estimate_cost(cheaper.chain, request, prompt, intent) if cheaper else estimate
        )
        if cheaper is not None and cheaper_estimate < estimate:  # else downgrading cannot help
            held_cheaper = await limits.hold(key, cheaper_estimate)
            if isinstance(held_cheaper, BudgetHold):
                return cheaper, held_cheaper, True
            held = held_cheaper
    raise held


def _budget(key: ClientKey, period: Period) -> float | None:
    return key.budget_day_usd if period == "day" else key.budget_month_usd
