"""The timings and budgets of a market session."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SessionConfig"]


@dataclass(frozen=True)
class SessionConfig:
    """Timings and budgets of a market session (defaults from spec 2 and the official SDK)."""

    ping_interval_s: float = 10.0
    pong_timeout_s: float = 30.0
    min_idle_s: float = 15.0
    max_idle_s: float = 60.0
    idle_factor: float = 50.0
    settle_after_s: float = 0.25
    """How long after a burst's timestamp its checks run: once the connection has brought a message
    this much later in the venue's time, or has been quiet this long by the clock."""
    final_settle_after_s: float = 3.0
    """How long a hash that did not match waits for its trade print before it fails: until the
    connection brings a message this much later in the venue's time, or is quiet this long."""
    hash_interval_s: float = 1.0
    """How often, at most, a live book's newest hash claim is checked, in the venue's time (0: at every
    burst end). The top-of-book and crossed checks still run at every burst end; see
    :mod:`polyfeed.session.settle` for the bound this gives."""
    resync_burst: int = 5
    resync_per_minute: float = 6.0
    """A token bucket: a flapping market cannot cause a storm of REST calls."""
    resync_retry_s: float = 1.0
    """The first pause before a failed resync is tried again; it doubles at each failure."""
    snapshot_timeout_s: float = 10.0
    """How long after subscribing a book may wait for its snapshot before REST ``/book`` is asked
    whether the venue has a book for it at all (a resolved market's tokens get none, spec 8.1)."""
    max_resync_retry_s: float = 60.0
    """The longest pause between two tries of a resync that keeps failing (or keeps being deferred by
    the budget): a suspect book is retried until it is live again."""
    subscribe_batch: int = 100
    """At most this many assets a subscription frame (0: all in one): the first frame carries the first
    batch, ``operation`` frames the rest (spec 1.3; the venue sends each one's initial books as one array).
    A connection's read buffer grows to its largest frame and never shrinks (picows): one initial dump
    of 500 books kept about 2 MB a connection, 180 MB over the whole market's 92 (issue 15)."""
    custom_feature_enabled: bool = False
    """Ask for ``best_bid_ask``, ``new_market`` and ``market_resolved`` (spec 1.2); the session uses
    ``market_resolved`` to stop reconnecting a connection whose every market has resolved."""
    max_quiet_idle_s: float = 600.0
    """The longest data-idle deadline: what a connection's deadline grows to, doubling at each reconnect
    whose snapshots show that nothing changed during the silence, and the deadline of a connection whose
    every asset has resolved. It bounds how long a zombie on a quiet connection goes unnoticed (Nautilus
    reconnects a silent market connection after a fixed 60 s, its user connection after 300 s, spec 2).
    ``max_idle_s`` or less turns the growth off."""

    def __post_init__(self) -> None:
        if self.subscribe_batch < 0:
            raise ValueError(f"subscribe_batch must be 0 (one frame) or more, not {self.subscribe_batch}")
