"""The session layer: one connection's protocol state, sans I/O (bytes and time in, events out)."""

from polyfeed.session.events import (
    BookUpdated,
    DecodeFailed,
    Disconnected,
    Event,
    MessageReceived,
    Reconnected,
    Resynced,
    ResyncRequested,
    StatusChanged,
)
from polyfeed.session.market import MarketSession, SessionConfig

__all__ = [
    "BookUpdated",
    "DecodeFailed",
    "Disconnected",
    "Event",
    "MarketSession",
    "MessageReceived",
    "Reconnected",
    "ResyncRequested",
    "Resynced",
    "SessionConfig",
    "StatusChanged",
]
