"""Quiet market or zombie connection? A market connection's data-idle deadline beyond the adaptive one.

Silence alone cannot tell a market nobody trades (a resolved one, one at night) from a zombie connection
(spec 11.1: socket up, PONGs flowing, no data), so the adaptive deadline closes both, and a quiet
connection used to be resubscribed every 15-60 s for ever, each time with a fresh snapshot and then
silence again. The reconnect that follows a data-idle close can tell them apart: its fresh snapshots are
compared with the books held at the close (:meth:`polyfeed.book.OrderBook.same_levels`; the venue's
hash cannot say it alone, as it covers the timestamp).

- The same levels everywhere: the silence was real. The deadline doubles, up to ``max_quiet_idle_s``,
  and drops back to the adaptive one as soon as a change, a print, a tick change or a ``best_bid_ask``
  arrives (snapshots do not count: a resubscription brings them whether or not the market moves).
- A snapshot that differs: updates were missed on a live-looking socket. The deadline stays short and
  :attr:`QuietOrZombie.zombies_detected` counts it.
- Only books ``LIVE`` at the close are compared (a suspect book may differ for its own reasons). The
  verdict waits for all of them, or, when some never get a snapshot (resubscribing may bring none, spec
  11.2, 11.3), for the reconnect's snapshots to settle (the session's ``final_settle_after_s`` without
  data). A book replaced from REST meanwhile, or unsubscribed, drops out of it.
- A connection whose every asset has resolved (``market_resolved``, sent only with
  ``custom_feature_enabled``, spec 4.7, and reportedly not always, 11.17) gets ``max_quiet_idle_s`` at
  once: no data will come.

Like the session, this reads no clock: it is told what happened, so a replay decides as live did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import BookError
from polyfeed.wire import Book

__all__ = ["QuietOrZombie"]

log = logging.getLogger(__name__)
_GROWTH = 2.0  # a confirmed-quiet connection's deadline doubles: 15, 30, 60, ... 600 s by default


@dataclass
class Verdict:
    """A data-idle close awaiting the fresh snapshots that say whether the market was quiet."""

    idle_s: float
    """The deadline that expired."""
    awaiting: set[str]
    """Assets ``LIVE`` at the close whose snapshot on the new connection has not come yet."""
    compared: int = 0
    """Snapshots that came and equalled the book held at the close."""
    traded: bool = False
    """Changes or prints came on the new connection: whatever the snapshots say, not a quiet market."""


class QuietOrZombie:
    """One market connection's judgement of its data-idle closes, and the deadline it leads to.

    Args:
        connection_id: the connection's number, for the log.
        max_quiet_idle_s: the longest deadline (``SessionConfig.max_quiet_idle_s``).
    """

    def __init__(self, connection_id: int, max_quiet_idle_s: float) -> None:
        self.connection_id = connection_id
        self.max_quiet_idle_s = max_quiet_idle_s
        self.zombies_detected = 0
        self.quiet_confirmed = 0
        self.resolved_assets: set[str] = set()
        self.quiet_idle_s: float | None = None
        """The grown deadline, while the market stays quiet."""
        self.verdict: Verdict | None = None
        """The close being judged, if any."""

    def deadline_s(self, adaptive_s: float, assets: set[str]) -> float:
        """The deadline for a connection of ``assets`` whose adaptive deadline is ``adaptive_s``."""
        resolved = self.resolved_assets
        if resolved and assets <= resolved:
            return max(adaptive_s, self.max_quiet_idle_s)
        quiet = self.quiet_idle_s
        return adaptive_s if quiet is None else max(adaptive_s, quiet)

    def connection_lost(self, idle_expired_s: float | None, books: Iterable[OrderBook]) -> None:
        """The connection is gone; ``books`` are its books before they turn stale, ``idle_expired_s``
        the data-idle deadline that closed it (``None``: closed for another reason, nothing to judge)."""
        self.verdict = None  # a verdict still open is dropped: this close is judged on its own
        if idle_expired_s is None:
            return
        resolved = self.resolved_assets
        live = {b.asset_id for b in books if b.status is BookStatus.LIVE and b.asset_id not in resolved}
        if live:
            self.verdict = Verdict(idle_expired_s, live)

    def snapshot(self, book: OrderBook, snapshot: Book) -> None:
        """A venue snapshot of ``book``'s asset, before it replaces the book."""
        verdict = self.verdict
        if verdict is None or book.asset_id not in verdict.awaiting:
            return
        verdict.awaiting.discard(book.asset_id)
        try:
            same = book.same_levels(snapshot)
        except BookError:
            return  # a malformed snapshot says nothing about the silence (applying it reports it)
        if not same:
            # Waiting for the other snapshots would add nothing: one book moved without us.
            self.verdict = None
            self.quiet_idle_s = None
            self.zombies_detected += 1
            log.warning(
                "connection %d: a zombie connection: the book of %s changed during %g s without data",
                self.connection_id,
                book.asset_id,
                verdict.idle_s,
            )
            return
        verdict.compared += 1
        if not verdict.awaiting:
            self._conclude()

    def traded(self) -> None:
        """Normal data for the connection's assets: the market is not quiet (a grown deadline goes)."""
        self.quiet_idle_s = None
        if self.verdict is not None:
            self.verdict.traded = True

    def settled(self) -> None:
        """The new connection has been without data for a while: the snapshots that came decide."""
        if self.verdict is not None and self.verdict.compared:
            self._conclude()

    def forget(self, assets: Iterable[str]) -> None:
        """Assets whose next snapshot proves nothing any more: unsubscribed, or replaced from REST."""
        verdict = self.verdict
        if verdict is not None and verdict.awaiting:
            verdict.awaiting.difference_update(assets)
            if not verdict.awaiting:
                self._conclude()  # by the snapshots that came, if any

    def unsubscribed(self, assets: Iterable[str]) -> None:
        """Assets the connection no longer follows: neither resolved here nor awaited."""
        gone = set(assets)
        self.resolved_assets.difference_update(gone)
        self.forget(gone)

    def resolved(self, assets: set[str]) -> None:
        """These assets' market resolved: no data will come for them, nor perhaps a snapshot."""
        new = assets - self.resolved_assets
        if new:
            self.resolved_assets.update(new)
            self.forget(new)

    def _conclude(self) -> None:
        verdict = self.verdict
        assert verdict is not None
        self.verdict = None
        if verdict.traded or not verdict.compared:
            return
        self.quiet_confirmed += 1
        self.quiet_idle_s = min(self.max_quiet_idle_s, _GROWTH * verdict.idle_s)
        log.info(
            "connection %d: %g s without data was a quiet market (the books had not changed); "
            "its data-idle deadline is now %g s while the market stays quiet",
            self.connection_id,
            verdict.idle_s,
            self.quiet_idle_s,
        )
