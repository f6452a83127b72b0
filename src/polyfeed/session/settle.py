"""When a market session runs a burst's checks: in the venue's time, per asset.

Checks are bounded per asset in the venue's own time (docs/book-checks.md, "The guarantees"): a burst's
checks run once the connection has brought a message ``settle_after_s`` later by the venue's clock, and
a hash awaiting its trade print fails ``final_settle_after_s`` later, whatever else the connection
carries. Messages of one connection come in the venue's order, so once a message ``settle_after_s``
later has been read, the burst's own messages have all been read too: unlike the wall clock, this cannot
close a burst whose messages still wait in the socket, and a client that falls behind judges late, never
falsely (issue 12, items 2 and 14).

It runs as a sweep every ``settle_after_s / 4`` of the venue's time, not per message: the bound grows by
a quarter, and the hot path pays one dict store a change (the session writes :attr:`BurstClock.opened`
itself).

A busy book's hash is checked at most every ``hash_interval_s`` of the venue's time (the newest claim
each time, :attr:`polyfeed.book.OrderBook.hash_every_ms`): a claim its burst's end left unchecked is
checked by the sweep once that interval has passed, unless a newer burst is open (its end brings a newer
claim). So a book whose levels went wrong is found by its hash within ``hash_interval_s`` plus a sweep
of the venue's time (at once by the top-of-book check when the top is wrong); a level wrong and then
right again between two checks did no lasting harm.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Collection

from polyfeed.book import BookStatus, OrderBook
from polyfeed.wire import timestamp_ms

__all__ = ["BurstClock"]


class BurstClock:
    """The bursts a connection has open and the hashes awaiting a print, closed by the venue's clock.

    Args:
        settle_after_s: how long after a burst's timestamp its checks run.
        final_settle_after_s: how long a hash that did not match waits for its print.
    """

    def __init__(self, settle_after_s: float, final_settle_after_s: float) -> None:
        self.venue_ms = 0
        """The venue's clock as this connection shows it: the newest integer timestamp seen."""
        self.opened: dict[str, int] = {}
        """asset -> venue ms of its latest change (its open burst's); written by the session."""
        self._waiting: deque[tuple[int, str, str]] = deque()  # (venue ms, timestamp, asset), oldest first
        self._deferred: list[tuple[int, str]] = []  # a heap of (venue ms due, asset): claims to check
        self._settle_ms = int(settle_after_s * 1000)
        self._final_ms = int(final_settle_after_s * 1000)
        self._sweep_ms = max(1, self._settle_ms // 4)
        self._next_sweep_ms = 0

    def sweep_due(self) -> bool:
        """Whether the venue's clock has moved a sweep's length since the last one (and there is work)."""
        if self.venue_ms < self._next_sweep_ms:
            return False
        self._next_sweep_ms = self.venue_ms + self._sweep_ms
        return bool(self.opened or self._waiting or self._deferred)

    def note_awaiting(self, asset: str, book: OrderBook) -> None:
        """After a book settled: a hash of it awaiting its trade print fails if none comes in time."""
        awaited = book.awaiting_print
        if awaited is not None:
            self._waiting.append((timestamp_ms(awaited) or 0, awaited, asset))

    def pending_assets(self) -> set[str]:
        """Every asset with something to judge: an open burst, a hash awaiting its print, a claim left
        unchecked. The others have nothing a quiet connection's settling could change."""
        pending = set(self.opened)
        pending.update(asset for _, _, asset in self._waiting)
        pending.update(asset for _, asset in self._deferred)
        return pending

    def clear(self, *, waiting: bool = True) -> None:
        """Forget open bursts (and hashes awaiting a print): their books were settled otherwise, or
        turned stale."""
        self.opened.clear()
        if waiting:
            self._waiting.clear()
            self._deferred.clear()

    def sweep(
        self,
        books: dict[str, OrderBook],
        assets: Collection[str],
        changed: Callable[[str, BookStatus], None],
    ) -> None:
        """Run the checks of the bursts the venue's clock has moved past, and fail the hashes whose print
        is overdue; ``changed(asset, old_status)`` after each book settled."""
        venue = self.venue_ms
        horizon = venue - self._settle_ms
        opened = self.opened
        for asset, ms in list(opened.items()):
            if ms > horizon:
                continue
            del opened[asset]
            book = books.get(asset)
            if book is not None and book.open_burst is not None and asset in assets:
                old = book.status
                book.settle()
                if book.status is not old:
                    changed(asset, old)
                self.note_awaiting(asset, book)
                if book.unverified_claim is not None:
                    heapq.heappush(self._deferred, (book.hash_due_ms, asset))
        deferred = self._deferred
        while deferred and deferred[0][0] <= venue:
            _, asset = heapq.heappop(deferred)
            book = books.get(asset)
            if book is not None and book.unverified_claim is not None and asset in assets:
                old = book.status
                book.verify_deferred()  # nothing while a burst is open: its end brings a newer claim
                changed(asset, old)
                self.note_awaiting(asset, book)
        waiting = self._waiting
        horizon = venue - self._final_ms
        while waiting and waiting[0][0] <= horizon:
            _, ts, asset = waiting.popleft()
            book = books.get(asset)
            if book is not None and book.awaiting_print == ts and asset in assets:
                old = book.status
                book.settle(final=True)
                changed(asset, old)
