"""The wire layer: Polymarket's messages as typed structs, frame decoding, request encoding.

No I/O happens here; it depends on msgspec only.
"""

from polyfeed.wire.codec import (
    INVALID_OPERATION,
    NO_NEW_ASSETS,
    PONG,
    InvalidOperation,
    MarketEvent,
    MarketMessage,
    NoNewAssets,
    Notice,
    Pong,
    UnknownMessage,
    UserEvent,
    UserMessage,
    decode_json,
    decode_market,
    decode_user,
)
from polyfeed.wire.market import (
    BestBidAsk,
    Book,
    EventMessage,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceChangeEntry,
    PriceLevel,
    TickSizeChange,
)
from polyfeed.wire.requests import (
    PING,
    Credentials,
    encode_market_subscription,
    encode_operation,
    encode_user_subscription,
)
from polyfeed.wire.user import MakerOrder, Order, Trade

__all__ = [
    "INVALID_OPERATION",
    "NO_NEW_ASSETS",
    "PING",
    "PONG",
    "BestBidAsk",
    "Book",
    "Credentials",
    "EventMessage",
    "InvalidOperation",
    "LastTradePrice",
    "MakerOrder",
    "MarketEvent",
    "MarketMessage",
    "MarketResolved",
    "NewMarket",
    "NoNewAssets",
    "Notice",
    "Order",
    "Pong",
    "PriceChange",
    "PriceChangeEntry",
    "PriceLevel",
    "TickSizeChange",
    "Trade",
    "UnknownMessage",
    "UserEvent",
    "UserMessage",
    "decode_json",
    "decode_market",
    "decode_user",
    "encode_market_subscription",
    "encode_operation",
    "encode_user_subscription",
]
