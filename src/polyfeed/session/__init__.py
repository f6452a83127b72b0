"""The session layer: one connection's protocol state, sans I/O (bytes and time in, events out)."""

from polyfeed.session.events import (
    BookUpdated,
    ConnectFailed,
    DecodeFailed,
    Disconnected,
    Event,
    MessageReceived,
    OrderUpdated,
    Reconciled,
    Reconnected,
    Resynced,
    ResyncRequested,
    StatusChanged,
    TradeUpdated,
)
from polyfeed.session.market import MarketSession, SessionConfig

__all__ = [
    "BookUpdated",
    "ConnectFailed",
    "DecodeFailed",
    "Disconnected",
    "Event",
    "MarketSession",
    "MessageReceived",
    "OrderUpdated",
    "Reconciled",
    "Reconnected",
    "ResyncRequested",
    "Resynced",
    "SessionConfig",
    "StatusChanged",
    "TradeUpdated",
]
