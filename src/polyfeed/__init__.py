"""polyfeed: Polymarket's CLOB order books and trades, exact, checked, and honest about gaps.

>>> from polyfeed import MarketStream          # streams (async)
>>> from polyfeed.book import OrderBook         # one asset's book, sans I/O
>>> from polyfeed.wire import decode_market     # frames to typed messages

The names below are loaded when first used: ``import polyfeed.wire`` or ``polyfeed.book`` loads msgspec
and nothing of the network stack (aiohttp, picows), which only the streams need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyfeed.book import BookStatus, OrderBook
    from polyfeed.errors import (
        AuthenticationError,
        ConnectError,
        FrameDecodeError,
        PolyfeedError,
        RecordingError,
        VenueError,
        VenueUnreachableError,
    )
    from polyfeed.net.gamma import MarketFilter
    from polyfeed.record.writer import Recorder
    from polyfeed.sim import Simulator
    from polyfeed.stream import MarketStream, SyncMarketStream, UserStream
    from polyfeed.venue import Venue
    from polyfeed.wire import Credentials

__all__ = [
    "AuthenticationError",
    "BookStatus",
    "ConnectError",
    "Credentials",
    "FrameDecodeError",
    "MarketFilter",
    "MarketStream",
    "OrderBook",
    "PolyfeedError",
    "Recorder",
    "RecordingError",
    "Simulator",
    "SyncMarketStream",
    "UserStream",
    "Venue",
    "VenueError",
    "VenueUnreachableError",
    "__version__",
]
__version__ = "0.1.0.dev0"

_HOMES = {
    "MarketStream": "polyfeed.stream",
    "SyncMarketStream": "polyfeed.stream",
    "UserStream": "polyfeed.stream",
    "MarketFilter": "polyfeed.net.gamma",
    "Venue": "polyfeed.venue",
    "OrderBook": "polyfeed.book",
    "BookStatus": "polyfeed.book",
    "Credentials": "polyfeed.wire",
    "Recorder": "polyfeed.record.writer",
    "Simulator": "polyfeed.sim",
    "PolyfeedError": "polyfeed.errors",
    "AuthenticationError": "polyfeed.errors",
    "ConnectError": "polyfeed.errors",
    "FrameDecodeError": "polyfeed.errors",
    "RecordingError": "polyfeed.errors",
    "VenueError": "polyfeed.errors",
    "VenueUnreachableError": "polyfeed.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'polyfeed' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
