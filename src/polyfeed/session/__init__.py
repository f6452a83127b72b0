"""The session layer: one connection's protocol state, sans I/O (bytes and time in; frames, events and
requests pulled out: :mod:`polyfeed.session.base`)."""

from polyfeed.session.events import (
    AnyEvent,
    AnyRequest,
    BookUpdated,
    ConnectFailed,
    CredentialsRejected,
    DecodeFailed,
    Disconnected,
    Event,
    MessageReceived,
    OrderUpdated,
    Reconciled,
    ReconcileRequested,
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
    "AnyRequest",
    "BookUpdated",
    "ConnectFailed",
    "CredentialsRejected",
    "DecodeFailed",
    "Disconnected",
    "Event",
    "MarketSession",
    "MessageReceived",
    "OrderUpdated",
    "ReconcileRequested",
    "Reconciled",
    "Reconnected",
    "ResyncRequested",
    "Resynced",
    "SessionConfig",
    "StatusChanged",
    "TradeUpdated",
    "encode_event",
]
