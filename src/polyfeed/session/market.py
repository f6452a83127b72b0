"""One market-channel connection's protocol state, sans I/O: bytes and time in; frames, events and
requests pulled out (the contract: :mod:`polyfeed.session.base`).

The connection driver calls :meth:`MarketSession.connection_made`, :meth:`~MarketSession.receive_data`
for every frame, :meth:`~MarketSession.timer` at :meth:`~MarketSession.next_timer_ns`, and
:meth:`~MarketSession.connection_lost`; after each it sends ``data_to_send()``, hands
``events_received()`` to the user, and fetches ``GET /book`` for each :class:`ResyncRequested` of
``requests_received()``, handing the answer back (:meth:`~MarketSession.resync_received`,
:meth:`~MarketSession.book_missing`, :meth:`~MarketSession.resync_failed`). It closes the connection
when :attr:`~MarketSession.close_reason` is set. Nothing here reads a clock or touches a socket, so live
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
resolved. Every decision is made in an input from the times passed in, so a replay decides exactly as
the live stream did.

Checks are bounded per asset in the venue's own time (:mod:`polyfeed.session.settle`). Resyncs
(:mod:`polyfeed.session.resync`) refuse a REST book older than the stream, and are retried with a
doubling pause until the book is live; a token the venue has no book for ends ``CLOSED``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable
from typing import cast

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import BookError, FrameDecodeError
from polyfeed.session.config import SessionConfig
from polyfeed.session.events import (
    BookUpdated,
    Disconnected,
    Event,
    MessageReceived,
    Reconnected,
    StatusChanged,
)
from polyfeed.session.idle import QuietOrZombie
from polyfeed.session.resync import ResyncingSession, ResyncSchedule, SnapshotWatch
from polyfeed.session.settle import BurstClock
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
    PriceChangeEntry,
    TickSizeChange,
    decode_market,
    encode_market_subscription,
    encode_operation,
    timestamp_ms,
)

__all__ = ["LAG_BUCKETS_MS", "MarketSession", "SessionConfig"]

log = logging.getLogger(__name__)
_NS = 1_000_000_000
_NOT_DATA = frozenset({Notice, InvalidOperation, NoNewAssets, NewMarket})
"""Frames that say nothing about a connection's assets: they do not move its data-idle clock."""
_STAMPED = frozenset({PriceChange, Book, LastTradePrice, TickSizeChange, BestBidAsk})
"""Messages about a connection's assets whose timestamps tell the venue's time (not the broadcasts)."""
LAG_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
"""Upper bounds (ms, inclusive) of :attr:`MarketSession.lag_counts`' buckets; the last counts the rest."""


