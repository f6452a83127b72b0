"""What the local exchange writes on the wire: ``book`` frames in the venue's field order for their
kind, a subscription's initial dump, the REST ``/book`` shape, and the JSON text of any message the
engine produces (spec 3, 8.1)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from polyfeed.sim.engine import Outbound
from polyfeed.wire import Book

__all__ = ["book_frame", "dump_frames", "encode_outbound", "json_body", "rest_book"]

_encode = msgspec.json.encode


def book_frame(book: Book, *, initial: bool, tick_size: bool = True) -> dict[str, Any]:
    """A ``book`` message with the venue's fields for its kind (spec 3, observed key orders); an initial
    book without ``tick_size`` when ``tick_size`` is false, as December 2025's were (spec 7.3)."""
    levels = {"bids": book.bids, "asks": book.asks}  # PriceLevel encodes as {"price": ..., "size": ...}
    if initial:
        frame = {
            "market": book.market,
            "asset_id": book.asset_id,
            "timestamp": book.timestamp,
            "hash": book.hash,
            **levels,
            "tick_size": book.tick_size,
            "event_type": "book",
            "last_trade_price": book.last_trade_price,
        }
        if not tick_size:
            del frame["tick_size"]
        return frame
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        **levels,
        "hash": book.hash,
        "timestamp": book.timestamp,
        "event_type": "book",
    }


def dump_frames(books: list[Book], *, per_asset: bool = False, tick_size: bool = True) -> list[str]:
    """The frames of a subscription's initial books (built with ``initial=True`` shapes).

    Today's venue sends a subscription's whole dump as one JSON array of ``book`` objects (spec 3,
    real captures of December 2025 and April 2026; spec 12); an older capture shows each book in a
    one-element array of its own, kept as ``per_asset``. No books, no frame.
    """
    frames = [book_frame(book, initial=True, tick_size=tick_size) for book in books]
    if per_asset:
        return [_encode([frame]).decode() for frame in frames]
    return [_encode(frames).decode()] if frames else []


def rest_book(book: Book) -> dict[str, Any]:
    """The REST ``GET /book`` shape (spec 8.1), for :func:`json_body` (its levels are ``PriceLevel``
    structs, which msgspec writes as ``{"price": ..., "size": ...}``)."""
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        "timestamp": book.timestamp,
        "hash": book.hash,
        "bids": book.bids,
        "asks": book.asks,
        "min_order_size": book.min_order_size,
        "tick_size": book.tick_size,
        "neg_risk": book.neg_risk,
        "last_trade_price": book.last_trade_price,
    }


def json_body(body: object, status: int = 200) -> web.Response:
    """A JSON response written by msgspec (aiohttp's ``json_response`` runs :func:`json.dumps`, several
    times slower: ``POST /books`` for a whole universe is 45,600 books of tens of levels)."""
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def encode_outbound(out: Outbound) -> str:
    """A market-channel message as one JSON object (later events are never wrapped in arrays, spec 3);
    a ``book`` in the post-trade shape."""
    message = out.message
    if isinstance(message, Book):
        return _encode(book_frame(message, initial=False)).decode()
    return _encode(message).decode()
