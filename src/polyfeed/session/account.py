"""Your account as the user channel and REST tell it: orders and trades as state a bot can trust.

State rules (spec 5):

- An order's ``size_matched`` only grows (the larger of what we have and what arrives), and a closed
  order (MATCHED, CANCELED..., INVALID) never reopens: an ``UPDATE`` that overtook its
  ``CANCELLATION`` cannot resurrect it.
- A trade is resent at every status change with the same ``id``. Your fills in it are counted once, the
  first time its id is seen, whatever status that message has. Its status moves forward through the
  lifecycle (MATCHED -> MINED -> CONFIRMED, or via RETRYING, or FAILED); CONFIRMED and FAILED are final;
  RETRYING -> MINED, the one step back the venue takes, is accepted only from a newer message. Repeats and
  stale messages are counted in ``duplicates`` and change nothing.
- Your fill in a trade: when you are the taker, the trade's own leg (``taker_order_id``, ``asset_id``,
  ``side``, ``price``, ``size``); when you are the maker, each ``maker_orders`` entry whose ``owner`` is
  your API key or whose ``maker_address`` is yours, on its own token (which may be the complement at
  1 - p: spec 5.2).

Pure state, no protocol: the user session (:mod:`polyfeed.session.user`) feeds it messages and REST rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from polyfeed.wire import Order, Trade, timestamp_ms

__all__ = ["FINAL_TRADE_STATUSES", "OPEN_STATUSES", "Fill", "OrderState", "TradeState", "UserState"]


OPEN_STATUSES = frozenset({"LIVE", "DELAYED", "UNMATCHED"})
_TRADE_RANK = {"MATCHED": 0, "MINED": 1, "RETRYING": 2, "CONFIRMED": 3, "FAILED": 3}
FINAL_TRADE_STATUSES = frozenset({"CONFIRMED", "FAILED"})


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _time_ms(trade: Trade) -> int:
    """A trade message's time in ms: ``timestamp`` (seconds or ms), else ``last_update`` (seconds)."""
    for text, scale in ((trade.timestamp, 0), (trade.last_update, 1000)):
        value = timestamp_ms(text)
        if value is not None:
            return value * (scale or (1 if value >= 10**12 else 1000))
    return 0


@dataclass(slots=True)
class OrderState:
    """One of your orders as the channel and REST told it."""

    id: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str
    status: str
    outcome: str = ""
    order_type: str = ""
    trades: list[str] = field(default_factory=list)
    updated_ms: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return _decimal(self.original_size) - _decimal(self.size_matched)


@dataclass(frozen=True, slots=True)
class Fill:
    """Your side of a trade: which order, token, side, price and size, as taker or maker."""

    trade_id: str
    order_id: str
    asset_id: str
    side: str
    price: str
    size: str
    role: str


@dataclass(slots=True)
class TradeState:
    """A trade you took part in: its status, the statuses it went through, your fills in it."""

    id: str
    market: str
    status: str
    fills: tuple[Fill, ...]
    trade: Trade
    history: list[str]
    updated_ms: int

    @property
    def final(self) -> bool:
        return self.status in FINAL_TRADE_STATUSES


