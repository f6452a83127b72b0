"""Polymarket's book hash, exactly as the venue computes it (spec section 7).

SHA-1 (lowercase hex, no ``0x``) of the compact JSON of an object whose keys follow the Go server's
struct order, with ``hash`` set to ``""`` and the levels in wire order (bids ascending, asks
descending). The field set changed over time (spec 7.2), hence :class:`HashVariant`.

Speed: the book keeps each level as a shared price head and its size text, the JSON of the side in
pieces (:class:`polyfeed.book.ladder.Side`), so its hash is one join and one SHA-1
(:meth:`polyfeed.book.OrderBook.compute_hash`), about 5 µs for 60 levels a side, where ``json.dumps`` of
the book costs ~70 µs. :func:`book_hash` here takes ready level fragments, for callers that have them.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence

import msgspec

__all__ = ["HashVariant", "book_hash", "level_fragment"]


class HashVariant(enum.Enum):
    """Which fields the venue hashed, by the date of the data (spec 7.2)."""

    V2024 = "2024"
    """2024: ``market, asset_id, timestamp, hash, bids, asks`` (verified on a Nov-2024 capture)."""

    V2025_10 = "2025-10"
    """About Oct 2025: adds ``min_order_size, tick_size, neg_risk`` (verified on Oct-2025 captures)."""

    CURRENT = "2025-12"
    """Since about Dec 2025: adds ``last_trade_price`` too (verified on 2026 captures; PR #232 of
    py-clob-client)."""


NEWEST_FIRST: tuple[HashVariant, ...] = (HashVariant.CURRENT, HashVariant.V2025_10, HashVariant.V2024)

_encode = msgspec.json.encode


def json_string(text: str) -> str:
    """``text`` as a JSON string literal, quotes included (ids and timestamps are plain ASCII in practice)."""
    return _encode(text).decode()


def level_fragment(price: str, size: str) -> str:
    """The JSON of one level as the venue hashes it; price and size are validated decimal texts."""
    return f'{{"price":"{price}","size":"{size}"}}'


def book_hash(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bid_fragments: Iterable[str],
    ask_fragments: Iterable[str],
    min_order_size: str = "",
    tick_size: str = "",
    neg_risk: bool = False,
    last_trade_price: str = "",
    variant: HashVariant = HashVariant.CURRENT,
) -> str:
    """The book hash of one asset's book.

    Args:
        market: condition id (``0x...``).
        asset_id: token id.
        timestamp: the timestamp text of the message the hash belongs to (ms).
        bid_fragments: :func:`level_fragment` of each bid, ascending by price (wire order).
        ask_fragments: the same for asks, descending by price (wire order).
        min_order_size: as REST ``/book`` gives it (``"5"``); not hashed by ``V2024``.
        tick_size: the current tick (``"0.01"``); not hashed by ``V2024``.
        neg_risk: whether the market is neg-risk; not hashed by ``V2024``.
        last_trade_price: the text the venue hashes (``"0.920"``), ``""`` when unknown; only ``CURRENT``.
        variant: the field set.
    """
    head = (
        '{"market":'
        + json_string(market)
        + ',"asset_id":'
        + json_string(asset_id)
        + ',"timestamp":'
        + json_string(timestamp)
        + ',"hash":"","bids":['
    )
    return hash_with_head(
        head,
        bid_fragments,
        ask_fragments,
        metadata_tail(min_order_size, tick_size, neg_risk, last_trade_price, variant),
    )


def metadata_tail(
    min_order_size: str, tick_size: str, neg_risk: bool, last_trade_price: str, variant: HashVariant
) -> str:
    """Everything after the asks in the hashed object, closing brace included."""
    if variant is HashVariant.V2024:
        return "]}"
    tail = (
        '],"min_order_size":'
        + json_string(min_order_size)
        + ',"tick_size":'
        + json_string(tick_size)
        + ',"neg_risk":'
        + ("true" if neg_risk else "false")
    )
    if variant is HashVariant.CURRENT:
        tail += ',"last_trade_price":' + json_string(last_trade_price)
    return tail + "}"


def hash_with_head(
    head: str, bid_fragments: Iterable[str], ask_fragments: Iterable[str] | Sequence[str], tail: str
) -> str:
    """SHA-1 of ``head + bids + '],"asks":[' + asks + tail``; the pieces come from the book's caches."""
    text = head + ",".join(bid_fragments) + '],"asks":[' + ",".join(ask_fragments) + tail
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
