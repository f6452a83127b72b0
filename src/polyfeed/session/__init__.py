"""The session layer: one connection's protocol state, sans I/O (bytes and time in, events out)."""

from polyfeed.session.events import (
    AnyEvent,
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
    encode_event,
)
from polyfeed.session.market import MarketSession, SessionConfig

__all__ = [
    "AnyEvent",
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
    "encode_event",
]
