"""The local exchange's engine: seeded order flow over many binary markets, as the venue's messages.

Sans-I/O: :meth:`Exchange.step` advances a simulated clock and returns the messages the venue would
send, each with the token ids it concerns (so a server can route it the way the venue does: a message
goes to every connection subscribed to any of its assets, mirrored entries included, spec 11.10).

Each market has a YES and a NO token over one unified book, kept here in YES terms: a NO bid at
``1 - p`` *is* a YES ask at ``p`` (spec 4.2, "mirrored entries"). Both tokens' books are
:class:`polyfeed.book.OrderBook` instances fed from the same changes, so every hash the exchange sends
is computed by the same code that verifies it on the client side, over the exact wire text.

What a step can do (spec section 12):

- a limit order or a cancel near the market's drifting fair value: one ``price_change`` with an entry
  for each token, each with its hash and top of book after the change;
- a marketable order: a trade burst, several ``price_change`` messages with one timestamp (the crossing
  level appears, the consumed levels go, the rest of the crossing order stays), all carrying the final
  hash and top of book; then a post-trade ``book`` for each token (no ``tick_size`` or
  ``last_trade_price`` fields, but hashed with the new trade price); then ``last_trade_price``;
- a ``tick_size_change`` (0.01 -> 0.001) when the top of book passes 0.96 or 0.04, and back.

Same seed, same stream: the engine draws from one ``random.Random(seed)`` and its own clock.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from polyfeed.book import OrderBook
from polyfeed.sim.account import SimAccount
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.wire import (
    Book,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    Order,
    PriceChange,
    PriceChangeEntry,
    PriceLevel,
    TickSizeChange,
    Trade,
)

__all__ = ["Exchange", "Outbound", "SimMarket"]

_TICK_KEYS = {"0.01": 100, "0.001": 10}


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message the venue would send, and the token ids it concerns."""

    message: Book | PriceChange | TickSizeChange | LastTradePrice | Order | Trade | NewMarket | MarketResolved
    assets: tuple[str, ...]
    channel: str = "market"
    """``market`` (route by ``assets``), ``user`` (the account's orders and trades, route by ``market``)
    or ``broadcast`` (``new_market`` / ``market_resolved``: every custom-feature connection, spec 11.10)."""
    market: str = ""


@dataclass
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
    bids: dict[int, Decimal] = field(default_factory=dict)  # YES bids: key -> size
    asks: dict[int, Decimal] = field(default_factory=dict)  # YES asks
    last_trade_price: str = "0.5"
    books: dict[str, OrderBook] = field(default_factory=dict)

    @property
    def tick_key(self) -> int:
        return _TICK_KEYS[self.tick]

    def complement(self, asset_id: str) -> str:
        return self.no if asset_id == self.yes else self.yes


