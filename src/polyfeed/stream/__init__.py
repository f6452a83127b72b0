"""The public face: streams of books and events (where they connect: :class:`polyfeed.venue.Venue`)."""

from polyfeed.stream.market import MarketStream
from polyfeed.stream.sync import SyncMarketStream
from polyfeed.stream.user import UserStream

__all__ = [
    "MarketStream",
    "SyncMarketStream",
    "UserStream",
]
