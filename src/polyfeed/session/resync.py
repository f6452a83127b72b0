"""When a market session asks REST for a book: the budget, the retries, the resyncs under way, the
answers it may use, and the snapshots that never came.

A suspect book is resynced through ``GET /book`` (spec 8.2) under a token bucket (``resync_burst`` at
once, ``resync_per_minute`` after), so that a flapping market cannot cause a storm of REST calls; a
resync the budget defers, or whose call fails, is asked for again after a pause that doubles at each
failure (up to ``max_resync_retry_s``) for as long as its book needs one. While a resync is under way
the session buffers the book's updates here, to re-apply those newer than the REST answer.

A book still without a snapshot ``snapshot_timeout_s`` after subscribing is asked of REST too
(:class:`SnapshotWatch`): the venue sends no snapshot for a resolved market's tokens, and REST answers
404 for them (spec 8.1), which closes the book instead of leaving it waiting for ever.

Sans I/O, like the session that owns it: every decision is made from the times passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import FrameDecodeError
from polyfeed.session.base import ChannelSession
from polyfeed.session.config import SessionConfig
from polyfeed.session.events import Resynced, ResyncRequested
from polyfeed.session.idle import QuietOrZombie
from polyfeed.wire import Book, PriceChange, decode_market, timestamp_ms

__all__ = ["PendingResync", "ResyncSchedule", "ResyncingSession", "SnapshotWatch", "refusal"]

log = logging.getLogger("polyfeed.session.market")  # the market session's log, where users look
_WITHOUT_SNAPSHOT = (BookStatus.SYNCING, BookStatus.STALE)

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
        self.deferred = 0
        """Resyncs the budget put off (each is asked for again when the budget allows)."""
        self.completed = 0
        """REST books taken in place of a suspect or missing one."""
        self._retries: dict[str, int] = {}  # asset -> when to ask for its resync again (ns)
        self._failures: dict[str, int] = {}  # asset -> resyncs failed in a row
        self._tokens = float(config.resync_burst)
        self._tokens_at_ns = 0

    def start_clock(self, now_ns: int) -> None:
        """The budget refills from the first connection on."""
        self._tokens_at_ns = self._tokens_at_ns or now_ns

    def budget(self, now_ns: int) -> float:
        """The resyncs the budget allows at ``now_ns`` (at most ``resync_burst``); reading changes nothing."""
        config = self.config
        refill = max(0, now_ns - self._tokens_at_ns) / _NS * config.resync_per_minute / 60
        return min(float(config.resync_burst), self._tokens + refill)

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
            self.deferred += 1
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


def refusal(snapshot: Book, resync: PendingResync) -> str | None:
    """Why a REST answer cannot be used (``None``: it can)."""
    rest_ms = timestamp_ms(snapshot.timestamp)
    if rest_ms is None or any(timestamp_ms(m.timestamp) is None for m in resync.buffered):
        # Updates that cannot be ordered against the REST book cannot be replayed onto it (issue 12,
        # item 4): the answer is refused, the book stays suspect, and the resync is tried again.
        return f"a timestamp that is not an integer (REST {snapshot.timestamp!r})"
    if resync.seen_ms is not None and rest_ms < resync.seen_ms:
        # A REST book older than updates already applied would take the book back in time, and the
        # buffered updates cannot bring it forward again (issue 12, item 3).
        return f"the REST book ({rest_ms}) is older than the stream's updates ({resync.seen_ms})"
    return None


class SnapshotWatch:
    """The books waiting for their first snapshot since they were subscribed, and those whose wait ran
    out (REST is asked for them: they are :meth:`overdue`)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._timeout_ns = int(timeout_s * _NS)
        self._due: dict[str, int] = {}  # asset -> when its snapshot is overdue (ns)
        self._overdue: set[str] = set()

    def expect(self, assets: Iterable[str], now_ns: int, *, only: bool = False) -> None:
        """Snapshots of ``assets`` are due from ``now_ns`` (``only``: of these assets and no others)."""
        due = now_ns + self._timeout_ns
        if only:
            self._due = dict.fromkeys(assets, due)
        else:
            self._due.update(dict.fromkeys(assets, due))

    def arrived(self, asset: str) -> None:
        """A snapshot came (from the venue or REST), or the book needs none any more."""
        self._due.pop(asset, None)
        self._overdue.discard(asset)

    def next_due_ns(self) -> int | None:
        return min(self._due.values()) if self._due else None

    def expired(self, now_ns: int) -> list[str]:
        """The assets whose wait runs out now (in a stable order); each is overdue from now on."""
        if not self._due:
            return []
        ready = sorted(a for a, due_ns in self._due.items() if due_ns <= now_ns)
        for asset in ready:
            del self._due[asset]
        return ready

    def overdue(self, asset: str) -> bool:
        return asset in self._overdue

    def mark_overdue(self, asset: str) -> None:
        self._overdue.add(asset)


