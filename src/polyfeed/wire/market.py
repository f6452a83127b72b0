"""Messages of the market channel (``/ws/market``), as typed, frozen msgspec structs.

Field names are Polymarket's own. Every number on the wire is a string (spec section 4) and stays one
here: the book hash is computed over the exact text (spec section 7), so nothing is parsed at decode
time. Unknown fields are ignored; unknown ``event_type`` values decode to
:class:`polyfeed.wire.UnknownMessage` rather than failing.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BestBidAsk",
    "Book",
    "EventMessage",
    "LastTradePrice",
    "MarketResolved",
    "NewMarket",
    "PriceChange",
    "PriceChangeEntry",
    "PriceLevel",
    "TickSizeChange",
]


class PriceLevel(msgspec.Struct, frozen=True, gc=False):
    """One aggregated level of a ``book`` snapshot: ``{"price": "0.07", "size": "182528.55"}``."""

    price: str
    size: str


class Book(msgspec.Struct, tag_field="event_type", tag="book", frozen=True, kw_only=True):
    """A full snapshot of one asset's book (spec 4.1); also the shape of REST ``GET /book``.

    The initial snapshot carries ``tick_size`` and ``last_trade_price``; post-trade snapshots carry
    neither. REST books (which have no ``event_type``) add ``min_order_size`` and ``neg_risk``. Levels
    arrive with the best price *last*: bids ascending, asks descending.

    Example (trimmed, ``ws/market/book_snapshot_captured.json``)::

        {"market": "0x6bd5...0d0d", "asset_id": "3509...8126", "timestamp": "1786604072222",
         "hash": "ed47eb91f3c7985fac1cb18cb7c19535eddd3c0a",
         "bids": [{"price": "0.01", "size": "3149725.72"}, {"price": "0.07", "size": "182528.55"}],
         "asks": [{"price": "0.99", "size": "156606.14"}, {"price": "0.08", "size": "228198.28"}],
         "tick_size": "0.01", "event_type": "book", "last_trade_price": "0.920"}
    """

    market: str
    asset_id: str
    timestamp: str
    hash: str = ""
    bids: list[PriceLevel] = []
    asks: list[PriceLevel] = []
    tick_size: str | None = None
    last_trade_price: str | None = None
    min_order_size: str | None = None
    neg_risk: bool | None = None


class PriceChangeEntry(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One level update inside a ``price_change``: the level's new aggregate size (``"0"`` removes it).

    ``hash`` is the asset's book hash *after* this update (spec 7.4; the docs' "hash of the order" is
    wrong), and ``best_bid`` / ``best_ask`` its top of book after the update (``"0"`` / ``"1"`` for an
    empty side). Both are ``None``/empty on entries normalized from the pre-2025-09-15 formats.

    Example (``price_change_crossing_burst.json``)::

        {"asset_id": "7667...1111", "price": "0.301", "size": "1000", "side": "BUY",
         "hash": "b7623b6417b3ae46dbe5d608a65474c9cec84ef9", "best_bid": "0.301", "best_ask": "0.397"}
    """

    asset_id: str
    price: str
    size: str
    side: str
    hash: str = ""
    best_bid: str | None = None
    best_ask: str | None = None


class PriceChange(msgspec.Struct, tag_field="event_type", tag="price_change", frozen=True, kw_only=True):
    """Incremental level updates for one market (spec 4.2), normalized to the current format.

    Since 2025-09-15 23:00 UTC one message carries entries for both tokens of a market (a change at p on
    one token mirrored at 1 - p on the other). The two legacy formats (flat, and ``changes[]`` with a
    top-level ``asset_id`` and ``hash``) decode to this same type.

    Example (trimmed)::

        {"market": "0x25f9...d8ad", "price_changes": [{"asset_id": "5220...6824", "price": "0.26",
         "size": "10", "side": "SELL", "hash": "f0ab...7b88", "best_bid": "0.23", "best_ask": "0.26"}],
         "timestamp": "1778685765351", "event_type": "price_change"}
    """

    market: str
    timestamp: str
    price_changes: list[PriceChangeEntry]


