"""The books a served recording rebuilds as it plays, and what a server learns from a first reading of it.

:class:`TimelineBooks` keeps one :class:`polyfeed.book.OrderBook` per token, fed every market frame
(and every resync ``REST`` body) in recorded order, whoever the frame is sent to: they are the venue's
books at the served moment, from which late subscribers get snapshots and REST calls their answers.
:func:`scan` reads the recording once before serving: the ``metadata`` markers (``min_order_size`` and
``neg_risk`` enter the hash but never come over the WebSocket, spec 7.3), each token's market, each
token's first recorded book (REST answers it before the replay reaches it), and the books as they stand
at ``from_ns``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import FrameDecodeError, PolyfeedError
from polyfeed.record.format import Channel, MetadataMarker, Record, RecordKind, decode_marker
from polyfeed.record.reader import read_recording
from polyfeed.wire import (
    Book,
    LastTradePrice,
    MarketMessage,
    PriceChange,
    TickSizeChange,
    decode_json,
    decode_market,
)

__all__ = ["Scan", "TimelineBooks", "decode_record", "scan"]

log = logging.getLogger(__name__)

_FRAME = int(RecordKind.FRAME)
_MARKER = int(RecordKind.MARKER)
_REST = int(RecordKind.REST)
_MARKET = int(Channel.MARKET)


class TimelineBooks:
    """Books by token, the market of each token, and the recorded metadata."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}
        self.market_of: dict[str, str] = {}
        self.assets_of: dict[str, set[str]] = {}
        self.metadata: dict[str, tuple[str | None, bool | None]] = {}
        self.rejected = 0
        """Messages a book refused (an invalid level, say); the frame is still served as recorded."""

    def live(self, asset: str) -> OrderBook | None:
        """The token's book if a snapshot has reached it."""
        book = self.books.get(asset)
        return book if book is not None and book.status is not BookStatus.SYNCING else None

    def new_book(self, asset: str) -> OrderBook:
        """A book with the recorded metadata, or the venue's usual ``"5"`` / ``false``."""
        book = OrderBook(asset)
        self.apply_metadata(book)
        return book

    def apply_metadata(self, book: OrderBook) -> None:
        min_order_size, neg_risk = self.metadata.get(book.asset_id, (None, None))
        if min_order_size is not None:
            book.min_order_size = min_order_size
        if neg_risk is not None:
            book.neg_risk = neg_risk

    def _book(self, asset: str) -> OrderBook:
        book = self.books.get(asset)
        if book is None:
            book = self.books[asset] = self.new_book(asset)
        return book

    def marker(self, payload: bytes) -> None:
        """Take the metadata of a ``metadata`` marker (docs/recording-format.md); ignore other markers."""
        marker = decode_marker(payload)
        if isinstance(marker, MetadataMarker):
            for item in marker.books:
                self.metadata[item.asset_id] = (item.min_order_size, item.neg_risk)

    def learn(self, messages: Iterable[MarketMessage]) -> None:
        """Remember which market each token named belongs to."""
        for message in messages:
            cls = message.__class__
            if cls is Book or cls is LastTradePrice or cls is TickSizeChange:
                self._learn(message.asset_id, message.market)  # type: ignore[union-attr]

    def _learn(self, asset: str, market: str) -> None:
        if market and self.market_of.get(asset) != market:
            self.market_of[asset] = market
            self.assets_of.setdefault(market, set()).add(asset)

    def feed(self, messages: Iterable[MarketMessage]) -> None:
        """Apply a frame's messages to the books, as a client following every token would."""
        for message in messages:
            cls = message.__class__
            try:
                if cls is PriceChange:
                    for asset in dict.fromkeys(e.asset_id for e in message.price_changes):  # type: ignore[union-attr]
                        self._book(asset).apply_price_change(message)  # type: ignore[arg-type]
                elif cls is Book or cls is TickSizeChange:
                    self._learn(message.asset_id, message.market)  # type: ignore[union-attr]
                    self._book(message.asset_id).apply(message)  # type: ignore[union-attr]
                elif cls is LastTradePrice:
                    # A print names one token; both tokens of the market hash its price (spec 7.3).
                    self._learn(message.asset_id, message.market)  # type: ignore[union-attr]
                    for asset in self.assets_of.get(message.market, {message.asset_id}):  # type: ignore[union-attr]
                        self._book(asset).apply(message)
            except PolyfeedError:
                self.rejected += 1


def decode_record(record: Record) -> list[MarketMessage]:
    """The market messages of a ``FRAME`` or of a resync ``REST`` record's body; ``[]`` if none decode."""
    try:
        if record.kind == _FRAME:
            return decode_market(record.payload)
        body = _object(record.payload)
        text = body.get("body") if body is not None else None
        return [m for m in decode_market(text) if isinstance(m, Book)] if isinstance(text, str) else []
    except FrameDecodeError:
        return []


@dataclass
class Scan:
    """What :func:`scan` found: the books at ``from_ns``, each token's first recorded book, and how
    many records come before ``from_ns`` (the timeline starts after them)."""

    books: TimelineBooks
    first: dict[str, OrderBook]
    prefix: int


def _may_name_a_market(payload: bytes) -> bool:
    # Only books, prints and tick changes are decoded past from_ns: they name a token and its market,
    # and leaving the price changes (most frames) undecoded keeps the first reading fast.
    return b'"book"' in payload or b'"last_trade_price"' in payload or b'"tick_size_change"' in payload


def scan(directory: str | Path, from_ns: int | None, until_ns: int | None) -> Scan:
    """Read the recording once (up to ``until_ns``) before serving it.

    Raises:
        RecordingFormatError: not a recording, or a damaged one.
    """
    books = TimelineBooks()
    firsts: dict[str, Book] = {}
    prefix = 0
    serving = from_ns is None
    for record in read_recording(directory, until_ns=until_ns):
        if not serving:
            if from_ns is not None and record.recv_ns >= from_ns:
                serving = True
            else:
                prefix += 1
        if record.channel != _MARKET:
            continue
        kind = record.kind
        if kind == _MARKER:
            books.marker(record.payload)
            continue
        if kind != _FRAME and kind != _REST:
            continue
        if serving and kind == _FRAME and not _may_name_a_market(record.payload):
            continue
        messages = decode_record(record)
        if serving:
            books.learn(messages)
        else:
            books.feed(messages)
        for message in messages:
            if isinstance(message, Book) and message.asset_id not in firsts:
                firsts[message.asset_id] = message
    for book in books.books.values():  # a marker may follow the books it describes
        books.apply_metadata(book)
    first: dict[str, OrderBook] = {}
    for asset, snapshot in firsts.items():
        book = books.new_book(asset)
        try:
            book.apply(snapshot)
        except PolyfeedError:
            continue
        first[asset] = book
    log.info("recording read: %d tokens, %d records before the start", len(first), prefix)
    return Scan(books, first, prefix)


def _object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = decode_json(payload)
    except FrameDecodeError:
        return None
    return body if isinstance(body, dict) else None
