"""When a market session asks REST for a book: the budget, the retries and the resyncs under way.

A suspect book is resynced through ``GET /book`` (spec 8.2) under a token bucket (``resync_burst`` at
once, ``resync_per_minute`` after), so that a flapping market cannot cause a storm of REST calls; a
resync the budget defers, or whose call fails, is asked for again after a pause that doubles at each
failure (up to ``max_resync_retry_s``) for as long as its book needs one. While a resync is under way
the session buffers the book's updates here, to re-apply those newer than the REST answer.

Sans I/O, like the session that owns it: every decision is made from the times passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyfeed.session.config import SessionConfig
from polyfeed.wire import PriceChange

__all__ = ["PendingResync", "ResyncSchedule"]

_NS = 1_000_000_000


@dataclass
class PendingResync:
    """A resync asked of the driver and not yet answered."""

    requested_ns: int
    seen_ms: int | None
    """The timestamp of the newest update the book had applied when the resync was asked for: a REST
    answer older than that would take the book back in time."""
    buffered: list[PriceChange] = field(default_factory=list)
    """The book's updates since the request, to re-apply onto the answer."""


class ResyncSchedule:
    """The resyncs of one connection: under way (:attr:`pending`), deferred or failed and due again."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.pending: dict[str, PendingResync] = {}
        self.requested = 0
        self.failed = 0
        self._retries: dict[str, int] = {}  # asset -> when to ask for its resync again (ns)
        self._failures: dict[str, int] = {}  # asset -> resyncs failed in a row
        self._tokens = float(config.resync_burst)
        self._tokens_at_ns = 0

    def start_clock(self, now_ns: int) -> None:
        """The budget refills from the first connection on."""
        self._tokens_at_ns = self._tokens_at_ns or now_ns

    def try_start(self, asset: str, now_ns: int, seen_ms: int | None) -> float | None:
        """Start a resync if the budget allows (``None``); else schedule it again and return the seconds
        the budget needs."""
        config = self.config
        self._tokens = min(
            float(config.resync_burst),
            self._tokens + (now_ns - self._tokens_at_ns) / _NS * config.resync_per_minute / 60,
        )
        self._tokens_at_ns = now_ns
        if self._tokens < 1:
            rate = config.resync_per_minute / 60
            wait_s = (1 - self._tokens) / rate if rate > 0 else config.max_resync_retry_s
            self._retries[asset] = now_ns + int(min(wait_s, config.max_resync_retry_s) * _NS)
            return wait_s
        self._tokens -= 1
        self._retries.pop(asset, None)
        self.requested += 1
        self.pending[asset] = PendingResync(now_ns, seen_ms)
        return None

    def failed_now(self, asset: str, now_ns: int) -> None:
        """The call failed or its answer could not be used: due again after a pause that doubles."""
        self.pending.pop(asset, None)
        self.failed += 1
        failures = self._failures[asset] = self._failures.get(asset, 0) + 1
        config = self.config
        pause_s = min(config.max_resync_retry_s, config.resync_retry_s * 2 ** min(failures - 1, 30))
        self._retries[asset] = now_ns + int(pause_s * _NS)

    def succeeded(self, asset: str) -> None:
        self._failures.pop(asset, None)

    def forget(self, asset: str) -> None:
        """The book needs no resync any more (closed, unsubscribed)."""
        self.pending.pop(asset, None)
        self._retries.pop(asset, None)
        self._failures.pop(asset, None)

    def next_due_ns(self) -> int | None:
        return min(self._retries.values()) if self._retries else None

    def due(self, now_ns: int) -> list[str]:
        """The assets whose retry time has come (taken off the schedule), in a stable order."""
        if not self._retries:
            return []
        ready = sorted(a for a, due_ns in self._retries.items() if due_ns <= now_ns)
        for asset in ready:
            del self._retries[asset]
        return ready
