"""What a session concludes, as events: past-tense names, so they never look like wire messages.

Every event carries ``recv_ns`` (the receive or decision time, ns) and ``seq``, a per-connection
sequence number, so that a consumer can order and deduplicate them and see gaps.
"""

from __future__ import annotations

import msgspec

from polyfeed.book import BookStatus
from polyfeed.wire import MarketMessage, Order, Trade, UserMessage

__all__ = [
    "BookUpdated",
    "DecodeFailed",
    "Disconnected",
    "Event",
    "MessageReceived",
    "OrderUpdated",
    "Reconciled",
    "Reconnected",
    "ResyncRequested",
    "Resynced",
    "StatusChanged",
    "TradeUpdated",
]


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every session event (``gc=False``: events hold no reference cycles, and skipping the
    collector's tracking makes the one-or-two events a message costs cheaper)."""

    recv_ns: int
    seq: int
    connection_id: int


class MessageReceived(Event, frozen=True, kw_only=True):
    """A wire message, in wire order (every one, also those no book uses: prints, notices, ...)."""

    message: MarketMessage | UserMessage


class BookUpdated(Event, frozen=True, kw_only=True):
    """A subscribed asset's book changed (snapshot, level changes or a resync)."""

    asset_id: str


class StatusChanged(Event, frozen=True, kw_only=True):
    """A book's status changed; ``reason`` says why."""

    asset_id: str
    old: BookStatus
    new: BookStatus
    reason: str


class ResyncRequested(Event, frozen=True, kw_only=True):
    """The session wants a fresh ``GET /book`` for this asset (the connection driver fetches it and hands
    it to :meth:`polyfeed.session.MarketSession.resync_received`)."""

    asset_id: str
    reason: str


class Resynced(Event, frozen=True, kw_only=True):
    """A book was replaced from REST and the updates buffered meanwhile re-applied."""

    asset_id: str
    replayed: int
    """Buffered ``price_change`` messages newer than the REST book, re-applied on top of it."""


class Disconnected(Event, frozen=True, kw_only=True):
    """The connection is gone; its books are stale until data comes back."""

    reason: str
    assets: tuple[str, ...]


class Reconnected(Event, frozen=True, kw_only=True):
    """Data flows again after a disconnect: how long it was missing, and for which assets."""

    gap_ns: int
    assets: tuple[str, ...]


class ConnectFailed(Event, frozen=True, kw_only=True):
    """A connection could not be made (refused, reset, a handshake rejected or never answered); the
    driver tries again after its backoff. ``attempt`` counts the failures since the last connection."""

    reason: str
    attempt: int


class DecodeFailed(Event, frozen=True, kw_only=True):
    """A frame that could not be decoded: counted and skipped, never fatal (the raw frame is kept)."""

    error: str
    raw: bytes | str


# -- user channel -------------------------------------------------------------------------------------


class OrderUpdated(Event, frozen=True, kw_only=True):
    """One of your orders changed (placed, matched further, cancelled, or found changed by a
    reconciliation); ``order`` is the message or REST row that changed it."""

    order_id: str
    status: str
    size_matched: str
    order: Order


class TradeUpdated(Event, frozen=True, kw_only=True):
    """A trade of yours is new (``new``: your fills in it were counted now, once) or moved on in its
    lifecycle (MATCHED, MINED, CONFIRMED, RETRYING, FAILED)."""

    trade_id: str
    status: str
    new: bool
    trade: Trade


class Reconciled(Event, frozen=True, kw_only=True):
    """After a gap, state was compared with the venue's REST view; what changed (ids)."""

    orders_added: tuple[str, ...]
    orders_changed: tuple[str, ...]
    orders_closed: tuple[str, ...]
    trades_added: tuple[str, ...]
    trades_changed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(
            self.orders_added
            or self.orders_changed
            or self.orders_closed
            or self.trades_added
            or self.trades_changed
        )
