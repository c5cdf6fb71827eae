"""Model groups: deployments of one model (other keys, regions or providers) shared by load.

A chain entry that belongs to a group stands, per request, for every member of its group,
in the order a strategy picks: ``weighted`` (random, each member first with probability
weight / total), ``least_in_flight`` (fewest requests under way first), ``lowest_latency``
(lowest moving average of its recent latencies first; members never measured first of all)
or ``headroom`` (the largest share of its rpm/tpm limits left this minute first:
routing/headroom.py; over a minute each member fills in proportion to its limits).
Members cooling down come last, so the chain walk skips them and tells why; they get no
traffic. ``order_members`` is pure (the randomness is passed in); ``GroupStats`` holds the
per-process counters the strategies read.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from intent_router.config import GROUP_STRATEGIES as STRATEGIES

LATENCY_SMOOTHING = 0.2
"""Weight of the newest latency in a member's moving average."""


@dataclass(frozen=True)
class Member:
    """What a strategy knows of one member when a request arrives."""

    name: str
    weight: float = 1.0
    available: bool = True  # False: cooling down
    in_flight: int = 0
    latency_ms: float | None = None  # moving average; None: never measured
    headroom: float | None = None  # share of its rpm/tpm left this minute; None: no limit


def order_members(members: Sequence[Member], strategy: str, rng: random.Random) -> tuple[str, ...]:
    """Every member once: the available ones in the strategy's order, then those cooling down."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown group strategy {strategy!r}")
    ready = [m for m in members if m.available]
    cooling = [m.name for m in members if not m.available]
    keyed: list[tuple[tuple[float, ...], str]]
    if strategy == "weighted":
        # Efraimidis-Spirakis: sorting by u ** (1 / w) descending draws without replacement,
        # each member first with probability w / sum(w); weight 0 members go last.
        keyed = [
            ((-(rng.random() ** (1.0 / m.weight)) if m.weight > 0 else 1.0, rng.random()), m.name)
            for m in ready
        ]
    elif strategy == "headroom":
        keyed = [
            ((-(1.0 if m.headroom is None else m.headroom), rng.random()), m.name) for m in ready
        ]
    elif strategy == "least_in_flight":
        keyed = [((float(m.in_flight), rng.random()), m.name) for m in ready]
    else:
        keyed = [
            ((0.0 if m.latency_ms is None else 1.0, m.latency_ms or 0.0, rng.random()), m.name)
            for m in ready
        ]
    return tuple(name for _, name in sorted(keyed)) + tuple(cooling)


def expand_chain(
    chain: Sequence[str],
    group_of: Mapping[str, str | None],
    order_group: Callable[[str], Sequence[str]],
) -> tuple[str, ...]:
    """``chain`` with every entry that belongs to a group replaced by ``order_group(group)``
    (the group's members in this request's order); a deployment appears once, at its first place."""
    out: list[str] = []
    seen: set[str] = set()
    for name in chain:
        group = group_of.get(name)
        for member in order_group(group) if group else (name,):
            if member not in seen:
                seen.add(member)
                out.append(member)
    return tuple(out)


class GroupStats:
    """Requests under way and the latency moving average of every deployment (this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._latency_ms: dict[str, float] = {}

    def started(self, name: str) -> None:
        with self._lock:
            self._in_flight[name] = self._in_flight.get(name, 0) + 1

    def finished(self, name: str, latency_ms: float | None = None) -> None:
        """The request ended; ``latency_ms`` when it answered (failures do not feed the average:
        a fast 429 must not make a member look quick)."""
        with self._lock:
            self._in_flight[name] = max(0, self._in_flight.get(name, 0) - 1)
            if latency_ms is not None:
                old = self._latency_ms.get(name)
                self._latency_ms[name] = (
                    latency_ms if old is None else old + LATENCY_SMOOTHING * (latency_ms - old)
                )

    def in_flight(self, name: str) -> int:
        with self._lock:
            return self._in_flight.get(name, 0)

    def latency_ms(self, name: str) -> float | None:
        with self._lock:
            return self._latency_ms.get(name)

    def members(
        self,
        names: Iterable[str],
        weights: Mapping[str, float],
        available: Callable[[str], bool],
        headroom: Callable[[str], float | None] = lambda _: None,
    ) -> list[Member]:
        with self._lock:
            return [
                Member(
                    n,
                    weights.get(n, 1.0),
                    available(n),
                    self._in_flight.get(n, 0),
                    self._latency_ms.get(n),
                    headroom(n),
                )
                for n in names
            ]
