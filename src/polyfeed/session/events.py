"""What a session concludes, as events: past-tense names, so they never look like wire messages.

Every event carries ``recv_ns`` (the receive or decision time, ns) and ``seq``, a per-connection
sequence number, so that a consumer can order and deduplicate them and see gaps.

The events are one tagged union, :data:`AnyEvent`: msgspec structs tagged with their class name in
``type``, so that ``msgspec.json.encode(event)`` writes ``{"type": "BookUpdated", "recv_ns": ...}`` and
``msgspec.json.decode(line, type=AnyEvent)`` reads the event back, and a consumer can ``match`` on the
class. The tag is the class's, not a field: creating an event costs what it did untagged. On a hot
path, tell events apart with ``type(event) is BookUpdated``: mypy narrows it as it does ``isinstance``
and ``match``, and it costs a fraction of a failed ``isinstance`` against a msgspec struct (about
200 ns, so a ``match`` over several classes tripled ``WatchState.on_event``).
:func:`encode_event` writes the line ``polyfeed stream`` and ``polyfeed replay --view jsonl`` write:
the same JSON, with a ``MessageReceived``'s wire message class in ``message_type`` before its
``message``, and a ``DecodeFailed``'s frame as text.

To add an event: define its class below, subclassing :class:`Event` (a past-tense name: the class name
is its ``type``), add it to :data:`AnyEvent` and ``__all__`` here and re-export it from
:mod:`polyfeed.session`. Nothing else changes: the tag, the JSON line and decoding follow from the
class, and ``tests/session/test_events.py`` fails for an event left out of any of those lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import msgspec

from polyfeed.book import BookStatus
from polyfeed.wire import (
    InvalidOperation,
    MarketMessage,
    NoNewAssets,
    Order,
    Pong,
    Trade,
    UserMessage,
)

__all__ = [
    "AnyEvent",
    "AnyRequest",
    "BookUpdated",
    "ConnectFailed",
    "CredentialsRejected",
    "DecodeFailed",
    "Disconnected",
    "Event",
    "MessageReceived",
    "OrderUpdated",
    "ReconcileRequested",
    "Reconciled",
    "Reconnected",
    "ResyncRequested",
    "Resynced",
    "StatusChanged",
    "TradeUpdated",
    "WireMessage",
    "encode_event",
]

WireMessage: TypeAlias = MarketMessage | UserMessage | Pong | InvalidOperation | NoNewAssets
"""Every wire message a :class:`MessageReceived` may carry (``Notice``'s subclasses are named as well
for msgspec, which decodes the tags of the classes a union names, not of their subclasses)."""

if TYPE_CHECKING:
    Frame: TypeAlias = bytes | str
else:
    # msgspec decodes no ``bytes | str`` (both are JSON strings): a frame read back from JSON is its text
    Frame = str


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="type", tag=True):
    """Base of every session event (``gc=False``: events hold no reference cycles, and skipping the
    collector's tracking makes the one-or-two events a message costs cheaper). Each subclass is tagged
    with its class name in ``type`` (``tag=True``)."""

    recv_ns: int
    seq: int
    connection_id: int


class MessageReceived(Event, frozen=True, kw_only=True):
    """A wire message, in wire order (every one, also those no book uses: prints, notices, ...)."""

    message: WireMessage


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
    """The session wants a fresh ``GET /book`` for this asset: a request (:data:`AnyRequest`). The
    connection driver fetches it and hands the answer to
    :meth:`polyfeed.session.MarketSession.resync_received` (or ``book_missing``, ``resync_failed``)."""

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
    raw: Frame
    """The frame as received: bytes or text (text when read back from JSON)."""


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


class ReconcileRequested(Event, frozen=True, kw_only=True):
    """The venue accepted the user channel's credentials on a new connection: the session wants the
    venue's REST view of your orders and trades (a request, :data:`AnyRequest`; the driver fetches it and
    hands it to :meth:`polyfeed.session.user.UserSession.reconcile`)."""


class CredentialsRejected(Event, frozen=True, kw_only=True):
    """The user channel dropped ``failures`` connections in a row right after the subscription, as the
    venue does with bad credentials: a request (:data:`AnyRequest`) to give up, which the driver does by
    raising :class:`polyfeed.errors.AuthenticationError`."""

    failures: int


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


AnyEvent: TypeAlias = (
    MessageReceived
    | BookUpdated
    | StatusChanged
    | ResyncRequested
    | Resynced
    | Disconnected
    | Reconnected
    | ConnectFailed
    | DecodeFailed
    | OrderUpdated
    | TradeUpdated
    | ReconcileRequested
    | CredentialsRejected
    | Reconciled
)
"""Every concrete event: decode with ``msgspec.json.decode(line, type=AnyEvent)``, ``match`` on it."""

AnyRequest: TypeAlias = ResyncRequested | ReconcileRequested | CredentialsRejected
"""The events that ask the session's driver to act (pulled with ``requests_received()``)."""

# -- JSON lines -----------------------------------------------------------------------------------------


class _MessageLine(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="MessageReceived"):
    """A :class:`MessageReceived` as its line has it: the wire message's class before the message
    (``msgspec.json.decode`` of the line ignores ``message_type``: the message's own tag decides)."""

    recv_ns: int
    seq: int
    connection_id: int
    message_type: str
    message: WireMessage


_encode = msgspec.json.Encoder().encode


def encode_event(event: Event) -> bytes:
    """``event`` as the one-line JSON object that ``polyfeed stream`` writes (no newline): ``type``
    first, ``recv_ns``, ``seq``, ``connection_id``, then the event's fields, as
    ``msgspec.json.encode(event)`` writes them; a ``MessageReceived`` adds ``message_type`` (the wire
    struct's class: ``Book``, ``PriceChange``, ...) before ``message``, and a ``DecodeFailed``'s frame
    is written as text (not msgspec's base64 of bytes), for jq. ``msgspec.json.decode(line,
    type=AnyEvent)`` reads every line back."""
    # identity tests, not isinstance: a failed isinstance against a msgspec struct costs about 200 ns
    if type(event) is MessageReceived:
        message = event.message
        return _encode(
            _MessageLine(event.recv_ns, event.seq, event.connection_id, message.__class__.__name__, message)
        )
    if type(event) is DecodeFailed and isinstance(event.raw, bytes):
        return _encode(msgspec.structs.replace(event, raw=event.raw.decode("utf-8", "replace")))
    return _encode(event)
