"""Replay: a recording drives the same sans-I/O sessions the live stream drove, record by record.

Live, a connection driver feeds its session frames, timer ticks, disconnects and REST answers; with a
recorder it feeds them through a tap (:mod:`polyfeed.session.tap`) that writes each of them, in the
order it fed them, with the time it used. :class:`Replay` is the tap read backwards: it feeds them to
the same inputs in that order with those times, so every session, book and event is rebuilt exactly:
the same levels, statuses, checks and per-connection sequence numbers as live.

- market ``SENT`` subscriptions and operations set each connection's assets (created on first sight);
- ``FRAME`` -> ``receive_data``; the ``timer`` marker -> ``timer``; ``disconnected`` ->
  ``connection_lost``; a ``REST`` book -> ``resync_received``; ``resync_failed`` -> ``resync_failed``;
- the ``metadata`` marker -> each book's ``min_order_size`` / ``neg_risk`` (they enter the hash);
- the user channel likewise into a :class:`polyfeed.session.user.UserSession` and its ``reconcile``;
- requests the sessions make are dropped: the records of their answers follow where live got them;
- the ``stopped`` marker (the stream closed the connection) leaves the books as they were: a recording
  that ends with an orderly stop replays to live books, not stale ones;
- the ``gap`` marker the reader yields where records were lost (a missing or damaged segment) is a
  disconnect of every connected session, as live (``Disconnected``, every book stale), and the session
  carries on as reconnected: each book is live again at its next snapshot (or verified hash), and its
  next data reports the ``Reconnected`` gap.

Unknown kinds and markers are skipped (and counted), as the format asks of readers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from polyfeed.book import OrderBook
from polyfeed.errors import InvalidLevelError
from polyfeed.record.format import (
    REDACTED_API_KEY,
    AnyMarker,
    BookMissingMarker,
    Channel,
    ConnectFailedMarker,
    Damage,
    DisconnectedMarker,
    GapMarker,
    MetadataMarker,
    Record,
    RecordKind,
    ResyncedMarker,
    ResyncFailedMarker,
    StoppedMarker,
    TimerMarker,
    decode_marker,
)
from polyfeed.record.reader import read_recording
from polyfeed.session import Event, MarketSession, SessionConfig
from polyfeed.session.base import CLOSED_BY_CLIENT
from polyfeed.session.user import UserSession, UserState
from polyfeed.wire import Credentials, Order, Trade

__all__ = ["Replay", "replay"]

log = logging.getLogger(__name__)

_FRAME = int(RecordKind.FRAME)
_SENT = int(RecordKind.SENT)
_MARKER = int(RecordKind.MARKER)
_REST = int(RecordKind.REST)
_MARKET = int(Channel.MARKET)
_USER = int(Channel.USER)
_decode = msgspec.json.decode


class _Reconcile(msgspec.Struct):
    open_orders: list[Order]
    looked_up: list[Order]
    trades: list[Trade]


class Replay:
    """The state a recording rebuilds: ``books`` (every market asset), ``sessions`` (by connection) and
    ``user`` (your orders and trades, when the user channel was recorded).

    Args:
        config: the market sessions' config (the live stream's; default :class:`SessionConfig`).
        address: your maker address, to pick out maker fills on the user channel.
    """

    def __init__(self, *, config: SessionConfig | None = None, address: str = "") -> None:
        self.config = config
        self.books: dict[str, OrderBook] = {}
        self.sessions: dict[int, MarketSession] = {}
        self.user = UserState(REDACTED_API_KEY, address)
        self.user_sessions: dict[int, UserSession] = {}
        self.records = 0
        self.skipped = 0
        self.gaps = 0
        """``gap`` markers: places where the reader found records lost."""
        self._connected: set[tuple[int, int]] = set()  # (channel, connection) connected at this point
        self._stopped: dict[tuple[int, int], int] = {}  # ... stopped by the client, and when (ns)

    def feed(self, record: Record) -> list[Event]:
        """Apply one record; returns the events the live stream emitted for it."""
        self.records += 1
        kind = record.kind
        if record.channel == _MARKET:
            if kind == _FRAME:
                session = self.sessions.get(record.connection)
                if session is None:
                    self.skipped += 1
                    return []
                session.receive_data(record.payload, record.recv_ns)
                session.data_to_send()  # _outputs, inlined on the hot path
                session.requests_received()
                return session.events_received()
            if kind == _MARKER:
                return self._market_marker(record)
            if kind == _SENT:
                return self._market_sent(record)
            if kind == _REST:
                return self._market_rest(record)
        elif record.channel == _USER:
            return self._user(record)
        self.skipped += 1
        return []

    # -- market channel -------------------------------------------------------------------------------

    def _market_sent(self, record: Record) -> list[Event]:
        body = _object(record.payload)
        if body is None:
            self.skipped += 1
            return []
        session = self.sessions.get(record.connection)
        if body.get("type") == "market":
            events: list[Event] = []
            assets = [str(a) for a in body.get("assets_ids") or []]
            if session is None:
                session = MarketSession(record.connection, assets, self.books, self.config)
                self.sessions[record.connection] = session
            else:  # (un)subscriptions made while disconnected travel in the next subscription frame
                events = self._restarted(_MARKET, session)
                session.subscribe((a for a in assets if a not in session.assets), record.recv_ns)
                session.unsubscribe(session.assets - set(assets), record.recv_ns)
            session.connection_made(record.recv_ns)
            self._connected.add((_MARKET, record.connection))
            return events + _outputs(session)
        if session is not None and body.get("operation") == "subscribe":
            session.subscribe((str(a) for a in body.get("assets_ids") or []), record.recv_ns)
        elif session is not None and body.get("operation") == "unsubscribe":
            session.unsubscribe((str(a) for a in body.get("assets_ids") or []), record.recv_ns)
        return _outputs(session) if session is not None else []

    def _market_marker(self, record: Record) -> list[Event]:
        marker = decode_marker(record.payload)
        session = self.sessions.get(record.connection)
        if isinstance(marker, GapMarker):
            return self._gap(record.recv_ns, marker.reason)
        if isinstance(marker, MetadataMarker):
            for item in marker.books:
                book = self.books.setdefault(item.asset_id, OrderBook(item.asset_id))
                try:
                    book.set_metadata(
                        min_order_size=item.min_order_size, tick_size=item.tick_size, neg_risk=item.neg_risk
                    )
                except InvalidLevelError:
                    self.skipped += 1
                    log.warning("recording's metadata marker has an unusable tick size for %s", item.asset_id)
            return []
        if session is not None:
            events = self._connection_marker(_MARKET, session, marker, record)
            if events is not None:
                return events
            if isinstance(marker, BookMissingMarker):
                session.book_missing(marker.asset_id, record.recv_ns)
                return _outputs(session)
            if isinstance(marker, ResyncFailedMarker):
                session.resync_failed(marker.asset_id, record.recv_ns)
                return _outputs(session)
        if not isinstance(marker, ResyncedMarker):  # resynced: the REST record before it did the work
            self.skipped += 1
        return []

    def _market_rest(self, record: Record) -> list[Event]:
        body = _object(record.payload)
        session = self.sessions.get(record.connection)
        if body is None or session is None or not isinstance(body.get("body"), str):
            self.skipped += 1
            return []
        session.resync_received(str(body.get("asset_id", "")), body["body"], record.recv_ns)
        return _outputs(session)

    # -- user channel ---------------------------------------------------------------------------------

    def _user(self, record: Record) -> list[Event]:
        kind = record.kind
        session = self.user_sessions.get(record.connection)
        if kind == _SENT:
            body = _object(record.payload)
            events: list[Event] = []
            if body is not None and body.get("type") == "user":
                if session is None:
                    credentials = Credentials(REDACTED_API_KEY, "", "")
                    markets = [str(m) for m in body.get("markets") or []]
                    session = UserSession(record.connection, credentials, self.user, markets)
                    self.user_sessions[record.connection] = session
                else:
                    events = self._restarted(_USER, session)
                session.connection_made(record.recv_ns)
                self._connected.add((_USER, record.connection))
                events += _outputs(session)
            return events
        if session is None:
            self.skipped += 1
            return []
        if kind == _FRAME:
            session.receive_data(record.payload, record.recv_ns)
            return _outputs(session)
        if kind == _MARKER:
            done = self._connection_marker(_USER, session, decode_marker(record.payload), record)
            if done is not None:
                return done
        if kind == _REST:
            body = _object(record.payload)
            if body is not None and "reconcile" in body:
                answer = msgspec.convert(body["reconcile"], _Reconcile)
                session.reconcile(answer.open_orders, answer.looked_up, answer.trades, record.recv_ns)
                return _outputs(session)
        self.skipped += 1
        return []

    def _connection_marker(
        self, channel: int, session: MarketSession | UserSession, marker: AnyMarker | None, record: Record
    ) -> list[Event] | None:
        """The markers of a connection's life, the same on both channels (timer, disconnected,
        connect_failed, stopped); ``None`` for any other."""
        if isinstance(marker, TimerMarker):
            session.timer(record.recv_ns)
            return _outputs(session)
        if isinstance(marker, DisconnectedMarker):
            self._connected.discard((channel, record.connection))
            session.connection_lost(record.recv_ns, marker.reason)
            return _outputs(session)
        if isinstance(marker, ConnectFailedMarker):
            session.connect_failed(record.recv_ns, marker.reason)
            return _outputs(session)
        if isinstance(marker, StoppedMarker):
            self._stop(channel, record)
            return []
        return None

    # -- stops and gaps --------------------------------------------------------------------------------

    def _stop(self, channel: int, record: Record) -> None:
        """The stream closed the connection: its books stay as they were (a replay that ends here shows
        them live). Should the recording go on with the same connection, the close counts from here."""
        key = (channel, record.connection)
        if key in self._connected:
            self._connected.discard(key)
            self._stopped[key] = record.recv_ns

    def _restarted(self, channel: int, session: MarketSession | UserSession) -> list[Event]:
        """A stopped connection subscribing again (a stream opened again on the same recorder): the
        disconnect its stop was, before the new connection."""
        stopped_ns = self._stopped.pop((channel, session.connection_id), None)
        if stopped_ns is None:
            return []
        session.connection_lost(stopped_ns, CLOSED_BY_CLIENT)
        return _outputs(session)

    def _gap(self, recv_ns: int, reason: str) -> list[Event]:
        """Records were lost here: every connected session disconnects, as live, and goes on as
        reconnected (the subscription frame it would send is dropped: the recording goes on)."""
        self.gaps += 1
        events: list[Event] = []
        sessions: list[MarketSession | UserSession] = [
            *(s for c, s in sorted(self.sessions.items()) if (_MARKET, c) in self._connected),
            *(s for c, s in sorted(self.user_sessions.items()) if (_USER, c) in self._connected),
        ]
        for session in sessions:
            session.connection_lost(recv_ns, f"records lost: {reason}")
            session.connection_made(recv_ns)
            events += _outputs(session)
        return events


def _outputs(session: MarketSession | UserSession) -> list[Event]:
    """The events of the input just fed: the frames the session would send are dropped (the recording
    has them as ``SENT`` records), and so are its requests (the records of their answers follow)."""
    session.data_to_send()
    session.requests_received()
    return session.events_received()


def _object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = _decode(payload)
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


def replay(
    directory: str | Path,
    *,
    from_ns: int | None = None,
    until_ns: int | None = None,
    state: Replay | None = None,
    on_damage: Callable[[Damage], None] | None = None,
) -> Iterator[tuple[Record, list[Event]]]:
    """Each record of a recording with the events it produced.

    Records before ``from_ns`` are applied too (books need their snapshots), but yielded only from
    ``from_ns`` on; the replay stops after ``until_ns``. Pass ``state`` to read the books as they go.
    Losses in the recording go to ``on_damage`` (:func:`~polyfeed.record.reader.read_recording`) and
    come as ``gap`` marker records, which disconnect every session (:class:`Replay`).
    """
    state = state if state is not None else Replay()
    feed = state.feed
    start_ns = -1 if from_ns is None else from_ns
    for record in read_recording(directory, until_ns=until_ns, on_damage=on_damage):
        events = feed(record)
        if record.recv_ns >= start_ns:
            yield record, events
