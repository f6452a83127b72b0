"""The public face: streams of books and events."""

from polyfeed.stream.market import DEFAULT_GAMMA_URL, DEFAULT_REST_URL, DEFAULT_WS_URL, MarketStream
from polyfeed.stream.sync import SyncMarketStream
from polyfeed.stream.user import DEFAULT_USER_WS_URL, UserStream

__all__ = [
    "DEFAULT_GAMMA_URL",
    "DEFAULT_REST_URL",
    "DEFAULT_USER_WS_URL",
    "DEFAULT_WS_URL",
    "MarketStream",
    "SyncMarketStream",
    "UserStream",
]