class UserState:
    """Orders and trades of one account, built from ``order`` / ``trade`` messages and REST rows.

    Args:
        api_key: your API key (``owner`` of your maker fills).
        address: your maker address (funder or proxy wallet), matched case-insensitively; optional.
    """

    def __init__(self, api_key: str, address: str = "") -> None:
        self.api_key = api_key
        self.address = address.lower()
        self.orders: dict[str, OrderState] = {}
        self.trades: dict[str, TradeState] = {}
        self.duplicates = 0

    # -- reading --------------------------------------------------------------------------------------

    def open_orders(self) -> list[OrderState]:
        return [o for o in self.orders.values() if o.is_open]

    def fills(self, *, include_failed: bool = False) -> Iterator[Fill]:
        """Every fill of yours, once each, in the order the trades were first seen."""
        for trade in self.trades.values():
            if include_failed or trade.status != "FAILED":
                yield from trade.fills

    def position(self, asset_id: str) -> Decimal:
        """Net size bought minus sold on one token over the fills seen (FAILED trades excluded)."""
        total = Decimal(0)
        for fill in self.fills():
            if fill.asset_id == asset_id:
                size = _decimal(fill.size)
                total += size if fill.side == "BUY" else -size
        return total

    # -- applying -------------------------------------------------------------------------------------

    def apply_order(self, message: Order) -> bool:
        """Merge an ``order`` message or REST row; returns whether the order changed."""
        known = self.orders.get(message.id)
        stamp = timestamp_ms(message.timestamp) or 0
        if known is None:
            self.orders[message.id] = OrderState(
                id=message.id,
                market=message.market,
                asset_id=message.asset_id,
                side=message.side,
                price=message.price,
                original_size=message.original_size,
                size_matched=message.size_matched or "0",
                status=message.status,
                outcome=message.outcome,
                order_type=message.order_type,
                trades=list(message.associate_trades or []),
                updated_ms=stamp,
            )
            return True
        changed = False
        if _decimal(message.size_matched) > _decimal(known.size_matched):
            known.size_matched = message.size_matched
            changed = True
        status = message.status
        # An open order takes any news; a closed one never reopens, and between two closing statuses
        # the newer message wins.
        if (
            status
            and status != known.status
            and (known.is_open or (status not in OPEN_STATUSES and stamp >= known.updated_ms))
        ):
            known.status = status
            changed = True
        for trade_id in message.associate_trades or []:
            if trade_id not in known.trades:
                known.trades.append(trade_id)
                changed = True
        if message.original_size and message.original_size != known.original_size:
            known.original_size = message.original_size
            changed = True
        known.updated_ms = max(known.updated_ms, stamp)
        if not changed:
            self.duplicates += 1
        return changed

    def apply_trade(self, message: Trade) -> tuple[bool, bool]:
        """Merge a ``trade`` message or REST row; returns (new, changed)."""
        known = self.trades.get(message.id)
        stamp = _time_ms(message)
        if known is None:
            self.trades[message.id] = TradeState(
                id=message.id,
                market=message.market,
                status=message.status,
                fills=tuple(self.own_fills(message)),
                trade=message,
                history=[message.status],
                updated_ms=stamp,
            )
            return True, True
        if not self._moves_forward(known, message.status, stamp):
            self.duplicates += 1
            return False, False
        known.status = message.status
        known.trade = message
        known.history.append(message.status)
        known.updated_ms = max(known.updated_ms, stamp)
        return False, True

    @staticmethod
    def _moves_forward(known: TradeState, status: str, stamp: int) -> bool:
        if known.final or status == known.status or status not in _TRADE_RANK:
            return False
        if _TRADE_RANK[status] > _TRADE_RANK.get(known.status, -1):
            return True
        return known.status == "RETRYING" and status == "MINED" and stamp > known.updated_ms

    def own_fills(self, trade: Trade) -> Iterator[Fill]:
        """Your fills in a trade (see the module's rules)."""
        mine_as_maker = [
            m
            for m in trade.maker_orders
            if (m.owner and m.owner == self.api_key)
            or (self.address and m.maker_address.lower() == self.address)
        ]
        if trade.trader_side == "MAKER" or (not trade.trader_side and mine_as_maker):
            for entry in mine_as_maker:
                yield Fill(
                    trade_id=trade.id,
                    order_id=entry.order_id,
                    asset_id=entry.asset_id or trade.asset_id,
                    side=entry.side or _maker_side(trade, entry.asset_id),
                    price=entry.price,
                    size=entry.matched_amount,
                    role="MAKER",
                )
            return
        yield Fill(
            trade_id=trade.id,
            order_id=trade.taker_order_id,
            asset_id=trade.asset_id,
            side=trade.side,
            price=trade.price,
            size=trade.size,
            role="TAKER",
        )


def _maker_side(trade: Trade, maker_asset: str) -> str:
    """Without the entry's own side: against the taker on the same token, alongside it on the complement."""
    opposite = "SELL" if trade.side == "BUY" else "BUY"
    return opposite if not maker_asset or maker_asset == trade.asset_id else trade.side
