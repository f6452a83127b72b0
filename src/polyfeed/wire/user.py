"""Messages of the user channel (``/ws/user``): your own orders and trades (spec 5).

Numbers stay strings, as on the wire. Several fields are empty strings in real data (``size_matched``
on a killed FOK order, ``created_at``, ``outcome``), so they default to ``""`` rather than failing.
"""

from __future__ import annotations

import msgspec

__all__ = ["MakerOrder", "Order", "Trade"]


class Order(msgspec.Struct, tag_field="event_type", tag="order", frozen=True, kw_only=True):
    """An order of yours was placed, partly matched or cancelled (spec 5.1).

    ``type`` is ``PLACEMENT`` / ``UPDATE`` / ``CANCELLATION``; ``status`` is ``LIVE``, ``MATCHED``,
    ``CANCELED``, ``INVALID``..., sometimes with a reason appended (``"CANCELED_order couldn't be fully
    filled. ..."``). ``size_matched`` is cumulative.

    Example (``ws/user/order_placement.json``, trimmed)::

        {"asset_id": "2174...6455", "associate_trades": null, "created_at": "1725842520",
         "event_type": "order", "expiration": "0", "id": "0x0f76...7a78", "market": "0xdd22...0917",
         "order_type": "GTC", "original_size": "5", "outcome": "Yes", "owner": "3e2c94ca-...",
         "price": "0.513", "side": "BUY", "size_matched": "0", "status": "LIVE",
         "timestamp": "1725842520990", "type": "PLACEMENT"}
    """

    id: str
    market: str
    asset_id: str
    side: str
    price: str
    type: str = ""
    original_size: str = ""
    size_matched: str = ""
    status: str = ""
    outcome: str = ""
    owner: str = ""
    order_owner: str = ""
    maker_address: str = ""
    order_type: str = ""
    associate_trades: list[str] | None = None
    timestamp: str = ""
    created_at: str = ""
    expiration: str | None = None


class MakerOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One resting order filled by a trade. When you are the maker, your fill is the entry whose
    ``owner`` or ``maker_address`` is yours; it may be on the complement token at 1 - p (spec 5.2)."""

    order_id: str
    matched_amount: str
    price: str
    asset_id: str = ""
    owner: str = ""
    maker_address: str = ""
    fee_rate_bps: str = ""
    outcome: str = ""
    side: str | None = None
    outcome_index: int | None = None


class Trade(msgspec.Struct, tag_field="event_type", tag="trade", frozen=True, kw_only=True):
    """A trade you took part in, sent again at every status change with the same ``id`` (spec 5.2).

    ``asset_id``, ``side`` and ``price`` describe the taker's leg. ``status`` runs MATCHED -> MINED ->
    CONFIRMED, or through RETRYING to FAILED. Times are epoch seconds (``match_time``) or seconds or ms
    (``timestamp``), as strings.

    Example (``ws/user/user_trade2.json``, trimmed)::

        {"asset_id": "2174...6455", "event_type": "trade", "id": "f50e8ab2-...", "maker_orders": [
         {"order_id": "0xa39a...885a", "matched_amount": "5", "price": "0.52", "owner": "ce168652-..."}],
         "market": "0xdd22...0917", "match_time": "1725958681", "price": "0.52", "side": "BUY",
         "size": "5", "status": "MATCHED", "trader_side": "TAKER", "type": "TRADE"}
    """

    id: str
    market: str
    asset_id: str
    side: str
    size: str
    price: str
    status: str
    type: str = ""
    taker_order_id: str = ""
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    trader_side: str = ""
    match_time: str = ""
    last_update: str = ""
    timestamp: str = ""
    fee_rate_bps: str = ""
    bucket_index: int | None = None
    transaction_hash: str = ""
    maker_orders: list[MakerOrder] = []