class ResyncingSession(ChannelSession):
    """The half of :class:`polyfeed.session.MarketSession` that asks REST for books and takes the
    answers: its requests (:class:`ResyncRequested`), its inputs (``resync_received``,
    ``resync_failed``, ``book_missing``) and the retries its timer runs. The other half routes the
    stream's messages to the books and keeps the connection's time."""

    config: SessionConfig
    assets: set[str]
    books: dict[str, OrderBook]
    resyncs: ResyncSchedule
    books_missing: int
    _snapshots: SnapshotWatch
    _idle: QuietOrZombie

    def _apply(self, asset: str, message: object, now_ns: int, *, updated: bool = True) -> None:
        raise NotImplementedError

    def _index_market(self, asset: str, market: str) -> None:
        raise NotImplementedError

    def _status_event(self, asset: str, old: BookStatus, now_ns: int) -> None:
        raise NotImplementedError

    def _request_resync(self, asset: str, reason: str, now_ns: int) -> None:
        wait_s = self.resyncs.try_start(asset, now_ns, timestamp_ms(self.books[asset].timestamp))
        if wait_s is not None:
            log.info(
                "connection %d: resync of %s deferred %.1f s: REST budget spent",
                self.connection_id,
                asset,
                wait_s,
            )
            return
        self._request(
            ResyncRequested(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                asset_id=asset,
                reason=reason,
            )
        )

    def resync_received(self, asset: str, body: bytes | str, now_ns: int) -> None:
        """The body of a ``GET /book`` answer (HTTP 200) to a :class:`ResyncRequested`: replace the book,
        then re-apply the updates buffered since the request that are newer than the REST book (spec
        8.2). A body that is not this asset's book fails the resync (retried with backoff)."""
        try:
            messages = decode_market(body)
        except FrameDecodeError as exc:
            messages = []
            why = exc.reason
        else:
            why = "not a book"
        snapshot = messages[0] if len(messages) == 1 else None
        if not isinstance(snapshot, Book) or snapshot.asset_id != asset:
            log.warning(
                "connection %d: resync of %s failed: GET /book answered %s", self.connection_id, asset, why
            )
            self.resync_failed(asset, now_ns)
            return
        resync = self.resyncs.pending.pop(asset, None)
        if asset not in self.assets:
            return
        if resync is None:
            # No resync waits for this answer: a venue snapshot superseded it while the call was out.
            # Applied, an answer older than that snapshot would take the book back (the long chaos run
            # found 9 books LIVE and wrong at rest this way, with slow REST answers).
            log.info(
                "connection %d: REST book of %s came after a snapshot superseded it",
                self.connection_id,
                asset,
            )
            return
        refused = refusal(snapshot, resync)
        if refused is not None:
            log.warning("connection %d: resync of %s refused: %s", self.connection_id, asset, refused)
            self.resync_failed(asset, now_ns)
            return
        rest_ms = timestamp_ms(snapshot.timestamp) or 0
        self.resyncs.succeeded(asset)
        self.resyncs.completed += 1
        self._snapshots.arrived(asset)
        self._idle.forget((asset,))  # the book held at the close is gone
        self._apply(asset, snapshot, now_ns)
        self._index_market(asset, snapshot.market)
        replayed = 0
        for message in resync.buffered:  # every stamp is an integer: refusal() saw to it
            if (timestamp_ms(message.timestamp) or 0) > rest_ms:
                self._apply(asset, message, now_ns)
                replayed += 1
        self._events.append(
            Resynced(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                asset_id=asset,
                replayed=replayed,
            )
        )

    def book_missing(self, asset: str, now_ns: int) -> None:
        """REST ``/book`` answered 404: the venue has no book for this token (its market resolved, or it
        never had one, spec 8.1). The book is closed for good rather than retried for ever (issue 12,
        items 7 and 13)."""
        self.resyncs.pending.pop(asset, None)
        if asset in self.assets:
            self.books_missing += 1
            self._close_book(asset, "the venue has no book for this token (resolved, or unknown)", now_ns)

    def resync_failed(self, asset: str, now_ns: int) -> None:
        """The REST call failed, or its answer could not be used: the book stays suspect, and the resync
        is asked for again after a pause that doubles at each failure (issue 12, item 5)."""
        self.resyncs.failed_now(asset, now_ns)

    def _close_book(self, asset: str, reason: str, now_ns: int) -> None:
        book = self.books[asset]
        self.resyncs.forget(asset)
        self._snapshots.arrived(asset)  # none will come
        if book.status is BookStatus.CLOSED:
            return
        old = book.status
        book.mark_closed(reason, now_ns // 1_000_000)
        self._status_event(asset, old, now_ns)

    def _check_snapshots(self, now_ns: int) -> None:
        """Books still without a snapshot ``snapshot_timeout_s`` after subscribing: ask REST whether the
        venue has a book for them; a 404 closes them (issue 12, item 13)."""
        for asset in self._snapshots.expired(now_ns):
            book = self.books.get(asset)
            if asset in self.assets and book is not None and book.status in _WITHOUT_SNAPSHOT:
                self._snapshots.mark_overdue(asset)
                if asset not in self.resyncs.pending:
                    reason = f"no snapshot {self._snapshots.timeout_s:g} s after subscribing"
                    self._request_resync(asset, reason, now_ns)

    def _retry_resync(self, asset: str, now_ns: int) -> None:
        """Ask again for a resync that failed or that the budget deferred, once its time has come, while
        its book still needs one."""
        book = self.books.get(asset)
        overdue = self._snapshots.overdue(asset) and book is not None and book.status in _WITHOUT_SNAPSHOT
        if asset not in self.assets or book is None or not (book.status is BookStatus.SUSPECT or overdue):
            self.resyncs.succeeded(asset)  # live again, stale (the reconnect resyncs it), or gone
        elif asset not in self.resyncs.pending:
            self._request_resync(asset, book.status_reason, now_ns)
