"""One side of a book in wire order, compact, and the ``Level`` the public API hands out.

A side is two lists in the venue's wire order (bids ascending, asks descending: the order the book hash
covers): the integer ladder keys, and the levels' JSON as alternating *heads* and size texts,
``['"},{"price":"0.3","size":"', '100', '"},{"price":"0.4","size":"', '250.5', ...]``. Bids are keyed by
price key and asks by its negation, so both sides ascend and keep their best level last.

Why this shape (issue 15: 45,600 books in one process). A head is one object per price text, shared by
every level of every book at that price (:data:`polyfeed.book.prices.LEVEL_HEADS`), and so is its key:
a level costs its size text (the venue's own string, about 55 bytes) and three list pointers, about 80
bytes where four lists of texts and ready JSON fragments cost 290. The hash needs no fragment per level
either: the side's JSON is ``"".join(parts)`` less the first three characters, plus ``"}``, one C-level
join (:meth:`Side.json`). :class:`polyfeed.book.OrderBook` edits the lists in place on its hot path.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from polyfeed.book.prices import (
    HEAD_PRICE,
    LEVEL_HEADS,
    level_head,
    size_is_valid,
    sizes_are_valid,
    text_to_decimal,
)
from polyfeed.errors import InvalidLevelError
from polyfeed.wire.market import PriceLevel

__all__ = ["Level", "Side"]


class Level(msgspec.Struct, frozen=True, gc=False):
    """One price level as the public API hands it out."""

    price: Decimal
    size: Decimal


class Side:
    """One side's keys and level parts, in wire order; ``sign`` is 1 for bids, -1 for asks.

    Level ``i`` has key ``keys[i]``, head ``parts[2 * i]`` and size text ``parts[2 * i + 1]``.
    """

    __slots__ = ("keys", "parts", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.parts: list[str] = []

    @classmethod
    def from_levels(cls, sign: int, levels: list[PriceLevel]) -> Side:
        """Build a side from snapshot levels in any order; raises before anything is changed."""
        side = cls(sign)
        if not levels:
            return side
        try:
            heads = [LEVEL_HEADS[lv.price] for lv in levels]
        except KeyError:
            heads = [level_head(lv.price) for lv in levels]
        sizes = [lv.size for lv in levels]
        if not sizes_are_valid(sizes):
            bad = next(s for s in sizes if not size_is_valid(s))
            raise InvalidLevelError(f"size {bad!r} is not a non-negative decimal")
        keys = [h[0] for h in heads] if sign > 0 else [h[1] for h in heads]
        if sorted(set(keys)) != keys:
            # Not in wire order, or a price repeated: sort, the last repeat winning as it would for a
            # sequence of changes. Levels are otherwise kept verbatim (a zero size too), because the
            # venue hashes exactly what it sends.
            merged = {k: (h, s) for k, h, s in zip(keys, heads, sizes, strict=True)}
            keys = sorted(merged)
            heads = [merged[k][0] for k in keys]
            sizes = [merged[k][1] for k in keys]
        parts: list[str] = [""] * (2 * len(keys))
        parts[0::2] = [h[2] for h in heads]
        parts[1::2] = sizes
        side.keys = keys
        side.parts = parts
        return side

    def json(self) -> str:
        """The side's levels as the venue hashes them: ``{"price":"0.3","size":"100"},{...}``."""
        text = "".join(self.parts)
        return text[3:] + '"}' if text else ""

    def best_price(self) -> str:
        """The price text of the best level; the side must not be empty."""
        return self.parts[-2][HEAD_PRICE]

    def prices(self) -> list[str]:
        """Every level's price text, in wire order."""
        return [head[HEAD_PRICE] for head in self.parts[0::2]]

    def sizes(self) -> list[str]:
        """Every level's size text, in wire order."""
        return self.parts[1::2]

    def levels(self, depth: int | None) -> list[Level]:
        """The best ``depth`` levels (all with ``None``), best first."""
        start = 0 if depth is None else 2 * max(0, len(self.keys) - depth)
        parts = self.parts
        dec = text_to_decimal
        return [
            Level(dec(head[HEAD_PRICE]), Decimal(size))
            for head, size in zip(reversed(parts[start::2]), reversed(parts[start + 1 :: 2]), strict=True)
        ]

    def wire_levels(self) -> list[PriceLevel]:
        return [PriceLevel(p, s) for p, s in zip(self.prices(), self.sizes(), strict=True)]