class Exchange:
    """Markets, their books, and a seeded order-flow model.

    Args:
        markets: how many binary markets.
        seed: the random seed; the same seed gives the same stream.
        start_ms: the simulated clock's start (epoch ms).
        levels: the range of levels a side starts with (10-75 a side: books of 20-150 levels).
    """

    def __init__(
        self,
        markets: int = 10,
        *,
        seed: int = 1,
        start_ms: int = 1_790_000_000_000,
        levels: tuple[int, int] = (10, 75),
    ) -> None:
        if markets < 1:
            raise ValueError("an exchange needs at least one market")
        self.rng = random.Random(seed)
        self.now_ms = start_ms
        self.markets: list[SimMarket] = []
        self.by_asset: dict[str, SimMarket] = {}
        for index in range(markets):
            self._add_market(index, levels)
        self._levels = levels
        self.resolved: list[SimMarket] = []
        self._reweigh()
        self.account = SimAccount(random.Random(seed + 2))
        """The simulated account (credentials :data:`polyfeed.sim.account.SIM_CREDENTIALS`)."""

    # -- set-up ---------------------------------------------------------------------------------------

    def _token_id(self) -> str:
        return str(self.rng.randrange(10**76, 10**77))

    def _add_market(self, index: int, levels: tuple[int, int]) -> SimMarket:
        rng = self.rng
        fair = rng.randrange(1500, 8500)
        market = SimMarket(
            index=index,
            condition_id="0x" + f"{rng.getrandbits(256):064x}",
            yes=self._token_id(),
            no=self._token_id(),
            question=f"Simulated market {index}: will it happen?",
            slug=f"sim-market-{index}",
            fair_key=fair,
            activity=rng.lognormvariate(0, 1),
        )
        tick = market.tick_key
        depth_bids = rng.randrange(levels[0], levels[1] + 1)
        depth_asks = rng.randrange(levels[0], levels[1] + 1)
        best_bid = (fair // tick) * tick
        best_ask = best_bid + tick * rng.randrange(1, 4)
        for n in range(depth_bids):
            key = best_bid - n * tick
            if key >= tick:
                market.bids[key] = self._size()
        for n in range(depth_asks):
            key = best_ask + n * tick
            if key <= SCALE - tick:
                market.asks[key] = self._size()
        market.last_trade_price = price_text((best_bid + best_ask) // 2 // tick * tick)
        for asset in (market.yes, market.no):
            book = OrderBook(
                asset,
                market=market.condition_id,
                tick_size=market.tick,
                min_order_size=market.min_order_size,
                neg_risk=market.neg_risk,
                verify_hash=False,
            )
            market.books[asset] = book
        self._resnapshot(market)
        self.markets.append(market)
        self.by_asset[market.yes] = market
        self.by_asset[market.no] = market
        return market

    def _size(self) -> Decimal:
        rng = self.rng
        whole = int(rng.paretovariate(1.2) * 20)
        return (
            Decimal(whole) + Decimal(rng.randrange(0, 100)) / 100
            if rng.random() < 0.5
            else Decimal(whole + 5)
        )

    def _resnapshot(self, market: SimMarket) -> None:
        """Reload both tokens' books from the unified book (set-up, tick changes)."""
        for asset in (market.yes, market.no):
            bids, asks = self._wire_levels(market, asset)
            market.books[asset].apply(
                Book(
                    market=market.condition_id,
                    asset_id=asset,
                    timestamp=str(self.now_ms),
                    bids=bids,
                    asks=asks,
                    tick_size=market.tick,
                    last_trade_price=market.last_trade_price,
                )
            )

    def _wire_levels(self, market: SimMarket, asset: str) -> tuple[list[PriceLevel], list[PriceLevel]]:
        if asset == market.yes:
            bids = [(k, s) for k, s in sorted(market.bids.items())]
            asks = [(k, s) for k, s in sorted(market.asks.items(), reverse=True)]
        else:  # NO bids are YES asks at 1 - p, NO asks are YES bids at 1 - p
            bids = [(SCALE - k, s) for k, s in sorted(market.asks.items(), reverse=True)]
            asks = [(SCALE - k, s) for k, s in sorted(market.bids.items())]
        return (
            [PriceLevel(price_text(k), size_text(s)) for k, s in bids],
            [PriceLevel(price_text(k), size_text(s)) for k, s in asks],
        )

    # -- reading --------------------------------------------------------------------------------------

    def _reweigh(self) -> None:
        self._cum_weights = list(itertools.accumulate(m.activity for m in self.markets))

    def add_market(self) -> list[Outbound]:
        """A new market opens: its books start, and ``new_market`` is broadcast (spec 4.6)."""
        market = self._add_market(len(self.markets) + len(self.resolved), self._levels)
        self._reweigh()
        message = NewMarket(
            market=market.condition_id,
            timestamp=str(self.now_ms),
            id=str(100_000 + market.index),
            question=market.question,
            slug=market.slug,
            assets_ids=[market.yes, market.no],
            outcomes=["Yes", "No"],
            order_price_min_tick_size=market.tick,
        )
        return [Outbound(message, (), channel="broadcast")]

    def resolve_market(self, market: SimMarket) -> list[Outbound]:
        """A market resolves: its flow and books stop (REST answers 404 for its tokens, spec 8.1), the
        account's orders in it are cancelled, and ``market_resolved`` is broadcast (spec 4.7)."""
        if len(self.markets) <= 1:
            return []
        self.markets.remove(market)
        self.resolved.append(market)
        self._reweigh()
        del self.by_asset[market.yes], self.by_asset[market.no]
        out = [
            self._user(self.account.cancel(o, self.now_ms))
            for o in self.account.open_orders()
            if o.market is market
        ]
        winner, outcome = (market.yes, "Yes") if market.fair_key >= SCALE // 2 else (market.no, "No")
        out.append(
            Outbound(
                MarketResolved(
                    market=market.condition_id,
                    timestamp=str(self.now_ms),
                    id=str(100_000 + market.index),
                    assets_ids=[market.yes, market.no],
                    winning_asset_id=winner,
                    winning_outcome=outcome,
                    question=market.question,
                    slug=market.slug,
                    outcomes=["Yes", "No"],
                ),
                (),
                channel="broadcast",
            )
        )
        return out

    def asset_ids(self) -> list[str]:
        """Every token id, YES then NO for each market."""
        return [a for m in self.markets for a in (m.yes, m.no)]

    def book(self, asset_id: str, *, initial: bool = False) -> Book:
        """The book of a token now, as the venue sends it: the initial-dump shape (with ``tick_size``
        and ``last_trade_price``) or the REST ``/book`` shape (with the metadata too).

        Raises:
            KeyError: an unknown token id.
        """
        market = self.by_asset[asset_id]
        full = market.books[asset_id].to_snapshot(timestamp=str(self.now_ms))
        if initial:
            return Book(
                market=full.market,
                asset_id=full.asset_id,
                timestamp=full.timestamp,
                hash=full.hash,
                bids=full.bids,
                asks=full.asks,
                tick_size=full.tick_size,
                last_trade_price=full.last_trade_price,
            )
        return full

    # -- order flow -----------------------------------------------------------------------------------

    def step(self, elapsed_ms: int = 1) -> list[Outbound]:
        """Advance the clock and run one order-flow event in one market; returns what the venue sends."""
        self.now_ms += max(1, elapsed_ms)
        rng = self.rng
        market = rng.choices(self.markets, cum_weights=self._cum_weights)[0]  # O(log n), not O(n)
        market.fair_key = min(
            SCALE - 150, max(150, market.fair_key + rng.choice((-1, 0, 0, 1)) * market.tick_key)
        )
        roll = rng.random()
        if roll < 0.0002:
            out = self.add_market()
        elif roll < 0.0004:
            out = self.resolve_market(market)
        elif roll < 0.03:
            out = self._account_places(market)
        elif roll < 0.04:
            out = self._account_cancels()
        elif roll < 0.12:
            out = self._marketable(market, by_account=rng.random() < 0.1)
        elif roll < 0.44:
            out = self._cancel(market)
        else:
            out = self._limit(market)
        if market in self.markets:
            out.extend(self._maybe_tick_change(market))
        out.extend(self._user(trade) for trade in self.account.due(self.now_ms))
        return out

    @staticmethod
    def _user(message: Order | Trade) -> Outbound:
        return Outbound(message, (), channel="user", market=message.market)

    def _account_places(self, market: SimMarket) -> list[Outbound]:
        """The account joins the best bid or ask, so the flow fills it soon."""
        rng = self.rng
        buy = rng.random() < 0.5
        levels = market.bids if buy else market.asks
        if not levels:
            return self._limit(market)
        key = max(levels) if buy else min(levels)
        size = Decimal(rng.randrange(5, 60))
        levels[key] += size
        placed = self.account.place(market, buy, key, size, self.now_ms)
        return [self._change(market, [(buy, key, levels[key])]), self._user(placed)]

    def _account_cancels(self) -> list[Outbound]:
        live = self.account.open_orders()
        if not live:
            return []
        order = self.rng.choice(live)
        market = order.market
        levels = market.bids if order.yes_buy else market.asks
        remaining = levels[order.key] - order.remaining
        if remaining > 0:
            levels[order.key] = remaining
        else:
            del levels[order.key]
            remaining = Decimal(0)
        cancelled = self.account.cancel(order, self.now_ms)
        return [self._change(market, [(order.yes_buy, order.key, remaining)]), self._user(cancelled)]

    def run(self, events: int, *, elapsed_ms: int = 1) -> Iterable[Outbound]:
        """``events`` steps, flattened."""
        for _ in range(events):
            yield from self.step(elapsed_ms)

    def _limit(self, market: SimMarket) -> list[Outbound]:
        rng = self.rng
        tick = market.tick_key
        best_bid = max(market.bids, default=0)
        best_ask = min(market.asks, default=SCALE)
        buy = rng.random() < 0.5
        offset = int(rng.expovariate(0.25)) * tick
        if buy:
            key = min(best_ask - tick, (market.fair_key // tick) * tick - offset)
        else:
            key = max(best_bid + tick, -(-market.fair_key // tick) * tick + offset)
        if not tick <= key <= SCALE - tick:
            return []
        levels = market.bids if buy else market.asks
        levels[key] = levels.get(key, Decimal(0)) + self._size()
        return [self._change(market, [(buy, key, levels[key])])]

    def _cancel(self, market: SimMarket) -> list[Outbound]:
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
        remaining = size - cut
        if remaining <= 0:
            del levels[key]
            remaining = Decimal(0)
        else:
            levels[key] = remaining
        return [self._change(market, [(buy, key, remaining)])]

    def _marketable(self, market: SimMarket, *, by_account: bool = False) -> list[Outbound]:
        """A crossing order: the burst, the post-trade books, the print (spec 4.8), and what the account
        hears if it was the taker or one of the makers."""
        rng = self.rng
        buy = rng.random() < 0.5
        opposite = market.asks if buy else market.bids
        if not opposite:
            return self._limit(market)
        if by_account and any(o.market is market and o.yes_buy != buy for o in self.account.open_orders()):
            by_account = False  # the account never trades against itself
        ordered = sorted(opposite, reverse=not buy)
        reach = min(len(ordered), 1 + int(rng.expovariate(1.0)))
        limit = ordered[reach - 1]
        wanted = (
            sum((opposite[k] for k in ordered[:reach]), Decimal(0)) * Decimal(rng.randrange(60, 130)) / 100
        )
        wanted = max(Decimal(1), wanted.quantize(Decimal("0.01")))
        if by_account:  # the account's orders fill or are killed: nothing of them rests
            wanted = min(wanted, sum((opposite[k] for k in ordered[:reach]), Decimal(0)))
        own = market.bids if buy else market.asks
        ts = str(self.now_ms)
        # 1. the crossing order shows at its limit price, the book transiently crossed
        own[limit] = own.get(limit, Decimal(0)) + wanted
        changes: list[list[tuple[bool, int, Decimal]]] = [[(buy, limit, own[limit])]]
        left = wanted
        last_key = limit
        user: list[Outbound] = []
        makers: list[tuple[int, Decimal]] = []
        for key in ordered[:reach]:
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
            if take == opposite[key]:
                del opposite[key]
                changes.append([(not buy, key, Decimal(0))])
            else:
                opposite[key] -= take
                changes.append([(not buy, key, opposite[key])])
        # 3. what the crossing order did not fill stays on its own level
        resting = own[limit] - (wanted - left)
        if resting > 0:
            own[limit] = resting
        else:
            del own[limit]
            resting = Decimal(0)
        changes.append([(buy, limit, resting)])
        market.last_trade_price = price_text(last_key)
        for asset in (market.yes, market.no):
            market.books[asset].apply(
                LastTradePrice(
                    asset_id=asset,
                    market=market.condition_id,
                    price=market.last_trade_price,
                    size="0",
                    side="BUY",
                    timestamp=ts,
                )
            )
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
        return self._burst(market, changes, ts, wanted - left, buy) + user

    def _burst(
        self,
        market: SimMarket,
        changes: list[list[tuple[bool, int, Decimal]]],
        ts: str,
        filled: Decimal,
        buy: bool,
    ) -> list[Outbound]:
        for group in changes:
            self._apply_to_books(market, group, ts)
        finals = {a: self._entry_claims(market, a, ts) for a in (market.yes, market.no)}
        assets = (market.yes, market.no)
        out = []
        for group in changes:
            entries = []
            for is_buy, key, size in group:
                for asset, side_buy, price_key_ in self._legs(market, is_buy, key):
                    hash_, bid, ask = finals[asset]
                    entries.append(
                        PriceChangeEntry(
                            asset_id=asset,
                            price=price_text(price_key_),
                            size=size_text(size),
                            side="BUY" if side_buy else "SELL",
                            hash=hash_,
                            best_bid=bid,
                            best_ask=ask,
                        )
                    )
            out.append(
                Outbound(PriceChange(market=market.condition_id, timestamp=ts, price_changes=entries), assets)
            )
        for asset in assets:
            snap = market.books[asset].to_snapshot(timestamp=ts)
            out.append(
                Outbound(
                    Book(
                        market=snap.market,
                        asset_id=asset,
                        timestamp=ts,
                        hash=snap.hash,
                        bids=snap.bids,
                        asks=snap.asks,
                    ),
                    (asset,),
                )
            )
        out.append(
            Outbound(
                LastTradePrice(
                    asset_id=market.yes,
                    market=market.condition_id,
                    price=market.last_trade_price,
                    size=size_text(filled),
                    side="BUY" if buy else "SELL",
                    fee_rate_bps="0",
                    timestamp=ts,
                    transaction_hash="0x" + f"{self.rng.getrandbits(256):064x}",
                ),
                assets,
            )
        )
        return out

    def _legs(self, market: SimMarket, buy: bool, key: int) -> list[tuple[str, bool, int]]:
        """A YES-terms change as the two entries the venue sends: the YES leg, then the NO mirror."""
        return [(market.yes, buy, key), (market.no, not buy, SCALE - key)]

    @staticmethod
    def _apply_leg(market: SimMarket, asset: str, buy: bool, key: int, size: Decimal, ts: str) -> None:
        """One leg of a change applied to that token's book, through the same code clients run."""
        entry = PriceChangeEntry(
            asset_id=asset, price=price_text(key), size=size_text(size), side="BUY" if buy else "SELL"
        )
        market.books[asset].apply_price_change(
            PriceChange(market=market.condition_id, timestamp=ts, price_changes=[entry])
        )

    def _apply_to_books(self, market: SimMarket, group: list[tuple[bool, int, Decimal]], ts: str) -> None:
        for is_buy, key, size in group:
            for asset, side_buy, k in self._legs(market, is_buy, key):
                self._apply_leg(market, asset, side_buy, k, size, ts)

    def _entry_claims(self, market: SimMarket, asset: str, ts: str) -> tuple[str, str, str]:
        book = market.books[asset]
        bid, ask = book.best_bid, book.best_ask
        return (
            book.compute_hash(ts),
            price_text(int(bid.price * SCALE)) if bid else "0",
            price_text(int(ask.price * SCALE)) if ask else "1",
        )

    def _change(self, market: SimMarket, group: list[tuple[bool, int, Decimal]]) -> Outbound:
        """One non-trading change: entries hashed after each one, as the venue does (spec 7.4)."""
        ts = str(self.now_ms)
        entries = []
        for is_buy, key, size in group:
            for asset, side_buy, k in self._legs(market, is_buy, key):
                self._apply_leg(market, asset, side_buy, k, size, ts)
                hash_, bid, ask = self._entry_claims(market, asset, ts)
                entries.append(
                    PriceChangeEntry(
                        asset_id=asset,
                        price=price_text(k),
                        size=size_text(size),
                        side="BUY" if side_buy else "SELL",
                        hash=hash_,
                        best_bid=bid,
                        best_ask=ask,
                    )
                )
        return Outbound(
            PriceChange(market=market.condition_id, timestamp=ts, price_changes=entries),
            (market.yes, market.no),
        )

    def _maybe_tick_change(self, market: SimMarket) -> list[Outbound]:
        """0.01 -> 0.001 when the top of book passes 0.96 or 0.04 (spec 4.3), and back inside 0.10-0.90."""
        best_bid = max(market.bids, default=0)
        best_ask = min(market.asks, default=SCALE)
        extreme = best_ask > 9600 or best_bid < 400
        if market.tick == "0.01" and extreme:
            new = "0.001"
        elif market.tick == "0.001" and best_bid > 1000 and best_ask < 9000 and self._on_grid(market, 100):
            new = "0.01"
        else:
            return []
        old = market.tick
        market.tick = new
        ts = str(self.now_ms)
        out = []
        for asset in (market.yes, market.no):
            message = TickSizeChange(
                asset_id=asset, market=market.condition_id, old_tick_size=old, new_tick_size=new, timestamp=ts
            )
            market.books[asset].apply(message)
            out.append(Outbound(message, (asset,)))
        return out

    @staticmethod
    def _on_grid(market: SimMarket, tick: int) -> bool:
        return all(k % tick == 0 for k in market.bids) and all(k % tick == 0 for k in market.asks)
