"""The book layer: one asset's exact order book, Polymarket's book hash, and integrity checks.

No I/O happens here; it depends on the wire layer only.
"""

from polyfeed.book.hashing import HashVariant, book_hash, level_fragment
from polyfeed.book.orderbook import Level, OrderBook
from polyfeed.book.prices import PRICE_SCALE, price_key
from polyfeed.book.status import BookStatus, CheckCounts, CheckFailure, CheckKind

__all__ = [
    "PRICE_SCALE",
    "BookStatus",
    "CheckCounts",
    "CheckFailure",
    "CheckKind",
    "HashVariant",
    "Level",
    "OrderBook",
    "book_hash",
    "level_fragment",
    "price_key",
]
