"""One side of a book as parallel lists in wire order, and the ``Level`` the public API hands out.

Bids are keyed by price key and asks by its negation, so both sides ascend and keep their best level
last; the lists are the venue's wire order (bids ascending, asks descending), which is the order the
book hash covers. :class:`polyfeed.book.OrderBook` edits the lists in place on its hot path.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from polyfeed.book.prices import PRICE_KEYS, price_key, size_is_valid, sizes_are_valid, text_to_decimal
from polyfeed.errors import InvalidLevelError
from polyfeed.wire.market import PriceLevel

__all__ = ["Level", "Side"]


class Level(msgspec.Struct, frozen=True, gc=False):
    """One price level as the public API hands it out."""

    price: Decimal
    size: Decimal


class Side:
    """One side's parallel lists, in wire order; ``sign`` is 1 for bids, -1 for asks."""

    __slots__ = ("frags", "keys", "prices", "sign", "sizes")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.prices: list[str] = []
        self.sizes: list[str] = []
        self.frags: list[str] = []

    @classmethod
    def from_levels(cls, sign: int, levels: list[PriceLevel]) -> Side:
        """Build a side from snapshot levels in any order; raises before anything is changed."""
        side = cls(sign)
        if not levels:
            return side
        prices_first = [lv.price for lv in levels]
        try:
            keys = [PRICE_KEYS[p] for p in prices_first]
        except KeyError:
            keys = [price_key(p) for p in prices_first]
        prices = prices_first
        sizes = [lv.size for lv in levels]
        if not sizes_are_valid(sizes):
            bad = next(s for s in sizes if not size_is_valid(s))
            raise InvalidLevelError(f"size {bad!r} is not a non-negative decimal")
        if sign < 0:
            keys = [-k for k in keys]
        if sorted(set(keys)) != keys:
            # Not in wire order, or a price repeated: sort, the last repeat winning as it would for a
            # sequence of changes. Levels are otherwise kept verbatim (a zero size too), because the
            # venue hashes exactly what it sends.
            merged = {k: (p, s) for k, p, s in zip(keys, prices, sizes, strict=True)}
            keys = sorted(merged)
            prices = [merged[k][0] for k in keys]
            sizes = [merged[k][1] for k in keys]
        side.keys = keys
        side.prices = prices
        side.sizes = sizes
        side.frags = [f'{{"price":"{p}","size":"{s}"}}' for p, s in zip(prices, sizes, strict=True)]
        return side

    def levels(self, depth: int | None) -> list[Level]:
        n = len(self.keys)
        start = 0 if depth is None else max(0, n - depth)
        dec = text_to_decimal
        return [
            Level(dec(p), Decimal(s))
            for p, s in zip(reversed(self.prices[start:]), reversed(self.sizes[start:]), strict=True)
        ]

    def wire_levels(self) -> list[PriceLevel]:
        return [PriceLevel(p, s) for p, s in zip(self.prices, self.sizes, strict=True)]
