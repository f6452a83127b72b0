"""The venue's book hash, written from spec 7.1 alone: the local exchange's own, never the client's.

Polymarket hashes a book as ``sha1`` over the compact JSON of one object with the venue's fields in the
Go server's struct order (spec 7.1): ``market``, ``asset_id``, ``timestamp``, ``hash`` (always ``""``),
``bids``, ``asks`` (lists of ``{"price", "size"}`` in wire order: bids ascending, asks descending, the
best price last, spec 4.1), ``min_order_size``, ``tick_size``, ``neg_risk`` (a JSON boolean) and
``last_trade_price``. :func:`book_hash` does exactly that and nothing cleverer.

The engine hashes after every change of every book, so it may not rebuild and re-serialise every level
each time; :func:`spliced_hash` takes each level's JSON text, serialised once by :func:`level_text`, and
splices the level lists into the serialisation of the same object with empty level lists. Every byte
still comes from :func:`json.dumps` over the spec's object; the tests hold the two functions equal.

The last trade price is hashed with the book's text of it, at least 3 decimals (``"0.49"`` is hashed
as ``"0.490"``), while ``last_trade_price`` events carry the trimmed text (spec 7.3, 12):
:func:`book_trade_price` turns the one into the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = [
    "book_hash",
    "book_payload",
    "book_trade_price",
    "json_string",
    "level_head",
    "level_text",
    "spliced_hash",
]

_EMPTY_LEVELS = '"bids":[],"asks":[]'
# spec 7.1 step 2: separators "," and ":", no spaces, non-ASCII written as is. The encoder json.dumps
# would build on every call with these options, built once.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def book_payload(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bids: Iterable[tuple[str, str]],
    asks: Iterable[tuple[str, str]],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> dict[str, Any]:
    """The object the venue hashes, keys in its order (spec 7.1 step 1).

    Args:
        market: the condition id.
        asset_id: the token id.
        timestamp: epoch ms as text, the message's own timestamp.
        bids: ``(price, size)`` texts in wire order, ascending.
        asks: ``(price, size)`` texts in wire order, descending.
        min_order_size: e.g. ``"5"``.
        tick_size: e.g. ``"0.01"``.
        neg_risk: the market's neg-risk flag.
        last_trade_price: the book's text of the last trade price (``"0.490"``), ``""`` if none yet.
    """
    return {
        "market": market,
        "asset_id": asset_id,
        "timestamp": timestamp,
        "hash": "",
        "bids": [{"price": price, "size": size} for price, size in bids],
        "asks": [{"price": price, "size": size} for price, size in asks],
        "min_order_size": min_order_size,
        "tick_size": tick_size,
        "neg_risk": neg_risk,
        "last_trade_price": last_trade_price,
    }


def book_hash(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bids: Iterable[tuple[str, str]],
    asks: Iterable[tuple[str, str]],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> str:
    """The book hash (spec 7.1): 40 lowercase hex digits. Arguments as for :func:`book_payload`."""
    payload = book_payload(
        market=market,
        asset_id=asset_id,
        timestamp=timestamp,
        bids=bids,
        asks=asks,
        min_order_size=min_order_size,
        tick_size=tick_size,
        neg_risk=neg_risk,
        last_trade_price=last_trade_price,
    )
    return hashlib.sha1(_dumps(payload).encode()).hexdigest()


def level_text(price: str, size: str) -> str:
    """One level as it appears inside the hashed JSON: ``{"price":"0.3","size":"100"}``.

    The bytes :func:`json.dumps` writes for that object with the spec's separators, its values through
    the same string encoder, without the encoder's set-up for every level (most of the cost of a
    market's first book: tens of levels, each serialised twice).
    """
    return level_head(price) + json_string(size) + "}"


def level_head(price: str) -> str:
    """The start of :func:`level_text` up to the size, ``{"price":"0.3","size":``: the same for every
    level at one price, so it can be made once per price."""
    return '{"price":' + json_string(price) + ',"size":'


json_string = json.encoder.encode_basestring
"""A string as JSON text, the string encoder :data:`_dumps` applies (``ensure_ascii`` false)."""


def spliced_hash(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bid_texts: Iterable[str],
    ask_texts: Iterable[str],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> str:
    """:func:`book_hash` from levels already serialised by :func:`level_text`, in wire order.

    The object is serialised with empty level lists and the levels' texts are put between the brackets.
    The marker ``"bids":[],"asks":[]`` can occur only there: inside a JSON string its quotes would be
    escaped.
    """
    skeleton = _dumps(
        book_payload(
            market=market,
            asset_id=asset_id,
            timestamp=timestamp,
            bids=(),
            asks=(),
            min_order_size=min_order_size,
            tick_size=tick_size,
            neg_risk=neg_risk,
            last_trade_price=last_trade_price,
        )
    )
    head, tail = skeleton.split(_EMPTY_LEVELS)
    text = f'{head}"bids":[{",".join(bid_texts)}],"asks":[{",".join(ask_texts)}]{tail}'
    return hashlib.sha1(text.encode()).hexdigest()


def book_trade_price(trimmed: str) -> str:
    """The last trade price as books carry and hash it: at least 3 decimals (spec 7.3, 12).

    ``"0.49"`` -> ``"0.490"``, ``"0.5"`` -> ``"0.500"``; ``"0.585"`` and ``"0.4905"`` stay (no capture
    shows a 0.0001-tick market; the spec keeps every significant digit beyond the third); ``""`` (never
    traded) stays ``""``.
    """
    if not trimmed:
        return ""
    whole, _, decimals = trimmed.partition(".")
    return f"{whole}.{decimals.ljust(3, '0')}"