class TickSizeChange(
    msgspec.Struct, tag_field="event_type", tag="tick_size_change", frozen=True, kw_only=True
):
    """The market's minimum tick changed, near the price extremes (spec 4.3).

    Example::

        {"asset_id": "1154...0353", "event_type": "tick_size_change", "market": "0xbacd...b8b",
         "new_tick_size": "0.001", "old_tick_size": "0.01", "timestamp": "1739068041853"}
    """

    asset_id: str
    market: str
    old_tick_size: str
    new_tick_size: str
    timestamp: str


class LastTradePrice(
    msgspec.Struct, tag_field="event_type", tag="last_trade_price", frozen=True, kw_only=True
):
    """A trade print: a maker and a taker order matched (spec 4.4). ``side`` is the taker's.

    Example::

        {"asset_id": "2174...6455", "event_type": "last_trade_price", "fee_rate_bps": "0",
         "market": "0xdd22...0917", "price": "0.491", "side": "SELL", "size": "85.36",
         "timestamp": "1724564136087"}
    """

    asset_id: str
    market: str
    price: str
    size: str
    side: str
    timestamp: str
    fee_rate_bps: str = ""
    transaction_hash: str = ""


class BestBidAsk(msgspec.Struct, tag_field="event_type", tag="best_bid_ask", frozen=True, kw_only=True):
    """Top of book changed; sent only with ``custom_feature_enabled`` (spec 4.5).

    Example::

        {"event_type": "best_bid_ask", "market": "0x0005...f442", "asset_id": "8535...4430",
         "best_bid": "0.73", "best_ask": "0.77", "spread": "0.04", "timestamp": "1766789469958"}
    """

    market: str
    asset_id: str
    best_bid: str
    best_ask: str
    timestamp: str
    spread: str = ""


class EventMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The parent event described inside ``new_market`` and ``market_resolved``."""

    id: str | int | None = None
    ticker: str = ""
    slug: str = ""
    title: str = ""
    description: str = ""


class NewMarket(msgspec.Struct, tag_field="event_type", tag="new_market", frozen=True, kw_only=True):
    """A market was created; a broadcast, not filtered by asset, only with custom features (spec 4.6).

    Example (trimmed)::

        {"event_type": "new_market", "id": "1557558", "question": "Bitcoin Up or Down ...",
         "market": "0x...", "slug": "btc-updown-5m-1773307200", "assets_ids": ["1042...", "7118..."],
         "outcomes": ["Up", "Down"], "timestamp": "1773307200000"}
    """

    market: str
    timestamp: str
    id: str | int | None = None
    question: str = ""
    slug: str = ""
    description: str = ""
    assets_ids: list[str] = []
    outcomes: list[str] = []
    event_message: EventMessage | None = None
    tags: list[msgspec.Raw] = []
    """Each tag's JSON as sent (its shape is undocumented), kept raw: never decoded deeper than needed."""
    order_price_min_tick_size: str | float | None = None


class MarketResolved(
    msgspec.Struct, tag_field="event_type", tag="market_resolved", frozen=True, kw_only=True
):
    """A market resolved; a broadcast, only with custom features, reportedly not always sent (spec 4.7).

    Example (trimmed)::

        {"event_type": "market_resolved", "id": "1557558", "market": "0x...",
         "assets_ids": ["1042...", "7118..."], "winning_asset_id": "1042...", "winning_outcome": "Up",
         "timestamp": "1773307500000"}
    """

    market: str
    timestamp: str
    id: str | int | None = None
    assets_ids: list[str] = []
    winning_asset_id: str = ""
    winning_outcome: str = ""
    question: str = ""
    slug: str = ""
    outcomes: list[str] = []
    tags: list[msgspec.Raw] = []
    """Each tag's JSON as sent (its shape is undocumented), kept raw: never decoded deeper than needed."""