class MarketSession(ResyncingSession):
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
        self._hash_every_ms = int(self.config.hash_interval_s * 1000)
        for asset in self.assets:
            self._book(asset)
        self.resyncs = ResyncSchedule(self.config)
        self.books_missing = 0
        """Tokens the venue said it has no book for (REST 404): their books are CLOSED."""
        self._gap_ewma_ns = 0.0
        self._snapshots = SnapshotWatch(self.config.snapshot_timeout_s)
        self._by_market: dict[str, list[str]] = {}  # condition id -> this connection's tokens with a book
        self._settle_stage = 2  # 0: bursts may be open, 1: closed but a hash may await its print, 2: done
        self._unconfirmed = False  # whether this connection's books carry unconfirmed_since_ns
        self._bursts = BurstClock(self.config.settle_after_s, self.config.final_settle_after_s)
        self._opened = self._bursts.opened  # written on the hot path
        self._venue_text = ""  # the last timestamp text parsed
        self._ahead = False  # receive_snapshot_ahead: the snapshot replaces its book without comparison
        self._message_ms = 0  # the venue time of the message being routed (0: not an integer)
        self._idle = QuietOrZombie(connection_id, self.config.max_quiet_idle_s)
        self.lag_counts = [0] * (len(LAG_BUCKETS_MS) + 1)
        """Receive time minus the venue's timestamp, counted once per venue timestamp (at its first
        message: a burst shares one), by bucket of :data:`LAG_BUCKETS_MS` (not cumulative). A clock
        behind the venue's counts in the first bucket, and subtracts from :attr:`lag_sum_ms`."""
        self.lag_sum_ms = 0

    def _book(self, asset: str) -> None:
        """This connection's book of ``asset``, created if missing, checked on this session's schedule."""
        book = self.books.get(asset)
        if book is None:
            book = self.books[asset] = OrderBook(asset)
        book.hash_every_ms = self._hash_every_ms

    @property
    def resyncs_requested(self) -> int:
        """``GET /book`` resyncs asked of the driver."""
        return self.resyncs.requested

    @property
    def resyncs_failed(self) -> int:
        """REST answers that could not be used: errors, bodies that are not a book, books older than what
        the stream has shown, timestamps that are not integers. Each is retried with backoff."""
        return self.resyncs.failed

    # -- connection lifecycle -------------------------------------------------------------------------

    def connection_made(self, now_ns: int) -> None:
        """The socket is open: the subscription frames are sent first (a PING first gets 1008), at most
        ``config.subscribe_batch`` assets each."""
        self._start_heartbeat(now_ns, ping_now=False)
        closed = BookStatus.CLOSED
        self._snapshots.expect(
            (a for a in self.assets if self.books[a].status is not closed), now_ns, only=True
        )
        self.resyncs.start_clock(now_ns)
        self._send_subscriptions(sorted(self.assets), opening=True)

    def connection_lost(self, now_ns: int, reason: str) -> None:
        """The socket is gone: every book of this connection turns stale."""
        if self._subscribed:  # judged before the books turn stale: only books live at the close compare
            self._idle.connection_lost(self._idle_expired_s, (self.books[a] for a in self.assets))
        self._subscribed = False
        self._bursts.clear()  # the books turn stale: what was open is dropped, not judged
        if self._unconfirmed:
            self._confirm()  # stale says more
        if self._lost_after_data_ns is None:
            self._lost_after_data_ns = self._last_data_ns if self._last_data_ns is not None else now_ns
        for asset in sorted(self.assets):
            book = self.books[asset]
            old = book.status
            book.mark_stale(f"connection lost: {reason}", now_ns // 1_000_000)
            self._status_event(asset, old, now_ns)
        self._events.append(
            Disconnected(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                assets=tuple(sorted(self.assets)),
            )
        )

    # -- subscriptions --------------------------------------------------------------------------------

    def subscribe(self, assets: Iterable[str], now_ns: int) -> None:
        """Add assets in place (``operation`` frames of at most ``config.subscribe_batch`` assets; no reply
        comes back). Assets already here are skipped: the venue rejects duplicates."""
        new = sorted(set(assets) - self.assets)
        if not new:
            return
        self.assets.update(new)
        for asset in new:
            self._book(asset)
        self._snapshots.expect(new, now_ns)
        if self._subscribed:  # else the next subscription frame carries them
            self._send_subscriptions(new, opening=False)

    def _send_subscriptions(self, assets: list[str], *, opening: bool) -> None:
        """Frames subscribing ``assets``, at most ``config.subscribe_batch`` each: on ``opening`` the
        connection's one ``type`` frame first (sent even with no asset), then ``operation`` frames, each
        of which brings its own initial dump (spec 1.3)."""
        batch = self.config.subscribe_batch or len(assets) or 1
        for start in range(0, max(1, len(assets)), batch):
            chunk = assets[start : start + batch]
            if opening and not start:
                custom = self.config.custom_feature_enabled
                self._to_send.append(encode_market_subscription(chunk, custom_feature_enabled=custom))
            else:
                self._to_send.append(encode_operation("subscribe", assets_ids=chunk, initial_dump=True))

    def unsubscribe(self, assets: Iterable[str], now_ns: int) -> None:
        """Drop assets: their books leave ``books`` and are marked CLOSED."""
        gone = sorted(set(assets) & self.assets)
        if not gone:
            return
        self.assets.difference_update(gone)
        self._idle.unsubscribed(gone)
        for asset in gone:
            self.resyncs.pending.pop(asset, None)
            # Out of ``books``, and closed for whoever kept a reference: nothing keeps it checked any
            # more, so it must not go on saying LIVE (issue 13, item 13).
            book = self.books.pop(asset, None)
            if book is not None and book.status is not BookStatus.CLOSED:  # a resolved one keeps its why
                book.mark_closed("unsubscribed", now_ns // 1_000_000)
        for tokens in self._by_market.values():
            tokens[:] = [a for a in tokens if a in self.assets]
        if self._subscribed:
            self._to_send.append(encode_operation("unsubscribe", assets_ids=gone))

    # -- data -------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes | str, now_ns: int) -> None:
        """One frame: decode, route to books, report. A bad frame is counted and skipped, never fatal."""
        self.bytes_received += len(data)
        try:
            messages = decode_market(data)
        except FrameDecodeError as exc:
            self._skipped(exc, now_ns)
            return
        self.messages_received += len(messages)
        events = self._events
        bursts = self._bursts
        for message in messages:
            cls = message.__class__
            if cls is Pong:
                self._ping_outstanding_ns = None
                continue
            # an identity test on the hot path; the rare market_resolved is asked whether it is ours
            if cls not in _NOT_DATA and (
                cls is not MarketResolved or self._resolved_here(cast(MarketResolved, message))
            ):
                self._note_data(now_ns)
            events.append(
                MessageReceived(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, message=message
                )
            )
            if cls in _STAMPED:
                ts = message.timestamp  # type: ignore[union-attr]
                if ts != self._venue_text:  # parsed once per timestamp: most messages share the last one
                    self._venue_text = ts
                    ms = int(ts) if ts.isdigit() and ts.isascii() else 0  # timestamp_ms, inlined
                    self._message_ms = ms
                    if ms > bursts.venue_ms:
                        bursts.venue_ms = ms
                    if ms:  # the lag, once per timestamp as the parse: no cost on most messages
                        lag_ms = now_ns // 1_000_000 - ms
                        self.lag_counts[bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1
                        self.lag_sum_ms += lag_ms
            if cls is PriceChange:
                self._price_change(cast(PriceChange, message), now_ns, events)
            else:
                self._route(message, now_ns)
        if bursts.sweep_due():
            bursts.sweep(self.books, self.assets, lambda asset, old: self._status_event(asset, old, now_ns))

    # -- inputs from a relaying source (polyfeed.fanout: a collector between the venue and this session) --

    def gap_reported(self, assets: Iterable[str], reason: str, now_ns: int) -> None:
        """The source upstream lost these books' data (a fan-out collector's ``gap``: its venue connection
        dropped, or its messages could not be published): they turn stale, as on a lost connection, until
        a snapshot comes (the collector sends one once its book is live again)."""
        for asset in sorted(set(assets) & self.assets):
            book = self.books[asset]
            if book.status is BookStatus.CLOSED or book.status is BookStatus.STALE:
                continue
            old = book.status
            book.mark_stale(reason, now_ns // 1_000_000)
            self._status_event(asset, old, now_ns)

    def books_closed(self, assets: Iterable[str], reason: str, now_ns: int) -> None:
        """The source upstream closed these books for good (a fan-out collector's book turned CLOSED: its
        market resolved, or the venue has no book for the token)."""
        for asset in sorted(set(assets) & self.assets):
            self._close_book(asset, reason, now_ns)

    def source_alive(self, now_ns: int) -> None:
        """The source upstream says it runs (a fan-out collector's heartbeat): the connection is not idle,
        though no book changed. The data-idle deadline then means "the source went silent"."""
        self._note_data(now_ns)

    def receive_snapshot_ahead(self, data: bytes | str, now_ns: int) -> None:
        """A frame holding a ``book`` snapshot the source took ahead of the messages it relays (a fan-out
        collector that joined, or resynced from REST, while the changes before its snapshot were still on
        their way from another, lagging, collector): it replaces its book as any snapshot does, but is
        not compared with it (see :meth:`polyfeed.book.OrderBook.replace`)."""
        self._ahead = True
        try:
            self.receive_data(data, now_ns)
        finally:
            self._ahead = False

    def receive_unapplied(self, data: bytes | str, now_ns: int) -> None:
        """A frame whose messages the books already hold (a fan-out consumer that resumed behind a newer
        snapshot): reported as :class:`MessageReceived`, in order, and not applied again."""
        try:
            messages = decode_market(data)
        except FrameDecodeError as exc:
            self._skipped(exc, now_ns)
            return
        for message in messages:
            self._events.append(
                MessageReceived(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, message=message
                )
            )

    def _note_data(self, now_ns: int) -> None:
        if self._lost_after_data_ns is not None:
            self._events.append(
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

    def _price_change(self, message: PriceChange, now_ns: int, events: list[Event]) -> None:
        """The hot path: each of this connection's books named by the message takes its entries once."""
        assets = self.assets
        done: str | None = None
        entries = message.price_changes  # usually two: this token and its complement
        own: dict[str, PriceChange] | None = None
        if len(entries) > 2:
            # The entries grouped by asset once: each book takes its own entries, all at once, and comes
            # here once even when they interleave ([A, B, A, B] was applied twice to each book, with four
            # BookUpdated, issue 14 item 3), instead of each book scanning the whole message.
            groups: dict[str, list[PriceChangeEntry]] = {}
            for e in entries:
                groups.setdefault(e.asset_id, []).append(e)
            own = {
                a: msgspec.structs.replace(message, price_changes=g) for a, g in groups.items() if a in assets
            }
            entries = [g[0] for g in groups.values()]  # in order of first entry
        pending = self.resyncs.pending
        for entry in entries:
            asset = entry.asset_id
            if asset == done or asset not in assets:
                continue
            done = asset
            change = own[asset] if own is not None else message
            resync = pending.get(asset) if pending else None
            if resync is not None:
                resync.buffered.append(change)
                continue
            book = self.books[asset]
            old = book.status
            try:
                changed = book.apply_price_change(change)
            except BookError as exc:
                log.warning(
                    "connection %d: book %s could not take a message: %s", self.connection_id, asset, exc
                )
                changed = False
            if changed:
                self._opened[asset] = self._message_ms
                events.append(
                    BookUpdated(
                        recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, asset_id=asset
                    )
                )
                # No hash can be awaiting its print here: a change of the book fails one (orderbook).
            if book.status is not old:
                self._status_event(asset, old, now_ns)
        idle = self._idle
        if done is not None and (idle.quiet_idle_s is not None or idle.verdict is not None):
            idle.traded()

    def _route(self, message: object, now_ns: int) -> None:
        """Every message but ``price_change``."""
        if isinstance(message, Book):
            asset = message.asset_id
            if asset in self.assets:
                self.resyncs.pending.pop(asset, None)  # a venue snapshot supersedes a pending resync
                self._snapshots.arrived(asset)
                self._idle.snapshot(self.books[asset], message)  # before it replaces the book
                self._apply(asset, message, now_ns, replace=self._ahead)
                self._index_market(asset, message.market)
                self._bursts.note_awaiting(asset, self.books[asset])
        elif isinstance(message, LastTradePrice):
            # Both tokens of a market hash the same trade price text: a print may settle either book.
            # The market index keeps this O(tokens of the market), not O(assets of the connection).
            targets = self._by_market.get(message.market, ())
            own = message.asset_id in self.assets
            if message.asset_id not in targets and own:
                self._apply(message.asset_id, message, now_ns, updated=False)
            for asset in targets:
                self._apply(asset, message, now_ns, updated=False)
            if own or targets:
                self._idle.traded()
        elif isinstance(message, TickSizeChange):
            if message.asset_id in self.assets:
                self._apply(message.asset_id, message, now_ns, updated=False)
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
                self._close_book(asset, f"market resolved (winner {message.winning_outcome})", now_ns)

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
        self, asset: str, message: object, now_ns: int, *, updated: bool = True, replace: bool = False
    ) -> None:
        book = self.books[asset]
        old = book.status
        try:
            if replace:
                book.replace(message)  # type: ignore[arg-type]
                changed = True
            else:
                changed = book.apply(message)
        except BookError as exc:
            log.warning("connection %d: book %s could not take a message: %s", self.connection_id, asset, exc)
            changed = False
        if changed and message.__class__ is PriceChange:  # a change re-applied after a resync: a burst
            ts = message.timestamp
            self._opened[asset] = timestamp_ms(ts) or 0
        if changed and updated:
            self._events.append(
                BookUpdated(
                    recv_ns=now_ns, seq=self._next_seq(), connection_id=self.connection_id, asset_id=asset
                )
            )
        self._status_event(asset, old, now_ns)

    def _status_event(self, asset: str, old: BookStatus, now_ns: int) -> None:
        book = self.books[asset]
        if book.status is old:
            return
        self._events.append(
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
        if book.status is BookStatus.SUSPECT and asset not in self.resyncs.pending and self._subscribed:
            self._request_resync(asset, book.status_reason, now_ns)

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
        retry_ns = self.resyncs.next_due_ns()
        if retry_ns is not None:
            candidates.append(retry_ns)
        snapshot_ns = self._snapshots.next_due_ns()
        if snapshot_ns is not None:
            candidates.append(snapshot_ns)
        if self._settle_stage < 2 and self._last_data_ns is not None:
            wait_s = config.settle_after_s if self._settle_stage == 0 else config.final_settle_after_s
            candidates.append(self._last_data_ns + int(wait_s * _NS))
        return min(candidates)

    def timer(self, now_ns: int) -> None:
        """Heartbeat, deadlines, burst settling and resync retries."""
        config = self.config
        if not self._subscribed:
            return
        self._heartbeat(now_ns, self.idle_deadline_s, " (zombie connection)")
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
                # Only the books with something pending: not every book of the connection (500 of them,
                # at each quiet moment, cost 13% of a whole-market run's CPU, issue 15).
                pending = self._bursts.pending_assets() & self.assets
                self._bursts.clear(waiting=final)
                for asset in sorted(pending):
                    book = self.books[asset]
                    old = book.status
                    book.settle(final=final)
                    book.verify_deferred()  # the connection is quiet: checking costs nothing anyone waits for
                    self._status_event(asset, old, now_ns)
                    if not final:
                        self._bursts.note_awaiting(asset, book)
                self._settle_stage = 2 if final else 1
        if self._settle_stage == 2 and self._idle.verdict is not None:
            self._idle.settled()  # the reconnect's snapshots are over, some may never come
        self._check_snapshots(now_ns)
        for asset in self.resyncs.due(now_ns):
            self._retry_resync(asset, now_ns)
