"""One binary market of the local exchange: its unified book, and both tokens' books as the venue shows them.

The venue keeps one book per market in YES terms; the NO token's book is its mirror: a NO bid at
``1 - p`` *is* a YES ask at ``p`` (spec 4.2, "mirrored entries"; spec 7.3: the complement's hashes
reproduce from the mirrored book). So the unified book is the only truth here, and each token's wire
levels, top of book and hash are derived from it, by this module's own code (:mod:`polyfeed.sim.bookhash`
for the hash), never by the client's :mod:`polyfeed.book`.

Each side keeps its YES-terms keys (units of 0.0001) ascending, and beside them each level's JSON text for
the hash as a YES level and as its NO mirror. Wire order falls out of that one order: YES bids ascend
with the keys and YES asks descend against them, while NO bids (YES asks at ``1 - p``) ascend as the
YES ask keys descend, and NO asks (YES bids at ``1 - p``) descend as the YES bid keys ascend.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from polyfeed.sim.bookhash import book_hash, book_trade_price, level_text, spliced_hash
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.wire import MarketResolved, NewMarket, PriceChange, PriceChangeEntry, PriceLevel, TickSizeChange

__all__ = ["BookSide", "Change", "Claims", "SimMarket"]

Change = tuple[bool, int, Decimal]
"""A YES-terms level's new size: (a bid?, key, size), size 0 for a removed level."""
Claims = dict[str, tuple[str, str, str]]
"""Each token's (hash, best bid, best ask) after a group of changes."""

TICK_KEYS = {"0.01": 100, "0.001": 10}
_PRICES = [price_text(k) for k in range(SCALE + 1)]  # every key's text, made once: the hot path's
_EMPTY = PriceLevel("", "")


class BookSide:
    """One side of the unified book: sizes by YES key, the keys ascending, each level's hash texts."""

    __slots__ = ("keys", "no_levels", "no_texts", "sizes", "yes_levels", "yes_texts")

    def __init__(self) -> None:
        self.sizes: dict[int, Decimal] = {}
        self.keys: list[int] = []
        self.yes_texts: list[str] = []
        """``level_text`` of each key's level as a YES level (price ``p``), aligned with ``keys``."""
        self.no_texts: list[str] = []
        """The same for its NO mirror (price ``1 - p``)."""
        self.yes_levels: list[PriceLevel] = []
        """Each key's level as a YES wire level, aligned with ``keys``."""
        self.no_levels: list[PriceLevel] = []
        """The same for its NO mirror."""

    def set(self, key: int, size: Decimal) -> None:
        """Set a level's size; zero or less removes it (spec 4.2: size ``"0"`` removes the level)."""
        keys = self.keys
        i = bisect_left(keys, key)
        present = i < len(keys) and keys[i] == key
        if size <= 0:
            if present:
                del keys[i], self.sizes[key]
                del self.yes_texts[i], self.no_texts[i], self.yes_levels[i], self.no_levels[i]
            return
        size_str = size_text(size)
        yes, no = _PRICES[key], _PRICES[SCALE - key]
        if not present:
            keys.insert(i, key)
            self.yes_texts.insert(i, "")
            self.no_texts.insert(i, "")
            self.yes_levels.insert(i, _EMPTY)
            self.no_levels.insert(i, _EMPTY)
        self.yes_texts[i] = level_text(yes, size_str)
        self.no_texts[i] = level_text(no, size_str)
        self.yes_levels[i] = PriceLevel(yes, size_str)
        self.no_levels[i] = PriceLevel(no, size_str)
        self.sizes[key] = size


