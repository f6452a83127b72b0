"""The local exchange's engine: seeded order flow over many binary markets, as the venue's messages.

Sans-I/O: :meth:`Exchange.step` advances a simulated clock and returns the messages the venue would
send, each with the token ids it concerns (so a server can route it the way the venue does: a message
goes to every connection subscribed to any of its assets, mirrored entries included, spec 11.10).

Each market's unified book (:class:`polyfeed.sim.market.SimMarket`) is the only truth: both tokens'
levels, tops of book and hashes are derived from it by the exchange's own code, written from the spec
(:mod:`polyfeed.sim.bookhash`), so the exchange is a witness independent of the client's
:mod:`polyfeed.book` that it tests.

What a step can do (spec section 12):

- a limit order or a cancel near the market's drifting fair value: one ``price_change`` with an entry
  for each token, each with its hash and top of book after the change;
- now and then two or three such changes at one timestamp, each message carrying the group's final
  hash and top of book, as real same-timestamp groups without a trade do (spec 7.4);
- a marketable order: a trade burst, several ``price_change`` messages with one timestamp (the crossing
  level appears, the consumed levels go, the rest of the crossing order stays), all carrying the final
  hash and top of book; then a post-trade ``book`` for each token (no ``tick_size`` or
  ``last_trade_price`` fields, but hashed with the new trade price); then ``last_trade_price`` with the
  trimmed price (``"0.49"``), while every later hash of both tokens uses ``"0.490"`` (spec 7.3);
- a ``tick_size_change`` (0.01 -> 0.001) when the top of book passes 0.96 or 0.04, and back;
- before its event, a market whose lifetime is over resolves (``market_resolved``) and a new one opens
  in its place (``new_market``), so the number of markets stays the same; lifetimes are minutes to
  hours of the simulated clock, and the documented slugs never resolve (:mod:`polyfeed.sim.lifetimes`).

Same seed, same stream: the engine draws from one ``random.Random(seed)`` and its own clock, and each
market's first book from a seed of its own drawn when the market opens, so that the order in which books
are first read changes nothing (:class:`polyfeed.sim.market.OpeningBook`).

At the venue's scale (22,800 markets): building draws no book, an event draws its market in O(log n)
(:mod:`polyfeed.sim.weights`), a market resolves and its replacement opens in its slot without a walk
of the markets, and the account's orders are found by market and level.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from polyfeed.sim.account import SimAccount
from polyfeed.sim.lifetimes import LONG_DATED, MEDIAN_LIFETIME_S, Lifetimes
from polyfeed.sim.market import Change, OpeningBook, SimMarket, opening_size
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.sim.weights import Weights
from polyfeed.wire import (
    Book,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    Order,
    PriceChange,
    TickSizeChange,
    Trade,
)

__all__ = ["SCALE", "Exchange", "Outbound", "SimMarket", "price_text"]


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message the venue would send, and the token ids it concerns."""

    message: Book | PriceChange | TickSizeChange | LastTradePrice | Order | Trade | NewMarket | MarketResolved
    assets: tuple[str, ...]
    channel: str = "market"
    """``market`` (route by ``assets``), ``user`` (the account's orders and trades, route by ``market``)
    or ``broadcast`` (``new_market`` / ``market_resolved``: every custom-feature connection, spec 11.10)."""
    market: str = ""


def _weight(market: SimMarket) -> int:
    """A market's share of the flow, an integer (exact sums, :mod:`polyfeed.sim.weights`), never 0."""
    return max(1, round(market.activity * 1_000_000))


def _index(market: SimMarket) -> int:
    return market.index


