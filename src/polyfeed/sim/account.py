"""The local exchange's simulated account: its orders in the flow, its fills, its trades' lifecycle.

The account rests limit orders near the top of book (so that the flow fills them), cancels some, and
now and then sends a marketable order of its own. What the venue would send it on the user channel
(spec 5) comes out as :class:`polyfeed.wire.Order` and :class:`polyfeed.wire.Trade` messages:

- ``order``: ``PLACEMENT`` (LIVE), ``UPDATE`` at each fill (``size_matched`` cumulative, MATCHED when
  full), ``CANCELLATION`` (CANCELED);
- ``trade``: ``MATCHED`` at the fill, then the same trade id again as ``MINED`` and ``CONFIRMED``, or
  through ``RETRYING`` (then CONFIRMED), or ``FAILED``, each a new message, as the venue resends them.

When the account is the maker, the trade's top-level ``asset_id`` / ``side`` / ``price`` are the
taker's leg and the account's own fill is its entry in ``maker_orders``, on its own token: an order on
the NO token fills at ``1 - p`` of the YES-terms price (spec 5.2).
"""

from __future__ import annotations

import base64
import heapq
import random
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from polyfeed.sim.market import SimMarket
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.wire import Credentials, MakerOrder, Order, Trade

__all__ = ["SIM_ADDRESS", "SIM_CREDENTIALS", "AccountOrder", "SimAccount"]

SIM_CREDENTIALS = Credentials(
    api_key="00000000-0000-4000-8000-00000000cafe",
    secret=base64.urlsafe_b64encode(b"polyfeed local exchange secret!!").decode(),
    passphrase="polyfeed-local-exchange",
)
"""The local exchange's account: these credentials open its user channel and sign its REST calls."""

SIM_ADDRESS = "0x00000000000000000000000000000000000CafE5"

_LIFECYCLE_MS = {"MINED": 2_000, "CONFIRMED": 5_000, "RETRYING": 3_000, "FAILED": 4_000}


def _placed(order: AccountOrder) -> int:
    return order.seq


@dataclass
class AccountOrder:
    """One of the account's orders, on one token; ``yes_buy`` / ``key`` place it in the YES-terms book."""

    id: str
    market: SimMarket
    asset_id: str
    side: str
    price: str
    original: Decimal
    yes_buy: bool
    key: int
    created_s: str
    matched: Decimal = Decimal(0)
    status: str = "LIVE"
    trades: list[str] = field(default_factory=list)
    seq: int = 0
    """Its place among the account's orders, in the order they were placed."""

    @property
    def remaining(self) -> Decimal:
        return self.original - self.matched


