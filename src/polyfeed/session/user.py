"""The user channel, sans I/O: one connection's protocol and liveness, feeding your account's state
(:mod:`polyfeed.session.account`, whose rules say how orders and trades merge). Bytes and time in;
frames, events and requests pulled out (the contract: :mod:`polyfeed.session.base`).

Liveness: the subscription frame first, then an immediate ``PING`` (its ``PONG`` proves the credentials
were accepted: on bad ones the venue drops the connection without a word, spec 5.3), then a ``PING``
every ``ping_interval_s``. A connection lost before it was confirmed counts as an authentication
failure; after ``max_auth_failures`` in a row the session asks the driver to give up
(:class:`~polyfeed.session.events.CredentialsRejected`), which raises
:class:`polyfeed.errors.AuthenticationError`. The data-idle deadline is long (the channel is quiet while
you do not trade), and every confirmed (re)connection asks the driver for a REST reconciliation
(:class:`~polyfeed.session.events.ReconcileRequested`, answered with :meth:`UserSession.reconcile`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polyfeed.errors import FrameDecodeError
from polyfeed.session.account import Fill, OrderState, TradeState, UserState
from polyfeed.session.base import ChannelSession
from polyfeed.session.events import (
    CredentialsRejected,
    Disconnected,
    MessageReceived,
    OrderUpdated,
    Reconciled,
    ReconcileRequested,
    Reconnected,
    TradeUpdated,
)
from polyfeed.wire import PING, Credentials, Order, Pong, Trade, decode_user, encode_user_subscription

__all__ = ["RECONCILED_KINDS", "Fill", "OrderState", "TradeState", "UserConfig", "UserSession", "UserState"]

RECONCILED_KINDS = ("orders_added", "orders_changed", "orders_closed", "trades_added", "trades_changed")
"""What a reconciliation may change, as :class:`~polyfeed.session.events.Reconciled` names it."""


@dataclass(frozen=True)
class UserConfig:
    """Timings of a user session."""

    ping_interval_s: float = 10.0
    pong_timeout_s: float = 30.0
    idle_timeout_s: float = 600.0
    """No data for this long closes and reopens the connection (then a reconciliation catches up)."""
    max_auth_failures: int = 3
    """Connections dropped before their first PONG, in a row, before credentials are declared bad."""


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
        self.reconciliations = 0
        """Reconciliations with the venue's REST view (one after every connection is confirmed)."""
        self.reconciled = dict.fromkeys(RECONCILED_KINDS, 0)
        """What the reconciliations changed, by kind (``orders_added``...): ids counted, ever."""

    # -- connection lifecycle -------------------------------------------------------------------------

    def connection_made(self, now_ns: int) -> None:
        """The subscription (holding the secret: the driver sends it and never logs it), then a PING
        whose PONG confirms the credentials."""
        self._start_heartbeat(now_ns, ping_now=True)
        self.authenticated = False
        self._to_send += [encode_user_subscription(self.credentials, self.markets), PING]

    def connection_lost(self, now_ns: int, reason: str) -> None:
        self._subscribed = False
        if not self.authenticated:
            self.auth_failures += 1
        if self._lost_after_data_ns is None:
            self._lost_after_data_ns = self._last_data_ns if self._last_data_ns is not None else now_ns
        self._events.append(
            Disconnected(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                assets=(),
            )
        )
        if self.auth_failures == self.config.max_auth_failures:
            self._request(
                CredentialsRejected(
                    recv_ns=now_ns,
                    seq=self._next_seq(),
                    connection_id=self.connection_id,
                    failures=self.auth_failures,
                )
            )

    def _confirmed(self, now_ns: int) -> None:
        if self.authenticated:
            return
        self.authenticated = True
        self.auth_failures = 0
        if self._lost_after_data_ns is not None:
            self._events.append(
                Reconnected(
                    recv_ns=now_ns,
                    seq=self._next_seq(),
                    connection_id=self.connection_id,
                    gap_ns=now_ns - self._lost_after_data_ns,
                    assets=(),
                )
            )
            self._lost_after_data_ns = None
        self._request(
            ReconcileRequested(recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id)
        )

    # -- data -------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes | str, now_ns: int) -> None:
        self.bytes_received += len(data)
        try:
            messages = decode_user(data)
        except FrameDecodeError as exc:
            self._skipped(exc, now_ns)
            return
        self.messages_received += len(messages)
        self._confirmed(now_ns)
        events = self._events
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
                self._order(message, now_ns)
            elif isinstance(message, Trade):
                self._trade(message, now_ns)

    def _order(self, message: Order, now_ns: int) -> bool:
        if not self.state.apply_order(message):
            return False
        known = self.state.orders[message.id]
        self._events.append(
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

    def _trade(self, message: Trade, now_ns: int) -> tuple[bool, bool]:
        new, changed = self.state.apply_trade(message)
        if changed:
            self._events.append(
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
    ) -> None:
        """The venue's REST view, fetched for a :class:`ReconcileRequested`: merged, with an event per
        item that changed and a :class:`Reconciled` summary."""
        added: list[str] = []
        changed: list[str] = []
        closed: list[str] = []
        for row in [*open_orders, *looked_up]:
            was = self.state.orders.get(row.id)
            was_open = was is not None and was.is_open
            if self._order(row, now_ns):
                if was is None:
                    added.append(row.id)
                elif was_open and not self.state.orders[row.id].is_open:
                    closed.append(row.id)
                else:
                    changed.append(row.id)
        trades_added: list[str] = []
        trades_changed: list[str] = []
        for trade in trades:
            new, moved = self._trade(trade, now_ns)
            if new:
                trades_added.append(trade.id)
            elif moved:
                trades_changed.append(trade.id)
        reconciled = Reconciled(
            recv_ns=now_ns,
            seq=self._next_seq(),
            connection_id=self.connection_id,
            orders_added=tuple(added),
            orders_changed=tuple(changed),
            orders_closed=tuple(closed),
            trades_added=tuple(trades_added),
            trades_changed=tuple(trades_changed),
        )
        self.reconciliations += 1
        ids = (added, changed, closed, trades_added, trades_changed)
        for kind, items in zip(RECONCILED_KINDS, ids, strict=True):
            self.reconciled[kind] += len(items)
        self._events.append(reconciled)

    def _in_scope(self, market: str) -> bool:
        return not self.markets or market in self.markets

    # -- time -------------------------------------------------------------------------------------------

    def next_timer_ns(self) -> int:
        return min(self._heartbeat_deadlines(self.config.idle_timeout_s))

    def timer(self, now_ns: int) -> None:
        if self._subscribed:
            self._heartbeat(now_ns, self.config.idle_timeout_s, "")