@dataclass(eq=False)  # identity: markets are compared with ``in`` and removed from lists, fields change
class SimMarket:
    """One binary market: a condition id, a YES and a NO token, and the unified book in YES terms."""

    index: int
    condition_id: str
    yes: str
    no: str
    question: str
    slug: str
    fair_key: int
    tick: str = "0.01"
    min_order_size: str = "5"
    neg_risk: bool = False
    activity: float = 1.0
    last_trade_price: str = ""
    """The last trade's price as the ``last_trade_price`` event writes it, trimmed (``"0.49"``); ``""``
    before any trade. Books and hashes use :attr:`book_trade_price` instead (spec 7.3)."""
    last_trade_side: str = ""
    """The last trade's taker side, ``"BUY"`` or ``"SELL"``; ``""`` before any trade (spec 4.4)."""
    resolves_at_ms: int | None = None
    """When it resolves on its own (simulated epoch ms, :mod:`polyfeed.sim.lifetimes`); ``None``: a
    long-dated market, resolved only by hand."""
    bid_side: BookSide = field(default_factory=BookSide)
    ask_side: BookSide = field(default_factory=BookSide)

    # -- the unified book -----------------------------------------------------------------------------

    @property
    def bids(self) -> Mapping[int, Decimal]:
        """YES bids, key -> size (read only: change them with :meth:`set`)."""
        return self.bid_side.sizes

    @property
    def asks(self) -> Mapping[int, Decimal]:
        """YES asks, key -> size (read only: change them with :meth:`set`)."""
        return self.ask_side.sizes

    def set(self, buy: bool, key: int, size: Decimal) -> None:
        """Set a YES-terms level (``buy``: a bid); a size of zero removes it."""
        (self.bid_side if buy else self.ask_side).set(key, size)

    @property
    def best_bid_key(self) -> int:
        """The best YES bid's key, 0 with no bids."""
        keys = self.bid_side.keys
        return keys[-1] if keys else 0

    @property
    def best_ask_key(self) -> int:
        """The best YES ask's key, ``SCALE`` with no asks."""
        keys = self.ask_side.keys
        return keys[0] if keys else SCALE

    @property
    def tick_key(self) -> int:
        return TICK_KEYS[self.tick]

    @property
    def book_trade_price(self) -> str:
        """The last trade price as books carry and hash it, ``"0.490"`` (spec 7.3); ``""`` if none."""
        return book_trade_price(self.last_trade_price)

    def complement(self, asset_id: str) -> str:
        return self.no if asset_id == self.yes else self.yes

    # -- each token's book, derived -------------------------------------------------------------------

    def wire_levels(self, asset: str) -> tuple[list[PriceLevel], list[PriceLevel]]:
        """A token's levels in wire order: bids ascending, asks descending, the best last (spec 4.1)."""
        bids, asks = self.bid_side, self.ask_side
        if asset == self.yes:
            return list(bids.yes_levels), asks.yes_levels[::-1]
        # NO bids are YES asks at 1 - p, NO asks are YES bids at 1 - p
        return asks.no_levels[::-1], list(bids.no_levels)

    def top(self, asset: str) -> tuple[str, str]:
        """A token's best bid and best ask texts, ``"0"`` / ``"1"`` for an empty side (spec 4.2, 12)."""
        bids, asks = self.bid_side.keys, self.ask_side.keys
        if asset == self.yes:
            return (_PRICES[bids[-1]] if bids else "0", _PRICES[asks[0]] if asks else "1")
        return (_PRICES[SCALE - asks[0]] if asks else "0", _PRICES[SCALE - bids[-1]] if bids else "1")

    def hash(self, asset: str, timestamp: str) -> str:
        """A token's book hash now, with the message's timestamp (spec 7.1, 7.4), from the cached texts."""
        bids, asks = self.bid_side, self.ask_side
        bid_texts: Iterable[str]
        ask_texts: Iterable[str]
        if asset == self.yes:
            bid_texts, ask_texts = bids.yes_texts, reversed(asks.yes_texts)
        else:
            bid_texts, ask_texts = reversed(asks.no_texts), bids.no_texts
        return spliced_hash(
            market=self.condition_id,
            asset_id=asset,
            timestamp=timestamp,
            bid_texts=bid_texts,
            ask_texts=ask_texts,
            min_order_size=self.min_order_size,
            tick_size=self.tick,
            neg_risk=self.neg_risk,
            last_trade_price=self.book_trade_price,
        )

    def plain_hash(self, asset: str, timestamp: str) -> str:
        """The same hash through :func:`polyfeed.sim.bookhash.book_hash`, from the levels rebuilt."""
        bids, asks = self.wire_levels(asset)
        return book_hash(
            market=self.condition_id,
            asset_id=asset,
            timestamp=timestamp,
            bids=((lv.price, lv.size) for lv in bids),
            asks=((lv.price, lv.size) for lv in asks),
            min_order_size=self.min_order_size,
            tick_size=self.tick,
            neg_risk=self.neg_risk,
            last_trade_price=self.book_trade_price,
        )

    # -- what the venue sends about it ----------------------------------------------------------------

    def claims(self, timestamp: str) -> Claims:
        """Each token's hash and top of book now: what every entry of a timestamp's group carries, the
        group's final state (spec 7.4; for a lone message, the state after its change)."""
        return {asset: (self.hash(asset, timestamp), *self.top(asset)) for asset in (self.yes, self.no)}

    def price_changes(self, groups: list[list[Change]], timestamp: str, claims: Claims) -> list[PriceChange]:
        """One message per group of changes already made; each change as the YES entry and its NO
        mirror at ``1 - p`` with the other side and the same size (spec 4.2, "mirrored entries")."""
        out = []
        for group in groups:
            entries = []
            for buy, key, size in group:
                size_str = size_text(size)
                for asset, side_buy, k in ((self.yes, buy, key), (self.no, not buy, SCALE - key)):
                    hash_, bid, ask = claims[asset]
                    entries.append(
                        PriceChangeEntry(
                            asset_id=asset,
                            price=_PRICES[k],
                            size=size_str,
                            side="BUY" if side_buy else "SELL",
                            hash=hash_,
                            best_bid=bid,
                            best_ask=ask,
                        )
                    )
            out.append(PriceChange(market=self.condition_id, timestamp=timestamp, price_changes=entries))
        return out

    def retick(self, timestamp: str) -> list[TickSizeChange]:
        """0.01 -> 0.001 when the top of book passes 0.96 or 0.04 (spec 4.3), and back inside 0.10-0.90:
        the new tick (later hashes carry it, spec 7.1) and a ``tick_size_change`` for each token."""
        best_bid, best_ask = self.best_bid_key, self.best_ask_key
        if self.tick == "0.01" and (best_ask > 9600 or best_bid < 400):
            new = "0.001"
        elif self.tick == "0.001" and best_bid > 1000 and best_ask < 9000 and self._on_grid(100):
            new = "0.01"
        else:
            return []
        old, self.tick = self.tick, new
        return [
            TickSizeChange(
                asset_id=asset,
                market=self.condition_id,
                old_tick_size=old,
                new_tick_size=new,
                timestamp=timestamp,
            )
            for asset in (self.yes, self.no)
        ]

    def _on_grid(self, tick: int) -> bool:
        return all(k % tick == 0 for k in self.bids) and all(k % tick == 0 for k in self.asks)

    def new_market_notice(self, timestamp: str) -> NewMarket:
        """``new_market`` for this market (spec 4.6)."""
        return NewMarket(
            market=self.condition_id,
            timestamp=timestamp,
            id=str(100_000 + self.index),
            question=self.question,
            slug=self.slug,
            assets_ids=[self.yes, self.no],
            outcomes=["Yes", "No"],
            order_price_min_tick_size=self.tick,
        )

    @property
    def yes_wins(self) -> bool:
        """Whether YES wins should it resolve now: its fair value is at least one half."""
        return self.fair_key >= SCALE // 2

    def resolved_notice(self, timestamp: str) -> MarketResolved:
        """``market_resolved`` for this market, its winner decided by :attr:`yes_wins` (spec 4.7)."""
        winner, outcome = (self.yes, "Yes") if self.yes_wins else (self.no, "No")
        return MarketResolved(
            market=self.condition_id,
            timestamp=timestamp,
            id=str(100_000 + self.index),
            assets_ids=[self.yes, self.no],
            winning_asset_id=winner,
            winning_outcome=outcome,
            question=self.question,
            slug=self.slug,
            outcomes=["Yes", "No"],
        )
