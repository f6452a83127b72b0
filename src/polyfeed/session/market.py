"""One market-channel connection's protocol state, sans I/O: bytes and time in, events and frames out.

The connection driver calls :meth:`MarketSession.connection_made` (and sends the frames it returns),
:meth:`~MarketSession.data_received` for every frame, :meth:`~MarketSession.timer` at
:meth:`~MarketSession.next_timer_ns`, and :meth:`~MarketSession.connection_lost`; it closes the
connection when :attr:`~MarketSession.close_reason` is set, and fetches ``GET /book`` when a
:class:`ResyncRequested` event asks for it. Nothing here reads a clock or touches a socket, so live
streaming, replay and tests drive the same code.

Liveness (spec 2, 11.1): text ``PING`` every ``ping_interval_s``, never before the subscription frame;
no ``PONG`` for ``pong_timeout_s`` closes the connection; so does silence past the *data-idle* deadline,
which is judged per connection against its own recent message rate (a quiet market is not a dead
connection, a busy connection that stops is): ``idle_factor`` times the smoothed gap between data
frames, kept between ``min_idle_s`` and ``max_idle_s``. Only data about this connection's assets counts:
notices (``NO NEW ASSETS``) and ``new_market`` broadcasts go to every custom-feature connection whatever
it subscribed (spec 3, 11.10), and would hide a zombie that still passes them on.

A data-idle close may have been a quiet market rather than a zombie: the reconnect's snapshots tell
(:mod:`polyfeed.session.idle`), and a quiet connection's deadline grows up to ``max_quiet_idle_s``
instead of resubscribing it every 15 s for ever; so does that of a connection whose every market has
resolved. Every decision is made in :meth:`MarketSession.data_received`, :meth:`~MarketSession.timer`
and :meth:`~MarketSession.connection_lost` from the times passed in, so a replay decides exactly as the
live stream did.

Checks are bounded per asset in the venue's own time (docs/book-checks.md, "The guarantees"): a burst's
checks run once the connection has brought a message ``settle_after_s`` later by the venue's clock, and
a hash awaiting its trade print fails ``final_settle_after_s`` later, whatever else the connection
carries; messages of one connection come in the venue's order, so a client that falls behind judges
late, never falsely. Resyncs refuse a REST book older than the stream, and are retried with a doubling
pause until the book is live; a token the venue has no book for ends ``CLOSED``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import BookError, FrameDecodeError
from polyfeed.session.base import ChannelSession
from polyfeed.session.events import (
    BookUpdated,
    Disconnected,
    Event,
    MessageReceived,
    Reconnected,
    Resynced,
    ResyncRequested,
    StatusChanged,
)
from polyfeed.session.idle import QuietOrZombie
from polyfeed.wire import (
    BestBidAsk,
    Book,
    InvalidOperation,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    NoNewAssets,
    Notice,
    Pong,
    PriceChange,
    TickSizeChange,
    decode_market,
    encode_market_subscription,
    encode_operation,
)

__all__ = ["MarketSession", "SessionConfig"]

log = logging.getLogger(__name__)
_NS = 1_000_000_000
_NOT_DATA = frozenset({Notice, InvalidOperation, NoNewAssets, NewMarket})
_WITHOUT_SNAPSHOT = (BookStatus.SYNCING, BookStatus.STALE)
_STAMPED = frozenset({PriceChange, Book, LastTradePrice, TickSizeChange, BestBidAsk})
"""Messages about a connection's assets whose timestamps tell the venue's time (not the broadcasts)."""
"""Frames that say nothing about a connection's assets: they do not move its data-idle clock."""


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
    custom_feature_enabled: bool = False
    """Ask for ``best_bid_ask``, ``new_market`` and ``market_resolved`` (spec 1.2); the session uses
    ``market_resolved`` to stop reconnecting a connection whose every market has resolved."""
    max_quiet_idle_s: float = 600.0
    """The longest data-idle deadline: what a connection's deadline grows to, doubling at each reconnect
    whose snapshots show that nothing changed during the silence, and the deadline of a connection whose
    every asset has resolved. It bounds how long a zombie on a quiet connection goes unnoticed (Nautilus
    reconnects a silent market connection after a fixed 60 s, its user connection after 300 s, spec 2).
    ``max_idle_s`` or less turns the growth off."""


