"""The user channel, sans I/O: your orders and trades as state a bot can trust, and the connection's
liveness (bytes and time in, events and frames out).

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

Liveness: the subscription frame first, then an immediate ``PING`` (its ``PONG`` proves the credentials
were accepted: on bad ones the venue drops the connection without a word, spec 5.3), then a ``PING``
every ``ping_interval_s``. A connection lost before it was confirmed counts as an authentication
failure; after ``max_auth_failures`` in a row the driver stops and raises
:class:`polyfeed.errors.AuthenticationError`. The data-idle deadline is long (the channel is quiet while
you do not trade), and every (re)connection asks the driver for a REST reconciliation
(:meth:`UserSession.reconcile`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from polyfeed.errors import FrameDecodeError
from polyfeed.session.base import ChannelSession
from polyfeed.session.events import (
    Disconnected,
    Event,
    MessageReceived,
    OrderUpdated,
    Reconciled,
    Reconnected,
    TradeUpdated,
)
from polyfeed.wire import PING, Credentials, Order, Pong, Trade, decode_user, encode_user_subscription

__all__ = ["Fill", "OrderState", "TradeState", "UserConfig", "UserSession", "UserState"]


OPEN_STATUSES = frozenset({"LIVE", "DELAYED", "UNMATCHED"})
_TRADE_RANK = {"MATCHED": 0, "MINED": 1, "RETRYING": 2, "CONFIRMED": 3, "FAILED": 3}
FINAL_TRADE_STATUSES = frozenset({"CONFIRMED", "FAILED"})


@dataclass(frozen=True)
class UserConfig:
    """Timings of a user session."""

    ping_interval_s: float = 10.0
    pong_timeout_s: float = 30.0
    idle_timeout_s: float = 600.0
    """No data for this long closes and reopens the connection (then a reconciliation catches up)."""
    max_auth_failures: int = 3
    """Connections dropped before their first PONG, in a row, before credentials are declared bad."""


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _time_ms(trade: Trade) -> int:
    """A trade message's time in ms: ``timestamp`` (seconds or ms), else ``last_update`` (seconds)."""
    for text, scale in ((trade.timestamp, 0), (trade.last_update, 1000)):
        if text.isdigit():
            value = int(text)
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
        stamp = int(message.timestamp) if message.timestamp.isdigit() else 0
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


