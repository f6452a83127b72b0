"""What the local exchange writes on the wire: ``book`` frames in the venue's field order for their
kind, the REST ``/book`` shape, and the JSON text of any message the engine produces (spec 3, 8.1)."""

from __future__ import annotations

from typing import Any

import msgspec

from polyfeed.sim.engine import Outbound
from polyfeed.wire import Book

__all__ = ["book_frame", "encode_outbound", "rest_book"]

_encode = msgspec.json.encode


def book_frame(book: Book, *, initial: bool) -> dict[str, Any]:
    """A ``book`` message with the venue's fields for its kind (spec 3, observed key orders)."""
    levels = {
        "bids": [{"price": lv.price, "size": lv.size} for lv in book.bids],
        "asks": [{"price": lv.price, "size": lv.size} for lv in book.asks],
    }
    if initial:
        return {
            "market": book.market,
            "asset_id": book.asset_id,
            "timestamp": book.timestamp,
            "hash": book.hash,
            **levels,
            "tick_size": book.tick_size,
            "event_type": "book",
            "last_trade_price": book.last_trade_price,
        }
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        **levels,
        "hash": book.hash,
        "timestamp": book.timestamp,
        "event_type": "book",
    }


def rest_book(book: Book) -> dict[str, Any]:
    """The REST ``GET /book`` shape (spec 8.1)."""
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        "timestamp": book.timestamp,
        "hash": book.hash,
        "bids": [{"price": lv.price, "size": lv.size} for lv in book.bids],
        "asks": [{"price": lv.price, "size": lv.size} for lv in book.asks],
        "min_order_size": book.min_order_size,
        "tick_size": book.tick_size,
        "neg_risk": book.neg_risk,
        "last_trade_price": book.last_trade_price,
    }


def encode_outbound(out: Outbound) -> str:
    message = out.message
    if isinstance(message, Book):
        return _encode(book_frame(message, initial=False)).decode()
    return _encode(message).decode()