@dataclass
class _Resync:
    requested_ns: int
    seen_ms: int | None
    """The timestamp of the newest update the book had applied when the resync was asked for: a REST
    answer older than that would take the book back in time."""
    buffered: list[PriceChange] = field(default_factory=list)


class MarketSession(ChannelSession):
    """The state of one market connection and the books of its assets.

    Args:
        connection_id: this connection's number, carried by every event.
        assets: the token ids this connection subscribes.
        books: the book registry shared with other connections; books of this connection's assets are
            created in it when missing.
        config: timings and budgets.
    """

    def __init__(
        self,
        connection_id: int,
        assets: Iterable[str],
        books: dict[str, OrderBook],
        config: SessionConfig | None = None,
    ) -> None:
        self.config = config or SessionConfig()
        super().__init__(connection_id, self.config.ping_interval_s, self.config.pong_timeout_s)
        self.assets: set[str] = set(assets)
        self.books = books
        for asset in self.assets:
            books.setdefault(asset, OrderBook(asset))
        self.resyncs_requested = 0
        self.pending_resyncs: list[str] = []
        """Assets whose ``ResyncRequested`` the driver has not taken yet (it clears the list): saves the
        driver a scan of every event for the rare request."""
        self._gap_ewma_ns = 0.0
        self._resyncs: dict[str, _Resync] = {}
        self._retries: dict[str, int] = {}  # asset -> when to ask for its resync again (ns)
        self._failures: dict[str, int] = {}  # asset -> resyncs failed in a row
        self._snapshot_due: dict[str, int | None] = {}  # asset -> when its snapshot is overdue (None: unset)
        self._no_snapshot: set[str] = set()  # assets whose snapshot is overdue: REST is asked for them
        self.books_missing = 0
        """Tokens the venue said it has no book for (REST 404): their books are CLOSED."""
        self.resyncs_failed = 0
        """REST answers that could not be used: errors, bodies that are not a book, books older than what
        the stream has shown, timestamps that are not integers. Each is retried with backoff."""
        self._by_market: dict[str, list[str]] = {}  # condition id -> this connection's tokens with a book
        self._tokens = float(self.config.resync_burst)
        self._tokens_at_ns = 0
        self._settle_stage = 2  # 0: bursts may be open, 1: closed but a hash may await its print, 2: done
        # The venue's clock as this connection shows it, and the bursts and hashes awaiting a print that
        # it will close: checks are bounded per asset in the venue's time, whatever else the connection
        # carries and however far behind the client runs (issue 12, items 2 and 14).
        self._unconfirmed = False  # whether this connection's books carry unconfirmed_since_ns
        self._venue_ms = 0
        self._venue_text = ""
        self._message_ms = 0  # the venue time of the message being routed (0: not an integer)
        self._settle_ms = int(self.config.settle_after_s * 1000)
        self._final_ms = int(self.config.final_settle_after_s * 1000)
        self._sweep_ms = max(1, self._settle_ms // 4)
        self._next_sweep_ms = 0
        self._opened: dict[str, int] = {}  # asset -> venue ms of its latest change (its open burst's)
        self._waiting: deque[tuple[int, str, str]] = deque()  # (venue ms, timestamp, asset), oldest first
        self._idle = QuietOrZombie(connection_id, self.config.max_quiet_idle_s)

    # -- connection lifecycle -------------------------------------------------------------------------

    def connection_made(self, now_ns: int) -> list[bytes]:
        """The socket is open: returns the subscription frame, always first (a PING first gets 1008)."""
        self._start_heartbeat(now_ns, ping_now=False)
        due = now_ns + int(self.config.snapshot_timeout_s * _NS)
        self._snapshot_due = {a: due for a in self.assets if self.books[a].status is not BookStatus.CLOSED}
        self._tokens_at_ns = self._tokens_at_ns or now_ns
        return [
            encode_market_subscription(
                sorted(self.assets), custom_feature_enabled=self.config.custom_feature_enabled
            )
        ]

    def connection_lost(self, now_ns: int, reason: str) -> list[Event]:
        """The socket is gone: every book of this connection turns stale."""
        if self._subscribed:  # judged before the books turn stale: only books live at the close compare
            self._idle.connection_lost(self._idle_expired_s, (self.books[a] for a in self.assets))
        self._subscribed = False
        self._opened.clear()  # the books turn stale: what was open is dropped, not judged
        self._waiting.clear()
        if self._unconfirmed:
            self._confirm()  # stale says more
        if self._lost_after_data_ns is None:
            self._lost_after_data_ns = self._last_data_ns if self._last_data_ns is not None else now_ns
        events: list[Event] = []
        for asset in sorted(self.assets):
            book = self.books[asset]
            old = book.status
            book.mark_stale(f"connection lost: {reason}", now_ns // 1_000_000)
            self._status_event(events, asset, old, now_ns)
        events.append(
            Disconnected(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                assets=tuple(sorted(self.assets)),
            )
        )
        return events

    # -- subscriptions --------------------------------------------------------------------------------

    def subscribe(self, assets: Iterable[str]) -> list[bytes]:
        """Add assets in place (an ``operation`` frame; no reply comes back). Assets already here are
        skipped: the venue rejects duplicates."""
        new = sorted(set(assets) - self.assets)
        if not new:
            return []
        self.assets.update(new)
        for asset in new:
            self.books.setdefault(asset, OrderBook(asset))
            self._snapshot_due[asset] = None  # the next timer tick starts its clock
        if not self._subscribed:
            return []  # the next subscription frame carries them
        return [encode_operation("subscribe", assets_ids=new, initial_dump=True)]

    def unsubscribe(self, assets: Iterable[str]) -> list[bytes]:
        gone = sorted(set(assets) & self.assets)
        if not gone:
            return []
        self.assets.difference_update(gone)
        self._idle.unsubscribed(gone)
        for asset in gone:
            self._resyncs.pop(asset, None)
            # Out of ``books``, and closed for whoever kept a reference: nothing keeps it checked any
            # more, so it must not go on saying LIVE (issue 13, item 13).
            book = self.books.pop(asset, None)
            if book is not None:
                book.mark_closed("unsubscribed", self._venue_ms)
        for tokens in self._by_market.values():
            tokens[:] = [a for a in tokens if a in self.assets]
        return [encode_operation("unsubscribe", assets_ids=gone)] if self._subscribed else []

    # -- data -------------------------------------------------------------------------------------------

    def data_received(self, data: bytes | str, now_ns: int) -> list[Event]:
        """One frame: decode, route to books, report. A bad frame is counted and skipped, never fatal."""
        events: list[Event] = []
        try:
            messages = decode_market(data)
        except FrameDecodeError as exc:
            return self._skipped(exc, now_ns)
        for message in messages:
            cls = message.__class__
            if cls is Pong:
                self._ping_outstanding_ns = None
                continue
            # an identity test on the hot path; the rare market_resolved is asked whether it is ours
            if cls not in _NOT_DATA and (
                cls is not MarketResolved or self._resolved_here(cast(MarketResolved, message))
            ):
                self._note_data(now_ns, events)
            events.append(
                MessageReceived(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, message=message
                )
            )
            if cls in _STAMPED:
                ts = message.timestamp  # type: ignore[union-attr]
                if ts != self._venue_text:  # parsed once per timestamp: most messages share the last one
                    self._venue_text = ts
                    ms = int(ts) if ts.isdigit() and ts.isascii() else 0
                    self._message_ms = ms
                    if ms > self._venue_ms:
                        self._venue_ms = ms
            self._route(message, now_ns, events)
        if self._venue_ms >= self._next_sweep_ms:  # a sweep every settle_after_s / 4 of the venue's time
            self._next_sweep_ms = self._venue_ms + self._sweep_ms
            if self._opened or self._waiting:
                self._close_by_venue_time(now_ns, events)
        return events

    def _close_by_venue_time(self, now_ns: int, events: list[Event]) -> None:
        """Run the checks of the bursts the venue's clock has moved past, and fail the hashes whose print
        is overdue in the venue's time. Messages of one connection come in the venue's order, so once a
        message ``settle_after_s`` later has been read, the burst's own messages have all been read too:
        unlike the wall clock, this cannot close a burst whose messages still wait in the socket. Run as a
        sweep (every ``settle_after_s / 4`` of the venue's time), not per message: the bound grows by a
        quarter, the hot path pays one dict store a change."""
        venue = self._venue_ms
        horizon = venue - self._settle_ms
        books = self.books
        opened = self._opened
        for asset, ms in list(opened.items()):
            if ms > horizon:
                continue
            del opened[asset]
            book = books.get(asset)
            if book is not None and book.open_burst is not None and asset in self.assets:
                old = book.status
                book.settle()
                if book.status is not old:
                    self._status_event(events, asset, old, now_ns)
                self._note_awaiting(asset, book)
        waiting = self._waiting
        horizon = venue - self._final_ms
        while waiting and waiting[0][0] <= horizon:
            _, ts, asset = waiting.popleft()
            book = self.books.get(asset)
            if book is not None and book.awaiting_print == ts and asset in self.assets:
                old = book.status
                book.settle(final=True)
                self._status_event(events, asset, old, now_ns)

    def _note_awaiting(self, asset: str, book: OrderBook) -> None:
        awaited = book.awaiting_print
        if awaited is not None:
            self._waiting.append((_ms(awaited) or 0, awaited, asset))

    def _note_data(self, now_ns: int, events: list[Event]) -> None:
        if self._lost_after_data_ns is not None:
            events.append(
                Reconnected(
                    recv_ns=now_ns,
                    seq=self._next_seq(),
                    connection_id=self.connection_id,
                    gap_ns=now_ns - self._lost_after_data_ns,
                    assets=tuple(sorted(self.assets)),
                )
            )
            self._lost_after_data_ns = None
        elif self._last_data_ns is not None:
            gap = now_ns - self._last_data_ns
            self._gap_ewma_ns = gap if not self._gap_ewma_ns else 0.9 * self._gap_ewma_ns + 0.1 * gap
        self._last_data_ns = now_ns
        self._settle_stage = 0
        if self._unconfirmed:
            self._confirm()

    def _confirm(self) -> None:
        self._unconfirmed = False
        for asset in self.assets:
            self.books[asset].unconfirmed_since_ns = None

    def _route(self, message: object, now_ns: int, events: list[Event]) -> None:
        if message.__class__ is PriceChange:
            assets = self.assets
            done: str | None = None
            entries = message.price_changes  # usually two: this token and its complement
            if len(entries) > 2:
                # Each book takes all of its entries at once (apply_price_change): an asset must come
                # here once, even when entries interleave ([A, B, A, B] applied A and B twice each, with
                # four BookUpdated, issue 14 item 3).
                entries = list({e.asset_id: e for e in entries}.values())  # in order of first entry
            for entry in entries:
                asset = entry.asset_id
                if asset == done or asset not in assets:
                    continue
                done = asset
                resync = self._resyncs.get(asset)
                if resync is not None:
                    resync.buffered.append(message)
                    continue
                book = self.books[asset]
                old = book.status
                try:
                    changed = book.apply_price_change(message)
                except BookError as exc:
                    log.warning(
                        "connection %d: book %s could not take a message: %s", self.connection_id, asset, exc
                    )
                    changed = False
                if changed:
                    self._opened[asset] = self._message_ms
                    events.append(
                        BookUpdated(
                            recv_ns=now_ns,
                            seq=self._next_seq(),
                            connection_id=self.connection_id,
                            asset_id=asset,
                        )
                    )
                    # No hash can be awaiting its print here: a change of the book fails one (orderbook).
                if book.status is not old:
                    self._status_event(events, asset, old, now_ns)
            idle = self._idle
            if done is not None and (idle.quiet_idle_s is not None or idle.verdict is not None):
                idle.traded()
        elif isinstance(message, Book):
            asset = message.asset_id
            if asset in self.assets:
                self._resyncs.pop(asset, None)  # a venue snapshot supersedes a pending resync
                self._snapshot_due.pop(asset, None)
                self._no_snapshot.discard(asset)
                self._idle.snapshot(self.books[asset], message)  # before it replaces the book
                self._apply(asset, message, now_ns, events)
                self._index_market(asset, message.market)
                self._note_awaiting(asset, self.books[asset])
        elif isinstance(message, LastTradePrice):
            # Both tokens of a market hash the same trade price text: a print may settle either book.
            # The market index keeps this O(tokens of the market), not O(assets of the connection).
            targets = self._by_market.get(message.market, ())
            own = message.asset_id in self.assets
            if message.asset_id not in targets and own:
                self._apply(message.asset_id, message, now_ns, events, updated=False)
            for asset in targets:
                self._apply(asset, message, now_ns, events, updated=False)
            if own or targets:
                self._idle.traded()
        elif isinstance(message, TickSizeChange):
            if message.asset_id in self.assets:
                self._apply(message.asset_id, message, now_ns, events, updated=False)
                self._idle.traded()
        elif isinstance(message, BestBidAsk):
            if message.asset_id in self.assets:
                self._idle.traded()
        elif isinstance(message, MarketResolved):
            ours = self._resolved_here(message)  # a broadcast to every connection (spec 11.10)
            if ours - self._idle.resolved_assets:
                log.info("connection %d: market %s resolved", self.connection_id, message.market)
                self._idle.resolved(ours)
            for asset in sorted(ours):  # its books end here, never live and wrong (issue 12, item 7)
                self._close_book(asset, f"market resolved (winner {message.winning_outcome})", now_ns, events)

    def _resolved_here(self, message: MarketResolved) -> set[str]:
        """This connection's assets a broadcast ``market_resolved`` names: by token, or by market (the
        market index finds a token of ours should it name only the winner)."""
        ours = {a for a in message.assets_ids if a in self.assets}
        ours.update(self._by_market.get(message.market, ()))
        return ours

    def _index_market(self, asset: str, market: str) -> None:
        if market:
            tokens = self._by_market.setdefault(market, [])
            if asset not in tokens:
                tokens.append(asset)

    def _apply(
        self, asset: str, message: object, now_ns: int, events: list[Event], *, updated: bool = True
    ) -> None:
        book = self.books[asset]
        old = book.status
        try:
            changed = book.apply(message)
        except BookError as exc:
            log.warning("connection %d: book %s could not take a message: %s", self.connection_id, asset, exc)
            changed = False
        if changed and updated:
            events.append(
                BookUpdated(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, asset_id=asset
                )
            )
        self._status_event(events, asset, old, now_ns)

    def _status_event(self, events: list[Event], asset: str, old: BookStatus, now_ns: int) -> None:
        book = self.books[asset]
        if book.status is old:
            return
        events.append(
            StatusChanged(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                asset_id=asset,
                old=old,
                new=book.status,
                reason=book.status_reason,
            )
        )
        if book.status is BookStatus.SUSPECT and asset not in self._resyncs and self._subscribed:
            self._request_resync(asset, book.status_reason, now_ns, events)

    # -- resync ---------------------------------------------------------------------------------------

    def _request_resync(self, asset: str, reason: str, now_ns: int, events: list[Event]) -> None:
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
            log.info(
                "connection %d: resync of %s deferred %.1f s: REST budget spent",
                self.connection_id,
                asset,
                wait_s,
            )
            return
        self._tokens -= 1
        self._retries.pop(asset, None)
        self.resyncs_requested += 1
        self.pending_resyncs.append(asset)
        self._resyncs[asset] = _Resync(now_ns, _ms(self.books[asset].timestamp))
        events.append(
            ResyncRequested(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                asset_id=asset,
                reason=reason,
            )
        )

    def resync_received(self, snapshot: Book, now_ns: int) -> list[Event]:
        """A ``GET /book`` answer: replace the book, then re-apply the updates buffered since the
        request that are newer than the REST book (spec 8.2)."""
        events: list[Event] = []
        asset = snapshot.asset_id
        resync = self._resyncs.pop(asset, None)
        if asset not in self.assets:
            return events
        rest_ms = _ms(snapshot.timestamp)
        buffered = resync.buffered if resync else []
        stamps = [_ms(m.timestamp) for m in buffered]
        refused = None
        if resync is None:
            # No resync waits for this answer: a venue snapshot superseded it while the call was out.
            # Applied, an answer older than that snapshot would take the book back (the long chaos run
            # found 9 books LIVE and wrong at rest this way, with slow REST answers).
            log.info(
                "connection %d: REST book of %s came after a snapshot superseded it",
                self.connection_id,
                asset,
            )
            return events
        if rest_ms is None or None in stamps:
            # Updates that cannot be ordered against the REST book cannot be replayed onto it (issue 12,
            # item 4): the answer is refused, the book stays suspect, and the resync is tried again.
            refused = f"a timestamp that is not an integer (REST {snapshot.timestamp!r})"
        elif resync.seen_ms is not None and rest_ms < resync.seen_ms:
            # A REST book older than updates already applied would take the book back in time, and
            # the buffered updates cannot bring it forward again (issue 12, item 3).
            refused = f"the REST book ({rest_ms}) is older than the stream's updates ({resync.seen_ms})"
        if refused is not None:
            log.warning("connection %d: resync of %s refused: %s", self.connection_id, asset, refused)
            self.resync_failed(asset, now_ns)
            return events
        self._failures.pop(asset, None)
        self._snapshot_due.pop(asset, None)
        self._no_snapshot.discard(asset)
        self._idle.forget((asset,))  # the book held at the close is gone
        self._apply(asset, snapshot, now_ns, events)
        self._index_market(asset, snapshot.market)
        replayed = 0
        assert rest_ms is not None
        for message, stamp in zip(buffered, stamps, strict=True):
            if stamp is not None and stamp > rest_ms:
                self._apply(asset, message, now_ns, events)
                replayed += 1
        events.append(
            Resynced(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                asset_id=snapshot.asset_id,
                replayed=replayed,
            )
        )
        return events

    def book_missing(self, asset: str, now_ns: int) -> list[Event]:
        """REST ``/book`` answered 404: the venue has no book for this token (its market resolved, or it
        never had one, spec 8.1). The book is closed for good rather than retried for ever (issue 12,
        items 7 and 13)."""
        events: list[Event] = []
        self._resyncs.pop(asset, None)
        if asset in self.assets:
            self.books_missing += 1
            self._close_book(
                asset, "the venue has no book for this token (resolved, or unknown)", now_ns, events
            )
        return events

    def _close_book(self, asset: str, reason: str, now_ns: int, events: list[Event]) -> None:
        book = self.books[asset]
        self._retries.pop(asset, None)
        self._failures.pop(asset, None)
        self._snapshot_due.pop(asset, None)
        self._no_snapshot.discard(asset)
        if book.status is BookStatus.CLOSED:
            return
        old = book.status
        book.mark_closed(reason, now_ns // 1_000_000)
        self._status_event(events, asset, old, now_ns)

    def resync_failed(self, asset: str, now_ns: int) -> None:
        """The REST call failed, or its answer could not be used: the book stays suspect, and the resync
        is asked for again after a pause that doubles at each failure (issue 12, item 5)."""
        self._resyncs.pop(asset, None)
        self.resyncs_failed += 1
        failures = self._failures[asset] = self._failures.get(asset, 0) + 1
        config = self.config
        pause_s = min(config.max_resync_retry_s, config.resync_retry_s * 2 ** min(failures - 1, 30))
        self._retries[asset] = now_ns + int(pause_s * _NS)

    # -- time -------------------------------------------------------------------------------------------

    @property
    def zombies_detected(self) -> int:
        """Data-idle closes after which a fresh snapshot differed from the book held at the close: updates
        were missed while the socket looked alive (a zombie connection, spec 11.1)."""
        return self._idle.zombies_detected

    @property
    def quiet_confirmed(self) -> int:
        """Data-idle closes after which every fresh snapshot equalled the book held at the close: the
        market was quiet, and the deadline grew."""
        return self._idle.quiet_confirmed

    @property
    def resolved_assets(self) -> set[str]:
        """This connection's assets whose market has resolved (``market_resolved``, custom features)."""
        return self._idle.resolved_assets

    @property
    def idle_deadline_s(self) -> float:
        """The current data-idle deadline of this connection: the adaptive one, grown while reconnects
        show the market quiet, ``max_quiet_idle_s`` once every asset here has resolved."""
        return self._idle.deadline_s(self._adaptive_idle_s(), self.assets)

    def _adaptive_idle_s(self) -> float:
        config = self.config
        return min(config.max_idle_s, max(config.min_idle_s, config.idle_factor * self._gap_ewma_ns / _NS))

    def next_timer_ns(self) -> int:
        """When :meth:`timer` next has something to do: a PING, a deadline, or closing bursts."""
        config = self.config
        candidates = self._heartbeat_deadlines(self.idle_deadline_s)
        if not self._unconfirmed and self._last_data_ns is not None:
            candidates.append(self._last_data_ns + int(self._adaptive_idle_s() * _NS))
        if self._retries:
            candidates.append(min(self._retries.values()))
        if self._snapshot_due:  # an unset clock (None) is started at the next tick
            candidates.append(min(0 if due is None else due for due in self._snapshot_due.values()))
        if self._settle_stage < 2 and self._last_data_ns is not None:
            wait_s = config.settle_after_s if self._settle_stage == 0 else config.final_settle_after_s
            candidates.append(self._last_data_ns + int(wait_s * _NS))
        return min(candidates)

    def timer(self, now_ns: int) -> tuple[list[bytes], list[Event]]:
        """Heartbeat, deadlines and burst settling; returns frames to send and events."""
        frames: list[bytes] = []
        events: list[Event] = []
        config = self.config
        if not self._subscribed:
            return frames, events
        frames = self._heartbeat(now_ns, self.idle_deadline_s, " (zombie connection)")
        last = self._last_data_ns
        if not self._unconfirmed and last is not None:
            short_ns = last + int(self._adaptive_idle_s() * _NS)
            if now_ns >= short_ns and self.close_reason is None:
                # Past the usual deadline, kept open by a grown one: say so on every book, so that a
                # user can tell "quiet" from "verified" (issue 12, item 6); the next data clears it.
                self._unconfirmed = True
                for asset in self.assets:
                    self.books[asset].unconfirmed_since_ns = short_ns
        if self._last_data_ns is not None and self._settle_stage < 2:
            quiet_s = (now_ns - self._last_data_ns) / _NS
            final = quiet_s >= config.final_settle_after_s
            if final or (self._settle_stage == 0 and quiet_s >= config.settle_after_s):
                self._opened.clear()
                if final:
                    self._waiting.clear()
                for asset in sorted(self.assets):
                    book = self.books[asset]
                    old = book.status
                    book.settle(final=final)
                    self._status_event(events, asset, old, now_ns)
                    if not final:
                        self._note_awaiting(asset, book)
                self._settle_stage = 2 if final else 1
        if self._settle_stage == 2 and self._idle.verdict is not None:
            self._idle.settled()  # the reconnect's snapshots are over, some may never come
        if self._snapshot_due:
            self._check_snapshots(now_ns, events)
        if self._retries:
            self._retry_resyncs(now_ns, events)
        return frames, events

    def _check_snapshots(self, now_ns: int, events: list[Event]) -> None:
        """Books still without a snapshot ``snapshot_timeout_s`` after subscribing: ask REST whether the
        venue has a book for them; a 404 closes them (issue 12, item 13)."""
        timeout_ns = int(self.config.snapshot_timeout_s * _NS)
        for asset, due_ns in sorted(self._snapshot_due.items()):
            if due_ns is None:
                self._snapshot_due[asset] = now_ns + timeout_ns
            elif due_ns <= now_ns:
                del self._snapshot_due[asset]
                book = self.books.get(asset)
                if asset in self.assets and book is not None and book.status in _WITHOUT_SNAPSHOT:
                    self._no_snapshot.add(asset)
                    if asset not in self._resyncs:
                        reason = f"no snapshot {self.config.snapshot_timeout_s:g} s after subscribing"
                        self._request_resync(asset, reason, now_ns, events)

    def _retry_resyncs(self, now_ns: int, events: list[Event]) -> None:
        """Ask again for the resyncs that failed or that the budget deferred, once their time has come,
        while their book still needs one."""
        for asset, due_ns in sorted(self._retries.items()):
            if due_ns > now_ns:
                continue
            del self._retries[asset]
            book = self.books.get(asset)
            overdue = asset in self._no_snapshot and book is not None and book.status in _WITHOUT_SNAPSHOT
            if asset not in self.assets or book is None or not (book.status is BookStatus.SUSPECT or overdue):
                self._failures.pop(asset, None)  # live again, stale (the reconnect resyncs it), or gone
            elif asset not in self._resyncs:
                self._request_resync(asset, book.status_reason, now_ns, events)


def _ms(timestamp: str | None) -> int | None:
    """A venue timestamp (ms text) as an integer; ``None`` when it is missing or not an integer."""
    if timestamp is None or not timestamp.isascii() or not timestamp.isdigit():
        return None
    return int(timestamp)
