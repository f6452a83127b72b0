"""Driving a sans-I/O session in tests: feed one input, then pull what it produced.

The session's inputs return nothing and its outputs are pulled (:mod:`polyfeed.session.base`); these
helpers do both at once and return the output a test looks at. Requests are left where they are (each is
among the events too), for a test that answers them to pull with ``requests_received()``.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from polyfeed.session import Event, MarketSession
from polyfeed.session.base import ChannelSession
from polyfeed.wire import Book


def events(session: ChannelSession) -> list[Event]:
    """The events of the inputs fed so far (the frames to send are dropped)."""
    session.data_to_send()
    return session.events_received()


def connect(session: ChannelSession, now_ns: int) -> list[bytes]:
    """``connection_made``: the frames it sends (the subscription first)."""
    session.connection_made(now_ns)
    frames = session.data_to_send()
    assert session.events_received() == [], "a connection made says nothing yet"
    return frames


def feed(session: ChannelSession, data: bytes | str, now_ns: int) -> list[Event]:
    """``receive_data``: the events of one frame."""
    session.receive_data(data, now_ns)
    return events(session)


def tick(session: ChannelSession, now_ns: int) -> tuple[list[bytes], list[Event]]:
    """``timer``: the frames it sends (a PING) and its events."""
    session.timer(now_ns)
    return session.data_to_send(), session.events_received()


def lose(session: ChannelSession, now_ns: int, reason: str) -> list[Event]:
    """``connection_lost``: its events."""
    session.connection_lost(now_ns, reason)
    return events(session)


def connect_failed(session: ChannelSession, now_ns: int, reason: str) -> list[Event]:
    session.connect_failed(now_ns, reason)
    return events(session)


def resynced(session: MarketSession, snapshot: Book, now_ns: int) -> list[Event]:
    """``resync_received`` with ``snapshot`` as ``GET /book`` would answer it."""
    session.resync_received(snapshot.asset_id, msgspec.json.encode(snapshot), now_ns)
    return events(session)


def missing(session: MarketSession, asset: str, now_ns: int) -> list[Event]:
    """``book_missing`` (``GET /book`` answered 404): its events."""
    session.book_missing(asset, now_ns)
    return events(session)


def subscribed(session: MarketSession, assets: Iterable[str], now_ns: int = 0) -> list[bytes]:
    """``subscribe``: the frames it sends."""
    session.subscribe(assets, now_ns)
    return session.data_to_send()


def unsubscribed(session: MarketSession, assets: Iterable[str], now_ns: int = 0) -> list[bytes]:
    session.unsubscribe(assets, now_ns)
    return session.data_to_send()
