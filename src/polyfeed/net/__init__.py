"""The I/O layer: WebSocket connections (picows), reconnects, REST calls."""

from polyfeed.net.connection import Backoff, MarketConnection

__all__ = ["Backoff", "MarketConnection"]
