"""The I/O layer: WebSocket connections (picows), reconnects, REST calls."""

from polyfeed.net.connection import Backoff, MarketConnection
from polyfeed.net.pool import VENUE_ASSET_LIMIT, MarketPool

__all__ = ["VENUE_ASSET_LIMIT", "Backoff", "MarketConnection", "MarketPool"]
