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

A market's first book is drawn only when something first reads it (:class:`OpeningBook`): an exchange of
the venue's size (22,800 markets, some 1.5 million levels) would otherwise spend most of a minute at
start drawing and serialising books that no one reads for a while.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from polyfeed.sim.bookhash import book_hash, book_trade_price, json_string, level_head, spliced_hash
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.wire import MarketResolved, NewMarket, PriceChange, PriceChangeEntry, PriceLevel, TickSizeChange

__all__ = ["BookSide", "Change", "Claims", "OpeningBook", "SimMarket", "opening_size"]

Change = tuple[bool, int, Decimal]
"""A YES-terms level's new size: (a bid?, key, size), size 0 for a removed level."""
Claims = dict[str, tuple[str, str, str]]
"""Each token's (hash, best bid, best ask) after a group of changes."""

TICK_KEYS = {"0.01": 100, "0.001": 10}
_PRICES = [price_text(k) for k in range(SCALE + 1)]  # every key's text, made once: the hot path's
_HEADS = [level_head(p) for p in _PRICES]  # each key's level text up to its size, made once
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
        if not present:
            keys.insert(i, key)
            self.yes_texts.insert(i, "")
            self.no_texts.insert(i, "")
            self.yes_levels.insert(i, _EMPTY)
            self.no_levels.insert(i, _EMPTY)
        size_json = json_string(size_str) + "}"
        self.yes_texts[i] = _HEADS[key] + size_json  # bookhash.level_text, its head made once per price
        self.no_texts[i] = _HEADS[SCALE - key] + size_json
        self.yes_levels[i] = PriceLevel(_PRICES[key], size_str)
        self.no_levels[i] = PriceLevel(_PRICES[SCALE - key], size_str)
        self.sizes[key] = size

    def load(self, levels: list[tuple[int, Decimal, str]]) -> None:
        """Fill an empty side at once with levels ``(key, size, size text)`` of positive size, their keys
        ascending."""
        keys, sizes = self.keys, self.sizes
        yes_texts, no_texts, yes_levels, no_levels = (
            self.yes_texts,
            self.no_texts,
            self.yes_levels,
            self.no_levels,
        )
        for key, size, size_str in levels:
            size_json = json_string(size_str) + "}"
            keys.append(key)
            sizes[key] = size
            yes_texts.append(_HEADS[key] + size_json)
            no_texts.append(_HEADS[SCALE - key] + size_json)
            yes_levels.append(PriceLevel(_PRICES[key], size_str))
            no_levels.append(PriceLevel(_PRICES[SCALE - key], size_str))


def opening_size(rng: random.Random) -> Decimal:
    """A level's size in a market's first book: long-tailed (at least 20), half of them in cents."""
    whole = int(rng.paretovariate(1.2) * 20)
    return Decimal(whole) + Decimal(rng.randrange(0, 100)) / 100 if rng.random() < 0.5 else Decimal(whole + 5)


def _opening_levels(rng: random.Random, keys: list[int]) -> list[tuple[int, Decimal, str]]:
    """Levels of a first book, ``(key, size, size text)``, their sizes drawn as :func:`opening_size`
    draws them (Pareto 1.2 from 20, half of them in cents) from plain floats and text, without decimal
    arithmetic: a universe's first books hold some 1.5 million levels."""
    draw = rng.random
    levels = []
    for key in keys:
        whole = int(20.0 / (1.0 - draw()) ** _PARETO_EXPONENT)  # random.paretovariate(1.2) * 20
        if draw() < 0.5:
            cents = int(draw() * 100)
            text = f"{whole}.{cents:02d}".rstrip("0") if cents else str(whole)
        else:
            text = str(whole + 5)
        levels.append((key, Decimal(text), text))
    return levels


_PARETO_EXPONENT = 1.0 / 1.2


@dataclass(frozen=True, slots=True)
class OpeningBook:
    """What a market's first book is drawn from, when it is first read: its own seed (so that the order
    in which books are first read never changes them, nor the exchange's stream), its top of book, and
    the range of levels a side starts with."""

    seed: int
    best_bid: int
    best_ask: int
    tick: int
    levels: tuple[int, int]

    @property
    def top(self) -> tuple[int, int] | None:
        """The best bid and ask keys the drawn book will have (0 / ``SCALE`` for an empty side): each
        side's first level is the top itself when it is inside the price range. ``None`` when a side may
        open with no level at all (only drawing tells)."""
        if self.levels[0] < 1:
            return None
        bid = self.best_bid if self.best_bid >= self.tick else 0
        ask = self.best_ask if self.best_ask <= SCALE - self.tick else SCALE
        return bid, ask

    def draw(self) -> tuple[BookSide, BookSide]:
        """The bid and ask sides: levels one tick apart from the top, each with :func:`opening_size`."""
        rng = random.Random(self.seed)
        lo, hi = self.levels
        tick = self.tick
        depth_bids, depth_asks = rng.randrange(lo, hi + 1), rng.randrange(lo, hi + 1)
        bid_keys = [k for n in range(depth_bids) if (k := self.best_bid - n * tick) >= tick]
        ask_keys = [k for n in range(depth_asks) if (k := self.best_ask + n * tick) <= SCALE - tick]
        bids = _opening_levels(rng, bid_keys)
        asks = _opening_levels(rng, ask_keys)
        bid_side, ask_side = BookSide(), BookSide()
        bid_side.load(bids[::-1])
        ask_side.load(asks)
        return bid_side, ask_side


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
    resolved_at_ms: int | None = None
    """When it resolved (simulated epoch ms); ``None`` while it is open."""
    volume: float = 0.0
    """Gamma's ``volumeNum``: USDC traded, as the engine counts it (an opening amount, then every fill)."""
    opening: OpeningBook | None = None
    """Where the first book comes from, drawn on first reading (``None``: it opens empty)."""
    _sides: tuple[BookSide, BookSide] | None = field(default=None, repr=False)

    # -- the unified book -----------------------------------------------------------------------------

    def _draw_sides(self) -> tuple[BookSide, BookSide]:
        sides = self.opening.draw() if self.opening is not None else (BookSide(), BookSide())
        self._sides, self.opening = sides, None
        return sides

    @property
    def bid_side(self) -> BookSide:
        """The YES bids (the book is drawn here on first reading, :class:`OpeningBook`)."""
        return (self._sides or self._draw_sides())[0]

    @property
    def ask_side(self) -> BookSide:
        """The YES asks."""
        return (self._sides or self._draw_sides())[1]

    @property
    def book_drawn(self) -> bool:
        """Whether the book has been drawn (read at least once) and so holds memory."""
        return self._sides is not None

    def close_book(self) -> None:
        """Let the book go: a resolved market has none (REST answers 404 for its tokens, spec 8.1)."""
        self._sides, self.opening = (BookSide(), BookSide()), None

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
        """The best YES bid's key, 0 with no bids (a book not drawn yet is not drawn for it)."""
        if self._sides is None and self.opening is not None and (top := self.opening.top) is not None:
            return top[0]
        keys = self.bid_side.keys
        return keys[-1] if keys else 0

    @property
    def best_ask_key(self) -> int:
        """The best YES ask's key, ``SCALE`` with no asks."""
        if self._sides is None and self.opening is not None and (top := self.opening.top) is not None:
            return top[1]
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