class SimAccount:
    """The simulated account's state and the user-channel messages it produces."""

    def __init__(self, rng: random.Random, credentials: Credentials = SIM_CREDENTIALS) -> None:
        self.rng = rng
        self.credentials = credentials
        self.orders: dict[str, AccountOrder] = {}
        """Every order ever placed, by id (the REST views read it)."""
        # The LIVE orders only, found without scanning: the flow asks about one market's orders, or one
        # level's, at every trade and cancel, and at the venue's scale (22,800 markets, most of them
        # rarely traded) the account's resting orders would otherwise make every event slower.
        self._live: list[AccountOrder] = []  # in no meaningful order; O(1) to draw from and remove from
        self._live_at: dict[str, int] = {}  # order id -> its place in _live
        self._by_market: dict[str, list[AccountOrder]] = {}  # condition id -> LIVE orders, oldest first
        self.trades: dict[str, Trade] = {}
        self._schedule: list[tuple[int, int, str, str]] = []
        self._seq = 0

    # -- reading --------------------------------------------------------------------------------------

    def resting(self, market: SimMarket, yes_buy: bool, key: int) -> Decimal:
        """The account's unfilled size at one YES-terms level (the flow never cancels it)."""
        return sum(
            (
                o.remaining
                for o in self._by_market.get(market.condition_id, ())
                if o.yes_buy == yes_buy and o.key == key
            ),
            Decimal(0),
        )

    def orders_in(self, market: SimMarket) -> list[AccountOrder]:
        """The account's LIVE orders in one market, oldest first (the front of their levels' queues)."""
        return list(self._by_market.get(market.condition_id, ()))

    def open_orders(self) -> list[AccountOrder]:
        """The account's LIVE orders, oldest first."""
        return sorted(self._live, key=_placed)

    def draw_open_order(self, rng: random.Random) -> AccountOrder | None:
        """One LIVE order drawn with ``rng``, ``None`` if there is none; O(1)."""
        return rng.choice(self._live) if self._live else None

    def _closed(self, order: AccountOrder) -> None:
        """Forget an order that is no longer LIVE from the indexes of LIVE orders."""
        place = self._live_at.pop(order.id, None)
        if place is None:
            return
        last = self._live.pop()
        if last is not order:  # the last order takes the closed one's place
            self._live[place] = last
            self._live_at[last.id] = place
        in_market = self._by_market[order.market.condition_id]
        in_market.remove(order)
        if not in_market:
            del self._by_market[order.market.condition_id]

    # -- events ---------------------------------------------------------------------------------------

    def place(self, market: SimMarket, yes_buy: bool, key: int, size: Decimal, now_ms: int) -> Order:
        """Rest an order; it is on the YES token or, half the time, the same interest on the NO token."""
        on_no = self.rng.random() < 0.5
        asset, side, price_key = (
            (market.no, "SELL" if yes_buy else "BUY", SCALE - key)
            if on_no
            else (market.yes, "BUY" if yes_buy else "SELL", key)
        )
        order = AccountOrder(
            id="0x" + f"{self.rng.getrandbits(256):064x}",
            market=market,
            asset_id=asset,
            side=side,
            price=price_text(price_key),
            original=size,
            yes_buy=yes_buy,
            key=key,
            created_s=str(now_ms // 1000),
            seq=len(self.orders),
        )
        self.orders[order.id] = order
        self._live_at[order.id] = len(self._live)
        self._live.append(order)
        self._by_market.setdefault(market.condition_id, []).append(order)
        return self._order_message(order, "PLACEMENT", now_ms)

    def cancel(self, order: AccountOrder, now_ms: int) -> Order:
        order.status = "CANCELED"
        self._closed(order)
        return self._order_message(order, "CANCELLATION", now_ms)

    def fill_as_maker(
        self,
        market: SimMarket,
        yes_buy: bool,
        key: int,
        amount: Decimal,
        *,
        taker_buy: bool,
        taker_price: str,
        now_ms: int,
    ) -> list[Order | Trade]:
        """Fill up to ``amount`` of the account's orders at one level (front of the queue)."""
        out: list[Order | Trade] = []
        for order in self.orders_in(market):  # oldest first: the front of the level's queue
            if amount <= 0:
                break
            if order.yes_buy != yes_buy or order.key != key:
                continue
            fill = min(order.remaining, amount)
            amount -= fill
            order.matched += fill
            if order.remaining == 0:
                order.status = "MATCHED"
                self._closed(order)
            trade_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            order.trades.append(trade_id)
            maker = MakerOrder(
                order_id=order.id,
                matched_amount=size_text(fill),
                price=order.price,
                asset_id=order.asset_id,
                owner=self.credentials.api_key,
                maker_address=SIM_ADDRESS,
                fee_rate_bps="0",
                outcome="Yes" if order.asset_id == market.yes else "No",
                side=order.side,
            )
            out.append(self._order_message(order, "UPDATE", now_ms))
            out.append(
                self._new_trade(
                    market,
                    trade_id,
                    side="BUY" if taker_buy else "SELL",
                    size=fill,
                    price=taker_price,
                    trader_side="MAKER",
                    maker_orders=[maker],
                    taker_order_id="0x" + f"{self.rng.getrandbits(256):064x}",
                    now_ms=now_ms,
                )
            )
        return out

    def fill_as_taker(
        self,
        market: SimMarket,
        *,
        buy: bool,
        size: Decimal,
        price: str,
        makers: list[tuple[int, Decimal]],
        now_ms: int,
    ) -> Trade:
        """The account's own marketable order on the YES token, filled against anonymous makers."""
        maker_orders = [
            MakerOrder(
                order_id="0x" + f"{self.rng.getrandbits(256):064x}",
                matched_amount=size_text(amount),
                price=price_text(key),
                asset_id=market.yes,
                owner=str(uuid.UUID(int=self.rng.getrandbits(128))),
                maker_address="0x" + f"{self.rng.getrandbits(160):040x}",
                fee_rate_bps="0",
                outcome="Yes",
                side="SELL" if buy else "BUY",
            )
            for key, amount in makers
        ]
        trade_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return self._new_trade(
            market,
            trade_id,
            side="BUY" if buy else "SELL",
            size=size,
            price=price,
            trader_side="TAKER",
            maker_orders=maker_orders,
            taker_order_id="0x" + f"{self.rng.getrandbits(256):064x}",
            now_ms=now_ms,
        )

    def due(self, now_ms: int) -> list[Trade]:
        """Trade status changes whose time has come (MINED, CONFIRMED, RETRYING, FAILED)."""
        out = []
        while self._schedule and self._schedule[0][0] <= now_ms:
            _, _, trade_id, status = heapq.heappop(self._schedule)
            trade = msgspec.structs.replace(
                self.trades[trade_id], status=status, last_update=str(now_ms // 1000), timestamp=str(now_ms)
            )
            self.trades[trade_id] = trade
            out.append(trade)
        return out

    # -- helpers --------------------------------------------------------------------------------------

    def _new_trade(
        self,
        market: SimMarket,
        trade_id: str,
        *,
        side: str,
        size: Decimal,
        price: str,
        trader_side: str,
        maker_orders: list[MakerOrder],
        taker_order_id: str,
        now_ms: int,
    ) -> Trade:
        trade = Trade(
            id=trade_id,
            market=market.condition_id,
            asset_id=market.yes,
            side=side,
            size=size_text(size),
            price=price,
            status="MATCHED",
            type="TRADE",
            taker_order_id=taker_order_id,
            outcome="Yes",
            owner=self.credentials.api_key,
            trade_owner=self.credentials.api_key,
            maker_address=SIM_ADDRESS,
            trader_side=trader_side,
            match_time=str(now_ms // 1000),
            last_update=str(now_ms // 1000),
            timestamp=str(now_ms),
            fee_rate_bps="0",
            bucket_index=0,
            transaction_hash="0x" + f"{self.rng.getrandbits(256):064x}",
            maker_orders=maker_orders,
        )
        self.trades[trade_id] = trade
        roll = self.rng.random()
        path = (
            ["MINED", "CONFIRMED"]
            if roll < 0.93
            else ["MINED", "RETRYING", "CONFIRMED"]
            if roll < 0.98
            else ["MINED", "FAILED"]
        )
        due = now_ms
        for status in path:
            due += _LIFECYCLE_MS[status]
            self._seq += 1
            heapq.heappush(self._schedule, (due, self._seq, trade_id, status))
        return trade

    def _order_message(self, order: AccountOrder, kind: str, now_ms: int) -> Order:
        return Order(
            id=order.id,
            market=order.market.condition_id,
            asset_id=order.asset_id,
            side=order.side,
            price=order.price,
            type=kind,
            original_size=size_text(order.original),
            size_matched=size_text(order.matched),
            status=order.status,
            outcome="Yes" if order.asset_id == order.market.yes else "No",
            owner=self.credentials.api_key,
            order_owner=self.credentials.api_key,
            maker_address=SIM_ADDRESS,
            order_type="GTC",
            associate_trades=list(order.trades),
            timestamp=str(now_ms),
            created_at=order.created_s,
            expiration="0",
        )
