"""Recording as a tap on a session's inputs: one wrapper writes exactly what the session is fed.

A :class:`MarketTap` or :class:`UserTap` stands between a driver and its session with the session's
own contract (:mod:`polyfeed.session.base`): each input is written to the recording, with the time the
driver passed in, and then handed to the session; the frames the session sends are written as the
driver pulls them. A replay (:class:`polyfeed.replay.Replay`) reads the records back into the same
inputs of a fresh session, so what live decided, replay decides, by construction rather than by care.

What each input becomes (``docs/recording-format.md``):

==========================================  ============================================================
input                                       record
==========================================  ============================================================
``receive_data``                            ``FRAME``: the frame as received (user channel: API key
                                            scrubbed)
``data_to_send`` (pulled)                   ``SENT``: subscriptions and operations (``PING`` left out;
                                            the user subscription without its ``auth``)
``timer``                                   the ``timer`` marker
``connection_lost``                         the ``disconnected`` marker, or ``stopped`` when the client
                                            closed it (an orderly stop: the books stay as they were)
``connect_failed``                          the ``connect_failed`` marker
``resync_received``                         ``REST``: ``{"asset_id", "body"}``
``resync_failed`` / ``book_missing``        the ``resync_failed`` / ``book_missing`` marker
``reconcile``                               ``REST``: ``{"reconcile": {...}}`` (API key scrubbed)
==========================================  ============================================================

``connection_made`` writes nothing itself: the subscription frame it sends is its record.
``subscribe`` and ``unsubscribe`` are written as the ``operation`` frames they send, or, while
disconnected, as the next subscription frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

from polyfeed.record.format import (
    REDACTED_API_KEY,
    TIMER_MARKER,
    BookMissingMarker,
    Channel,
    ConnectFailedMarker,
    DisconnectedMarker,
    Marker,
    RecordKind,
    ResyncFailedMarker,
    StoppedMarker,
    encode_marker,
)
from polyfeed.session.base import CLOSED_BY_CLIENT, ChannelSession
from polyfeed.session.events import AnyRequest, Event
from polyfeed.session.market import MarketSession
from polyfeed.session.user import UserSession
from polyfeed.wire import PING, Order, Trade

__all__ = ["FrameSink", "MarketTap", "SessionTap", "UserTap"]

_FRAME = int(RecordKind.FRAME)
_SENT = int(RecordKind.SENT)
_MARKER = int(RecordKind.MARKER)
_REST = int(RecordKind.REST)
_MARKET = int(Channel.MARKET)


class FrameSink(Protocol):
    """Where a tap writes (:class:`polyfeed.record.Recorder`)."""

    def write(self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes) -> None: ...
    def tick(self, now_ns: int) -> None: ...


class SessionTap:
    """What both channels' taps share: the connection's life, the frames, the frames sent."""

    channel = int(Channel.MARKET)

    def __init__(self, session: ChannelSession, sink: FrameSink) -> None:
        self._session = session
        self._sink = sink
        self._write = sink.write
        self._connection = session.connection_id
        self._now_ns = 0  # the time of the latest input: the frames it made are sent then

    # -- what the driver reads of the session, unchanged --------------------------------------------------

    @property
    def connection_id(self) -> int:
        return self._connection

    @property
    def close_reason(self) -> str | None:
        return self._session.close_reason

    def events_received(self) -> list[Event]:
        return self._session.events_received()

    def requests_received(self) -> list[AnyRequest]:
        return self._session.requests_received()

    def next_timer_ns(self) -> int:
        return self._session.next_timer_ns()

    def data_to_send(self) -> list[bytes]:
        frames = self._session.data_to_send()
        for frame in frames:
            safe = self._redact(frame)
            if safe is not None:
                self._write(_SENT, self.channel, self._connection, self._now_ns, safe)
        return frames

    # -- inputs: written, then fed ------------------------------------------------------------------------

    def connection_made(self, now_ns: int) -> None:
        self._now_ns = now_ns
        self._session.connection_made(now_ns)

    def receive_data(self, data: bytes, now_ns: int) -> None:
        self._now_ns = now_ns
        self._write(_FRAME, self.channel, self._connection, now_ns, self._scrub(data))
        self._session.receive_data(data, now_ns)

    def timer(self, now_ns: int) -> None:
        self._now_ns = now_ns
        self._write(_MARKER, self.channel, self._connection, now_ns, TIMER_MARKER)
        self._sink.tick(now_ns)
        self._session.timer(now_ns)

    def connection_lost(self, now_ns: int, reason: str) -> None:
        closed = reason == CLOSED_BY_CLIENT
        self._marker(StoppedMarker(reason) if closed else DisconnectedMarker(reason), now_ns)
        self._session.connection_lost(now_ns, reason)

    def connect_failed(self, now_ns: int, reason: str) -> None:
        self._marker(ConnectFailedMarker(reason), now_ns)
        self._session.connect_failed(now_ns, reason)

    # -- helpers ------------------------------------------------------------------------------------------

    def _marker(self, marker: Marker, now_ns: int) -> None:
        self._now_ns = now_ns
        self._write(_MARKER, self.channel, self._connection, now_ns, encode_marker(marker))

    def _scrub(self, payload: bytes) -> bytes:
        """A received frame as it may be recorded."""
        return payload

    def _redact(self, frame: bytes) -> bytes | None:
        """A sent frame as it may be recorded (``None``: not at all). PINGs are left out."""
        return None if frame == PING else frame


class MarketTap(SessionTap):
    """The tap of a :class:`~polyfeed.session.MarketSession`."""

    def __init__(self, session: MarketSession, sink: FrameSink) -> None:
        super().__init__(session, sink)
        self.session = session

    def receive_data(self, data: bytes, now_ns: int) -> None:
        # The hot path when recording: a market frame is written as received (nothing to scrub).
        self._now_ns = now_ns
        self._write(_FRAME, _MARKET, self._connection, now_ns, data)
        self.session.receive_data(data, now_ns)

    def subscribe(self, assets: Iterable[str], now_ns: int) -> None:
        self._now_ns = now_ns
        self.session.subscribe(assets, now_ns)

    def unsubscribe(self, assets: Iterable[str], now_ns: int) -> None:
        self._now_ns = now_ns
        self.session.unsubscribe(assets, now_ns)

    def resync_received(self, asset: str, body: bytes | str, now_ns: int) -> None:
        self._now_ns = now_ns
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        self._write(
            _REST,
            self.channel,
            self._connection,
            now_ns,
            msgspec.json.encode({"asset_id": asset, "body": text}),
        )
        self.session.resync_received(asset, body, now_ns)

    def resync_failed(self, asset: str, now_ns: int) -> None:
        self._marker(ResyncFailedMarker(asset), now_ns)
        self.session.resync_failed(asset, now_ns)

    def book_missing(self, asset: str, now_ns: int) -> None:
        self._marker(BookMissingMarker(asset), now_ns)
        self.session.book_missing(asset, now_ns)


class UserTap(SessionTap):
    """The tap of a :class:`~polyfeed.session.user.UserSession`: the venue names your API key as the
    ``owner`` of your orders and fills, so every frame and REST answer is written with it replaced by
    :data:`~polyfeed.record.format.REDACTED_API_KEY`, and the subscription without its ``auth`` (the
    secret and passphrase are never written)."""

    channel = int(Channel.USER)

    def __init__(self, session: UserSession, sink: FrameSink) -> None:
        super().__init__(session, sink)
        self.session = session
        self._api_key = session.credentials.api_key.encode()

    def reconcile(
        self, open_orders: list[Order], looked_up: list[Order], trades: list[Trade], now_ns: int
    ) -> None:
        self._now_ns = now_ns
        answer = {"reconcile": {"open_orders": open_orders, "looked_up": looked_up, "trades": trades}}
        self._write(_REST, self.channel, self._connection, now_ns, self._scrub(msgspec.json.encode(answer)))
        self.session.reconcile(open_orders, looked_up, trades, now_ns)

    def _scrub(self, payload: bytes) -> bytes:
        return payload.replace(self._api_key, REDACTED_API_KEY.encode()) if self._api_key else payload

    def _redact(self, frame: bytes) -> bytes | None:
        if frame == PING:
            return None
        try:
            body = msgspec.json.decode(frame)
        except msgspec.DecodeError:
            return None
        if isinstance(body, dict) and "auth" in body:
            body.pop("auth")
            return msgspec.json.encode(body)
        return self._scrub(frame)
