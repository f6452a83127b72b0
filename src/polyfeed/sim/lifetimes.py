"""When the local exchange's markets resolve: each market's lifetime, drawn when it opens.

Real markets live for days to months and resolve on a date of their own, not in order of how busy they
are. Here a market's lifetime is drawn from a log-normal distribution around a median (``median_s``,
half an hour by default, in the exchange's simulated clock, which a server keeps with the wall
clock or runs ``clock_speed`` times faster): a quarter of the markets live less than half the median,
one in ten more than 3.6 times it, and none less than a quarter of it (seven and a half minutes by
default). A market that resolves is replaced by a new one at once
(:meth:`polyfeed.sim.engine.Exchange.resolve_market`), so the number of markets stays the same.

The first ``long_dated`` markets (``sim-market-0`` to ``sim-market-19`` by default: the slugs the
README and every ``--help`` use) never resolve on their own, so that the examples always work; a test
or a fault can still resolve them.

Lifetimes come from a random generator of their own, so that the order flow of a seed is the same
whatever the lifetimes are.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from polyfeed.sim.market import SimMarket

__all__ = ["LONG_DATED", "MEDIAN_LIFETIME_S", "MIN_LIFETIME", "Lifetimes"]

LONG_DATED = 20
"""Markets ``sim-market-0`` to ``sim-market-19`` never resolve on their own (the documented slugs)."""
MEDIAN_LIFETIME_S = 1800.0
"""The median lifetime of the other markets, in simulated seconds."""
MIN_LIFETIME = 0.25
"""No market lives less than this fraction of the median."""
_SIGMA = 1.0


class Lifetimes:
    """The resolution dates of an exchange's markets, soonest first.

    Args:
        rng: the generator lifetimes are drawn from.
        median_s: the median lifetime in simulated seconds; ``None``: no market resolves on its own.
        long_dated: markets whose index is below this never resolve on their own.
    """

    def __init__(self, rng: random.Random, median_s: float | None, long_dated: int) -> None:
        if median_s is not None and median_s <= 0:
            raise ValueError("a market's median lifetime must be positive (None: markets never resolve)")
        self.rng = rng
        self.median_s = median_s
        self.long_dated = long_dated
        self._due: list[tuple[int, int, SimMarket]] = []  # (resolves_at_ms, index, market): a heap

    def opened(self, market: SimMarket, now_ms: int) -> None:
        """Draw the lifetime of a market opening now (its ``resolves_at_ms``; ``None``: long-dated)."""
        if self.median_s is None or market.index < self.long_dated:
            market.resolves_at_ms = None
            return
        factor = max(MIN_LIFETIME, self.rng.lognormvariate(0.0, _SIGMA))
        market.resolves_at_ms = now_ms + int(factor * self.median_s * 1000)
        heapq.heappush(self._due, (market.resolves_at_ms, market.index, market))

    def next_due_ms(self) -> int | None:
        """When the next market resolves on its own (simulated epoch ms), ``None`` if none will."""
        return self._due[0][0] if self._due else None

    def due(self, now_ms: int, is_open: Callable[[SimMarket], bool]) -> list[SimMarket]:
        """The markets whose time has come by ``now_ms``, soonest first, among those still open (one
        resolved earlier by hand is skipped). O(1) when none is due: the exchange asks at every step."""
        out = []
        while self._due and self._due[0][0] <= now_ms:
            market = heapq.heappop(self._due)[2]
            if is_open(market):
                out.append(market)
        return out