class Exchange:
    """Markets, their books, and a seeded order-flow model.

    Args:
        markets: how many binary markets.
        seed: the random seed; the same seed gives the same stream.
        start_ms: the simulated clock's start (epoch ms).
        levels: the range of levels a side starts with (10-75 a side: books of 20-150 levels).
        median_lifetime_s: the median lifetime of a market, in simulated seconds (``None``: markets
            resolve only by hand); each resolved market is replaced by a new one.
        long_dated: the first markets, which never resolve on their own (the documented slugs).
    """

    def __init__(
        self,
        markets: int = 10,
        *,
        seed: int = 1,
        start_ms: int = 1_790_000_000_000,
        levels: tuple[int, int] = (10, 75),
        median_lifetime_s: float | None = MEDIAN_LIFETIME_S,
        long_dated: int = LONG_DATED,
    ) -> None:
        if markets < 1:
            raise ValueError("an exchange needs at least one market")
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.now_ms = start_ms
        self.lifetimes = Lifetimes(random.Random(seed + 3), median_lifetime_s, long_dated)
        """When each market resolves on its own (a generator of its own: the order flow is unchanged)."""
        self.markets: list[SimMarket] = []
        """The open markets, in the order they opened (their ``index``)."""
        self.resolved: list[SimMarket] = []
        """The resolved markets, in the order they resolved (their books let go)."""
        self.by_asset: dict[str, SimMarket] = {}
        """The open markets by token id."""
        self.by_condition: dict[str, SimMarket] = {}
        """Every market, open or resolved, by condition id."""
        self.by_slug: dict[str, SimMarket] = {}
        """Every market, open or resolved, by slug."""
        self._levels = levels
        # The flow draws a market in proportion to its activity from fixed slots: a market that resolves
        # leaves its slot to the one that opens in its place, so drawing, resolving and opening are each
        # O(log n) (polyfeed.sim.weights), whatever the number of markets.
        self._slots: list[SimMarket] = []
        self._slot_of: dict[str, int] = {}
        self._weights = Weights()
        for index in range(markets):
            # Most open with a prior trade ("0.500" in their books); every fifth, the first among them,
            # has never traded and hashes "" (spec 7.3), so an initial dump always holds both kinds, at a
            # place a test can name.
            self._open(self._new_market(index, traded=index % 5 != 0))
        self.account = SimAccount(random.Random(seed + 2))
        """The simulated account (credentials :data:`polyfeed.sim.account.SIM_CREDENTIALS`)."""

    # -- set-up ---------------------------------------------------------------------------------------

    def _token_id(self) -> str:
        return str(self.rng.randrange(10**76, 10**77))

    def _new_market(self, index: int, *, traded: bool) -> SimMarket:
        """A market whose book opens around a fair value (drawn on first reading, :class:`OpeningBook`);
        ``traded``: it has traded before (the exchange's first markets), otherwise it never has and hashes
        ``"last_trade_price":""`` (spec 7.3, a new market's capture)."""
        rng = self.rng
        fair = rng.randrange(1500, 8500)
        activity = rng.lognormvariate(0, 1)
        market = SimMarket(
            index=index,
            condition_id="0x" + f"{rng.getrandbits(256):064x}",
            yes=self._token_id(),
            no=self._token_id(),
            question=f"Simulated market {index}: will it happen?",
            slug=f"sim-market-{index}",
            fair_key=fair,
            activity=activity,
            volume=round(activity * 25_000, 2) if traded else 0.0,
        )
        tick = market.tick_key
        best_bid = (fair // tick) * tick
        best_ask = best_bid + tick * rng.randrange(1, 4)
        market.opening = OpeningBook(rng.getrandbits(64), best_bid, best_ask, tick, self._levels)
        if traded:
            market.last_trade_price = price_text((best_bid + best_ask) // 2 // tick * tick)
            market.last_trade_side = rng.choice(("BUY", "SELL"))
        return market

    def _open(self, market: SimMarket, slot: int | None = None) -> None:
        """List a new market: at the end of :attr:`markets`, in a slot of its own or a resolved one's."""
        self.markets.append(market)
        self.by_asset[market.yes] = market
        self.by_asset[market.no] = market
        self.by_condition[market.condition_id] = market
        self.by_slug[market.slug] = market
        self.lifetimes.opened(market, self.now_ms)
        if slot is None:
            slot = len(self._slots)
            self._slots.append(market)
            self._weights.append(_weight(market))
        else:
            self._slots[slot] = market
            self._weights.set(slot, _weight(market))
        self._slot_of[market.condition_id] = slot

    # -- reading --------------------------------------------------------------------------------------

    def add_market(self) -> list[Outbound]:
        """A new market opens, never traded: its books start, and ``new_market`` is broadcast (spec 4.6)."""
        market = self._new_market(len(self.markets) + len(self.resolved), traded=False)
        self._open(market)
        return [Outbound(market.new_market_notice(str(self.now_ms)), (), channel="broadcast")]

    def resolve_market(self, market: SimMarket) -> list[Outbound]:
        """A market resolves: its flow and books stop (REST answers 404 for its tokens, spec 8.1), the
        account's orders in it are cancelled, and ``market_resolved`` is broadcast (spec 4.7); then a
        new market opens in its place (``new_market``), so the number of markets stays the same.

        Raises:
            ValueError: the market is not open (it resolved already).
        """
        if not self._is_open(market):
            raise ValueError(f"{market.slug} is not open: it resolved already")
        # markets stay in index order: the market's place is found by bisection, not by a scan
        del self.markets[bisect_left(self.markets, market.index, key=_index)]
        self.resolved.append(market)
        market.resolved_at_ms = self.now_ms
        del self.by_asset[market.yes], self.by_asset[market.no]
        out = [self._user(self.account.cancel(o, self.now_ms)) for o in self.account.orders_in(market)]
        out.append(Outbound(market.resolved_notice(str(self.now_ms)), (), channel="broadcast"))
        market.close_book()
        replacement = self._new_market(len(self.markets) + len(self.resolved), traded=False)
        self._open(replacement, self._slot_of.pop(market.condition_id))
        out.append(Outbound(replacement.new_market_notice(str(self.now_ms)), (), channel="broadcast"))
        return out

    def asset_ids(self) -> list[str]:
        """Every token id, YES then NO for each market."""
        return [a for m in self.markets for a in (m.yes, m.no)]

    def book(self, asset_id: str, *, initial: bool = False) -> Book:
        """The book of a token now, as the venue sends it: the initial-dump shape (with ``tick_size``
        and ``last_trade_price``) or the REST ``/book`` shape (with the metadata too). Its
        ``last_trade_price`` is the book's 3-decimal text (``"0.490"``, spec 7.3), ``""`` if the market
        never traded, and its hash is the stream's own (:meth:`SimMarket.hash`, from each level's text
        serialised once: a whole universe's books are served in seconds; the tests hold it equal to
        :func:`polyfeed.sim.bookhash.book_hash`).

        Raises:
            KeyError: an unknown token id.
        """
        market = self.by_asset[asset_id]
        ts = str(self.now_ms)
        bids, asks = market.wire_levels(asset_id)
        book = Book(
            market=market.condition_id,
            asset_id=asset_id,
            timestamp=ts,
            hash=market.hash(asset_id, ts),
            bids=bids,
            asks=asks,
            tick_size=market.tick,
            last_trade_price=market.book_trade_price,
        )
        if initial:
            return book
        return msgspec.structs.replace(book, min_order_size=market.min_order_size, neg_risk=market.neg_risk)

    # -- order flow -----------------------------------------------------------------------------------

    def step(self, elapsed_ms: int = 1) -> list[Outbound]:
        """Advance the clock and run one order-flow event in one market; returns what the venue sends."""
        self.now_ms += max(1, elapsed_ms)
        out: list[Outbound] = []
        due = self.lifetimes.next_due_ms()
        if due is not None and due <= self.now_ms:
            for ended in self.lifetimes.due(self.now_ms, self._is_open):
                out.extend(self.resolve_market(ended))
        rng = self.rng
        market = self._slots[self._weights.pick(rng.random())]  # O(log n) (polyfeed.sim.weights)
        market.fair_key = min(
            SCALE - 150, max(150, market.fair_key + rng.choice((-1, 0, 0, 1)) * market.tick_key)
        )
        roll = rng.random()
        if roll < 0.03:
            out.extend(self._account_places(market))
        elif roll < 0.04:
            out.extend(self._account_cancels())
        elif roll < 0.12:
            out.extend(self._marketable(market, by_account=rng.random() < 0.1))
        elif roll < 0.145:  # about 3% of the events without a trade (spec 7.4, "not only trades")
            out.extend(self._quiet_group(market))
        elif roll < 0.44:
            out.extend(self._changes(market, [self._cancel(market)]))
        else:
            out.extend(self._changes(market, [self._limit(market)]))
        out.extend(self._maybe_tick_change(market))
        out.extend(self._user(trade) for trade in self.account.due(self.now_ms))
        return out

    def _is_open(self, market: SimMarket) -> bool:
        return self.by_asset.get(market.yes) is market  # O(1), unlike ``in self.markets``

    def run(self, events: int, *, elapsed_ms: int = 1) -> Iterable[Outbound]:
        """``events`` steps, flattened."""
        for _ in range(events):
            yield from self.step(elapsed_ms)

    @staticmethod
    def _user(message: Order | Trade) -> Outbound:
        return Outbound(message, (), channel="user", market=message.market)

    def _account_places(self, market: SimMarket) -> list[Outbound]:
        """The account joins the best bid or ask, so the flow fills it soon."""
        rng = self.rng
        buy = rng.random() < 0.5
        levels = market.bids if buy else market.asks
        if not levels:
            return self._changes(market, [self._limit(market)])
        key = market.best_bid_key if buy else market.best_ask_key
        size = Decimal(rng.randrange(5, 60))
        market.set(buy, key, levels[key] + size)
        placed = self.account.place(market, buy, key, size, self.now_ms)
        return [*self._changes(market, [(buy, key, levels[key])]), self._user(placed)]

    def _account_cancels(self) -> list[Outbound]:
        order = self.account.draw_open_order(self.rng)
        if order is None:
            return []
        market = order.market
        levels = market.bids if order.yes_buy else market.asks
        remaining = max(Decimal(0), levels[order.key] - order.remaining)
        market.set(order.yes_buy, order.key, remaining)
        cancelled = self.account.cancel(order, self.now_ms)
        return [*self._changes(market, [(order.yes_buy, order.key, remaining)]), self._user(cancelled)]

    def _limit(self, market: SimMarket) -> Change | None:
        """Someone adds to a level near the fair value, never crossing; ``None`` off the price range."""
        rng = self.rng
        tick = market.tick_key
        buy = rng.random() < 0.5
        offset = int(rng.expovariate(0.25)) * tick
        if buy:
            key = min(market.best_ask_key - tick, (market.fair_key // tick) * tick - offset)
        else:
            key = max(market.best_bid_key + tick, -(-market.fair_key // tick) * tick + offset)
        if not tick <= key <= SCALE - tick:
            return None
        levels = market.bids if buy else market.asks
        market.set(buy, key, levels.get(key, Decimal(0)) + opening_size(self.rng))
        return (buy, key, levels[key])

    def _cancel(self, market: SimMarket) -> Change | None:
        """Someone else cancels all or part of a level (never the account's size); a limit order instead
        when the side is thin or the level is all the account's."""
        rng = self.rng
        buy = rng.random() < 0.5
        levels = market.bids if buy else market.asks
        if len(levels) <= 3:
            return self._limit(market)
        key = rng.choice(list(levels))
        size = levels[key]
        cut = (
            size
            if rng.random() < 0.6
            else (size * Decimal(rng.randrange(10, 90)) / 100).quantize(Decimal("0.01"))
        )
        cut = min(cut, size - self.account.resting(market, buy, key))  # others cancel, never the account
        if cut <= 0:
            return self._limit(market)
        remaining = max(Decimal(0), size - cut)
        market.set(buy, key, remaining)
        return (buy, key, remaining)

    def _quiet_group(self, market: SimMarket) -> list[Outbound]:
        """Two or three limit orders or cancels at one timestamp, no trade: every message carries the
        group's final hash and top of book (spec 7.4, last bullets), so only the group's end verifies."""
        rng = self.rng
        changes = [
            self._cancel(market) if rng.random() < 0.4 else self._limit(market)
            for _ in range(rng.choice((2, 3)))
        ]
        groups = [[c] for c in changes if c is not None]
        return self._group(market, groups, str(self.now_ms)) if groups else []

    def _changes(self, market: SimMarket, changes: list[Change | None]) -> list[Outbound]:
        """One ``price_change`` for changes already made (nothing if there are none)."""
        real = [c for c in changes if c is not None]
        return self._group(market, [real], str(self.now_ms)) if real else []

    def _marketable(self, market: SimMarket, *, by_account: bool = False) -> list[Outbound]:
        """A crossing order: the burst, the post-trade books, the print (spec 4.8), and what the account
        hears if it was the taker or one of the makers."""
        rng = self.rng
        buy = rng.random() < 0.5
        opposite = market.asks if buy else market.bids
        if not opposite:
            return self._changes(market, [self._limit(market)])
        if by_account and any(o.yes_buy != buy for o in self.account.orders_in(market)):
            by_account = False  # the account never trades against itself
        keys = market.ask_side.keys if buy else market.bid_side.keys
        reach = min(len(keys), 1 + int(rng.expovariate(1.0)))
        ordered = keys[:reach] if buy else keys[::-1][:reach]  # best first
        limit = ordered[-1]
        reached = sum((opposite[k] for k in ordered), Decimal(0))
        wanted = max(Decimal(1), (reached * Decimal(rng.randrange(60, 130)) / 100).quantize(Decimal("0.01")))
        if by_account:  # the account's orders fill or are killed: nothing of them rests
            wanted = min(wanted, reached)
        own = market.bids if buy else market.asks
        # 1. the crossing order shows at its limit price, the book transiently crossed
        market.set(buy, limit, own.get(limit, Decimal(0)) + wanted)
        changes: list[list[Change]] = [[(buy, limit, own[limit])]]
        # 2. it takes the opposite levels, best first
        left = wanted
        last_key = limit
        user: list[Outbound] = []
        makers: list[tuple[int, Decimal]] = []
        for key in ordered:
            if left <= 0:
                break
            take = min(left, opposite[key])
            left -= take
            last_key = key
            makers.append((key, take))
            mine = min(take, self.account.resting(market, not buy, key))
            if mine > 0 and not by_account:  # the account rests at the front of its level's queue
                fills = self.account.fill_as_maker(
                    market, not buy, key, mine, taker_buy=buy, taker_price=price_text(key), now_ms=self.now_ms
                )
                user.extend(self._user(m) for m in fills)
            remaining = opposite[key] - take
            market.set(not buy, key, remaining)
            changes.append([(not buy, key, remaining)])
        # 3. what the crossing order did not fill stays on its own level
        resting = max(Decimal(0), own[limit] - (wanted - left))
        market.set(buy, limit, resting)
        changes.append([(buy, limit, resting)])
        # the print's text is trimmed ("0.49"); books and hashes from now on use "0.490" (spec 7.3)
        market.last_trade_price = price_text(last_key)
        market.last_trade_side = "BUY" if buy else "SELL"
        market.volume = round(market.volume + float(wanted - left) * last_key / SCALE, 2)
        if by_account:
            user.append(
                self._user(
                    self.account.fill_as_taker(
                        market,
                        buy=buy,
                        size=wanted - left,
                        price=market.last_trade_price,
                        makers=makers,
                        now_ms=self.now_ms,
                    )
                )
            )
        return self._burst(market, changes, wanted - left, buy) + user

    def _burst(
        self, market: SimMarket, changes: list[list[Change]], filled: Decimal, buy: bool
    ) -> list[Outbound]:
        """A trade's messages: the burst's price changes and a post-trade ``book`` per token, all with
        the final hash (computed with the new trade price), then the print (spec 4.8, 12)."""
        ts = str(self.now_ms)
        claims = market.claims(ts)
        out = [Outbound(m, (market.yes, market.no)) for m in market.price_changes(changes, ts, claims)]
        for asset in (market.yes, market.no):
            bids, asks = market.wire_levels(asset)
            # the post-trade shape: no tick_size or last_trade_price fields (spec 4.1)
            snapshot = Book(
                market=market.condition_id,
                asset_id=asset,
                timestamp=ts,
                hash=claims[asset][0],
                bids=bids,
                asks=asks,
            )
            out.append(Outbound(snapshot, (asset,)))
        print_ = LastTradePrice(
            asset_id=market.yes,
            market=market.condition_id,
            price=market.last_trade_price,
            size=size_text(filled),
            side=market.last_trade_side,
            fee_rate_bps="0",
            timestamp=ts,
            transaction_hash="0x" + f"{self.rng.getrandbits(256):064x}",
        )
        out.append(Outbound(print_, (market.yes, market.no)))
        return out

    def _group(self, market: SimMarket, groups: list[list[Change]], ts: str) -> list[Outbound]:
        """``price_change`` messages sharing one timestamp, one per group, for changes already made."""
        messages = market.price_changes(groups, ts, market.claims(ts))
        return [Outbound(m, (market.yes, market.no)) for m in messages]

    def _maybe_tick_change(self, market: SimMarket) -> list[Outbound]:
        return [Outbound(m, (m.asset_id,)) for m in market.retick(str(self.now_ms))]