class UserSession(ChannelSession):
    """One user-channel connection's protocol state and the account state it feeds.

    Args:
        connection_id: carried by every event.
        credentials: sent in the subscription frame, never logged.
        state: the account state (shared across reconnects).
        markets: condition ids to filter on (empty: all).
        config: timings.
    """

    def __init__(
        self,
        connection_id: int,
        credentials: Credentials,
        state: UserState,
        markets: Iterable[str] = (),
        config: UserConfig | None = None,
    ) -> None:
        self.config = config or UserConfig()
        super().__init__(connection_id, self.config.ping_interval_s, self.config.pong_timeout_s)
        self.credentials = credentials
        self.state = state
        self.markets = list(dict.fromkeys(markets))
        self.auth_failures = 0
        """Connections lost in a row before the venue proved it accepted the credentials."""
        self.authenticated = False
        self.reconciliation_due = False
        """Set at every (re)connection once authenticated; the driver fetches REST and clears it."""

    # -- connection lifecycle -------------------------------------------------------------------------

    def connection_made(self, now_ns: int) -> list[bytes]:
        """The subscription (holding the secret: the driver sends it and never logs it), then a PING
        whose PONG confirms the credentials."""
        self._start_heartbeat(now_ns, ping_now=True)
        self.authenticated = False
        return [encode_user_subscription(self.credentials, self.markets), PING]

    def connection_lost(self, now_ns: int, reason: str) -> list[Event]:
        self._subscribed = False
        if not self.authenticated:
            self.auth_failures += 1
        if self._lost_after_data_ns is None:
            self._lost_after_data_ns = self._last_data_ns if self._last_data_ns is not None else now_ns
        return [
            Disconnected(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                assets=(),
            )
        ]

    def _confirmed(self, now_ns: int, events: list[Event]) -> None:
        if self.authenticated:
            return
        self.authenticated = True
        self.auth_failures = 0
        self.reconciliation_due = True
        if self._lost_after_data_ns is not None:
            events.append(
                Reconnected(
                    recv_ns=now_ns,
                    seq=self._next_seq(),
                    connection_id=self.connection_id,
                    gap_ns=now_ns - self._lost_after_data_ns,
                    assets=(),
                )
            )
            self._lost_after_data_ns = None

    # -- data -------------------------------------------------------------------------------------------

    def data_received(self, data: bytes | str, now_ns: int) -> list[Event]:
        events: list[Event] = []
        try:
            messages = decode_user(data)
        except FrameDecodeError as exc:
            return self._skipped(exc, now_ns)
        self._confirmed(now_ns, events)
        for message in messages:
            if isinstance(message, Pong):
                self._ping_outstanding_ns = None
                continue
            self._last_data_ns = now_ns
            events.append(
                MessageReceived(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, message=message
                )
            )
            if isinstance(message, Order):
                self._order(message, now_ns, events)
            elif isinstance(message, Trade):
                self._trade(message, now_ns, events)
        return events

    def _order(self, message: Order, now_ns: int, events: list[Event]) -> bool:
        if not self.state.apply_order(message):
            return False
        known = self.state.orders[message.id]
        events.append(
            OrderUpdated(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                order_id=message.id,
                status=known.status,
                size_matched=known.size_matched,
                order=message,
            )
        )
        return True

    def _trade(self, message: Trade, now_ns: int, events: list[Event]) -> tuple[bool, bool]:
        new, changed = self.state.apply_trade(message)
        if changed:
            events.append(
                TradeUpdated(
                    recv_ns=now_ns,
                    seq=self._next_seq(),
                    connection_id=self.connection_id,
                    trade_id=message.id,
                    status=self.state.trades[message.id].status,
                    new=new,
                    trade=message,
                )
            )
        return new, changed

    # -- reconciliation ---------------------------------------------------------------------------------

    def orders_to_look_up(self, open_order_ids: Iterable[str], trades: Iterable[Trade] = ()) -> list[str]:
        """Orders to fetch one by one after a gap: those we hold open that the venue's open list lacks
        (they closed meanwhile: filled or cancelled?), and those behind maker fills of ``trades`` that we
        never heard of (placed and filled during the gap). An order placed and cancelled within the gap
        without a fill is visible nowhere in REST, and changes neither open orders nor fills."""
        listed = set(open_order_ids)
        wanted = [o.id for o in self.state.open_orders() if o.id not in listed and self._in_scope(o.market)]
        known = self.state.orders
        for trade in trades:
            for fill in self.state.own_fills(trade):
                if fill.role == "MAKER" and fill.order_id not in known and fill.order_id not in listed:
                    wanted.append(fill.order_id)
        return list(dict.fromkeys(wanted))

    def reconcile(
        self, open_orders: Iterable[Order], looked_up: Iterable[Order], trades: Iterable[Trade], now_ns: int
    ) -> list[Event]:
        """Merge the venue's REST view after a (re)connection; returns the per-item events and a
        :class:`Reconciled` summary."""
        events: list[Event] = []
        added: list[str] = []
        changed: list[str] = []
        closed: list[str] = []
        for row in [*open_orders, *looked_up]:
            was = self.state.orders.get(row.id)
            was_open = was is not None and was.is_open
            if self._order(row, now_ns, events):
                if was is None:
                    added.append(row.id)
                elif was_open and not self.state.orders[row.id].is_open:
                    closed.append(row.id)
                else:
                    changed.append(row.id)
        trades_added: list[str] = []
        trades_changed: list[str] = []
        for trade in trades:
            new, moved = self._trade(trade, now_ns, events)
            if new:
                trades_added.append(trade.id)
            elif moved:
                trades_changed.append(trade.id)
        self.reconciliation_due = False
        events.append(
            Reconciled(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                orders_added=tuple(added),
                orders_changed=tuple(changed),
                orders_closed=tuple(closed),
                trades_added=tuple(trades_added),
                trades_changed=tuple(trades_changed),
            )
        )
        return events

    def _in_scope(self, market: str) -> bool:
        return not self.markets or market in self.markets

    # -- time -------------------------------------------------------------------------------------------

    def next_timer_ns(self) -> int:
        return min(self._heartbeat_deadlines(self.config.idle_timeout_s))

    def timer(self, now_ns: int) -> tuple[list[bytes], list[Event]]:
        if not self._subscribed:
            return [], []
        return self._heartbeat(now_ns, self.config.idle_timeout_s, ""), []
