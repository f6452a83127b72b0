"""The collector: a market stream's books, published on NATS JetStream for every process and machine.

:class:`Collector` turns a :class:`polyfeed.stream.MarketStream`'s events into the messages of
:mod:`polyfeed.fanout.schema` (one subject a book; the venue's messages narrowed to the book, under ids
derived from their content) and keeps the key-value bucket's snapshots fresh; :func:`publish` is the whole
job, as ``polyfeed publish`` runs it.

What a consumer can trust, and why:

- every venue message about a followed book is published, in the venue's order, with its hash: a consumer
  checks the book with the venue's hashes, not the collector's word;
- whenever the collector's own book is replaced (a resync from REST), its snapshot is published;
- whenever the collector loses a book's data (its venue connection dropped, or messages could not be
  published), a ``gap`` message says so, and a snapshot follows once the book is live again;
- the key-value bucket holds each live book at most ``snapshot_interval_s`` old (at once after it turns
  live), with the stream sequence it includes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.fanout.jetstream import StreamLayout, connect, ensure_layout, require_jetstream
from polyfeed.fanout.publisher import Publisher
from polyfeed.fanout.schema import (
    Envelope,
    Heartbeat,
    book_subject,
    encode_envelope,
    encode_heartbeat,
    heartbeat_subject,
    message_id,
)
from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.net.rest import fetch_books
from polyfeed.net.transport import http_session
from polyfeed.session import (
    Disconnected,
    Event,
    MessageReceived,
    Resynced,
    SessionConfig,
    StatusChanged,
)
from polyfeed.stream.market import MarketStream
from polyfeed.venue import Venue
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceChangeEntry, TickSizeChange

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["Collector", "PublishSummary", "default_collector_name", "publish"]

log = logging.getLogger("polyfeed.fanout")

_encode = msgspec.json.Encoder().encode
_LIVE = BookStatus.LIVE
_NO_LABEL = ("", "")


def _settled(book: OrderBook) -> bool:
    """Between bursts, with no hash waiting (for a print, or for its turn): a snapshot taken in a burst's
    middle holds half of it, and the hash the burst's end checks needs the rest."""
    return book.open_burst is None and book.awaiting_print is None and book.unverified_claim is None


def default_collector_name() -> str:
    """``host-pid``: what a collector calls itself unless told."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Collector:
    """Publishes what a market stream sees (see the module's docstring).

    Args:
        publisher: where messages go.
        books: the stream's books (``stream.books``), read for snapshots.
        collector: this collector's name (in every message, the heartbeats and the bucket's values).
        snapshot_interval_s: how often, at most, a changed live book's snapshot is rewritten in the bucket.
        heartbeat_s: how often the collector says it runs, on ``<prefix>.heartbeat.<collector>``.
        quiet_refresh_s: how long a live book with no message keeps its value in the bucket before it is
            written again at the stream's newest sequence (for late consumers' start).
        shard: ``(I, N)`` if the collector follows a shard (said in its heartbeats: a consumer marks the
            books of a shard no collector is heard from stale).
    """

    def __init__(
        self,
        publisher: Publisher,
        books: Callable[[], dict[str, OrderBook]],
        *,
        collector: str,
        snapshot_interval_s: float = 10.0,
        heartbeat_s: float = 1.0,
        shard: tuple[int, int] | None = None,
        quiet_refresh_s: float = 60.0,
    ) -> None:
        self.shard = shard
        self.quiet_refresh_s = quiet_refresh_s
        self.publisher = publisher
        self.layout = publisher.layout
        self._books = books
        self.collector = collector
        self.snapshot_interval_s = snapshot_interval_s
        self.heartbeat_s = heartbeat_s
        self.published = 0
        """Messages handed to the publisher (venue messages, snapshots, statuses and gaps)."""
        self.gaps = 0
        """``gap`` messages published (a venue connection lost, or messages that could not be published)."""
        self._prefix = self.layout.prefix
        self._subjects: dict[str, str] = {}
        self._ordinal: dict[str, tuple[str, int]] = {}
        self._changed: set[str] = set()  # books with messages since their last snapshot in the bucket
        self._due: set[str] = set()  # books whose snapshot is written at the next round, whatever its age
        self._written_s: dict[str, float] = {}
        self._by_market: dict[str, list[str]] = {}  # condition id -> followed tokens (for prints)
        self._next_quiet_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        """Set when the collector stops: its streams' orderly close is no gap (consumers learn of the stop
        from the heartbeats' silence; another collector of the shard may go on)."""

    @property
    def books_in_bucket(self) -> set[str]:
        """The books whose snapshot this collector has put in the bucket at least once."""
        return set(self._written_s)

    # -- events in --------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The stream's ``on_event``: every event, in order, on the event loop."""
        cls = type(event)
        if cls is MessageReceived:
            message = event.message  # type: ignore[attr-defined]
            kind = message.__class__
            if kind is PriceChange:
                self._price_change(message, event.recv_ns)
            elif kind is Book:
                self._venue_snapshot(message, event.recv_ns)
            elif kind is LastTradePrice:
                self._trade(message, event.recv_ns)
            elif kind is TickSizeChange:
                self._venue_message("tick", message.asset_id, message.market, message, event.recv_ns)
        elif cls is StatusChanged:
            self._status(event)  # type: ignore[arg-type]
        elif cls is Resynced:
            asset = event.asset_id  # type: ignore[attr-defined]
            book = self._books().get(asset)
            if book is not None:
                self._own_snapshot(book, event.recv_ns)
        elif cls is Disconnected and not self.closing:
            reason = f"the collector's venue connection was lost: {event.reason}"  # type: ignore[attr-defined]
            for asset in event.assets:  # type: ignore[attr-defined]
                self._gap(asset, reason, event.recv_ns)

    def _price_change(self, message: PriceChange, recv_ns: int) -> None:
        books = self._books()
        entries = message.price_changes
        first = entries[0].asset_id if entries else ""
        if all(e.asset_id == first for e in entries):
            if first in books:
                self._venue_message("change", first, message.market, message, recv_ns)
            return
        by_asset: dict[str, list[PriceChangeEntry]] = {}
        for entry in entries:
            if entry.asset_id in books:
                by_asset.setdefault(entry.asset_id, []).append(entry)
        for asset, own in by_asset.items():
            narrowed = PriceChange(market=message.market, timestamp=message.timestamp, price_changes=own)
            self._venue_message("change", asset, message.market, narrowed, recv_ns)

    def _trade(self, message: LastTradePrice, recv_ns: int) -> None:
        """A print, on the subject of every followed token of its market: it settles the hashes of both
        (the venue hashes a book with its market's last trade price, spec 7.3), so a consumer of the other
        token alone needs it too. ``token`` says which one traded."""
        market = message.market
        books = self._books()
        targets = self._by_market.get(market)
        if targets is None or message.asset_id not in targets:
            by_market: dict[str, list[str]] = {}
            self._by_market = by_market
            for asset, book in books.items():
                by_market.setdefault(book.market, []).append(asset)
            targets = by_market.get(market)
        if not targets or message.asset_id not in targets:
            targets = [message.asset_id]
        for asset in targets:
            token = "" if asset == message.asset_id else message.asset_id
            self._venue_message("trade", asset, market, message, recv_ns, token=token)

    def _venue_message(
        self,
        kind: str,
        asset: str,
        market: str,
        message: PriceChange | LastTradePrice | TickSizeChange,
        recv_ns: int,
        *,
        token: str = "",
    ) -> None:
        if asset not in self._books():
            return
        body = _encode(message)
        ts = message.timestamp
        previous = self._ordinal.get(asset)
        ordinal = previous[1] + 1 if previous is not None and previous[0] == ts else 0
        self._ordinal[asset] = (ts, ordinal)
        self._put(kind, asset, market, recv_ns, body, message_id(asset, ts, ordinal, body), token=token)

    def _venue_snapshot(self, message: Book, recv_ns: int) -> None:
        book = self._books().get(message.asset_id)
        if book is None:
            return
        if message.min_order_size is None or message.neg_risk is None or message.tick_size is None:
            # The venue's hash covers min_order_size and neg_risk, which its WebSocket never sends (and
            # tick_size, missing from December 2025's snapshots, spec 7.3): a live client reads them from
            # REST. The collector is its consumers' REST: it fills them in from its book's metadata.
            message = msgspec.structs.replace(
                message,
                tick_size=message.tick_size if message.tick_size is not None else book.tick_size,
                min_order_size=(
                    message.min_order_size if message.min_order_size is not None else book.min_order_size
                ),
                neg_risk=message.neg_risk if message.neg_risk is not None else book.neg_risk,
            )
        body = _encode(message)
        msg_id = message_id(message.asset_id, message.timestamp, "s", body)
        self._put("snapshot", message.asset_id, message.market, recv_ns, body, msg_id)

    def _own_snapshot(self, book: OrderBook, recv_ns: int) -> None:
        """The collector's book as a snapshot (after a resync, or to mend a gap)."""
        snapshot = book.to_snapshot()
        body = _encode(snapshot)
        msg_id = message_id(book.asset_id, snapshot.timestamp, "s", body)
        self._put("snapshot", book.asset_id, book.market, recv_ns, body, msg_id)
        self._due.add(book.asset_id)

    def _status(self, event: StatusChanged) -> None:
        asset = event.asset_id
        book = self._books().get(asset)
        if book is None:
            return
        envelope = Envelope(
            kind="status",
            asset_id=asset,
            market=book.market,
            recv_ns=event.recv_ns,
            collector=self.collector,
            old=event.old.value,
            new=event.new.value,
            reason=event.reason,
        )
        self._send(asset, book.market, encode_envelope(envelope), None)
        if event.new is _LIVE:
            self._due.add(asset)
        elif event.new is BookStatus.CLOSED:  # resolved, or no book at the venue: no snapshot to start from
            self.publisher.delete_snapshot(asset)
            self._changed.discard(asset)
            self._due.discard(asset)

    def _gap(self, asset: str, reason: str, recv_ns: int) -> None:
        book = self._books().get(asset)
        market = book.market if book is not None else ""
        envelope = Envelope(
            kind="gap",
            asset_id=asset,
            market=market,
            recv_ns=recv_ns,
            collector=self.collector,
            reason=reason,
        )
        self.gaps += 1
        self._send(asset, market, encode_envelope(envelope), None)

    def _put(
        self, kind: str, asset: str, market: str, recv_ns: int, body: bytes, msg_id: str, *, token: str = ""
    ) -> None:
        slug, outcome = self.publisher.labels.get(asset, _NO_LABEL) if kind == "snapshot" else _NO_LABEL
        envelope = Envelope(
            kind=kind,
            asset_id=asset,
            market=market,
            recv_ns=recv_ns,
            collector=self.collector,
            message=msgspec.Raw(body),
            token=token,
            slug=slug,
            outcome=outcome,
        )
        self._send(asset, market, encode_envelope(envelope), msg_id)
        self._changed.add(asset)

    def _send(self, asset: str, market: str, payload: bytes, msg_id: str | None) -> None:
        subject = self._subjects.get(asset)
        if subject is None:
            subject = book_subject(self._prefix, market, asset)
            if market:  # a book's subject is fixed once its market is known
                self._subjects[asset] = subject
        self.published += 1
        self.publisher.put(subject, payload, asset, msg_id)

    # -- the bucket, mending and the heartbeat --------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._maintain(), name="polyfeed-collector")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _maintain(self) -> None:
        next_beat = 0.0
        while True:
            now = time.monotonic()
            self.refresh(now)
            if now >= next_beat:
                next_beat = now + self.heartbeat_s
                await self._heartbeat()
            await asyncio.sleep(min(0.25, self.heartbeat_s))

    def refresh(self, now_s: float) -> None:
        """Mend dirty books whose book is live again, and write the snapshots that are due."""
        books = self._books()
        publisher = self.publisher
        if (
            publisher.dirty
            and publisher.client.is_connected
            and publisher.buffered < publisher.max_buffer // 2
        ):
            for asset in list(publisher.dirty):
                book = books.get(asset)
                if book is None:
                    publisher.mend(asset)
                elif book.status is _LIVE:
                    why = publisher.mend(asset) or "messages could not be published"
                    self._gap(asset, f"the collector could not publish: {why}", time.time_ns())
                    self._own_snapshot(book, time.time_ns())
        interval = self.snapshot_interval_s
        final = now_s == float("inf")  # the last round, at the stop: every live book, settled or not
        written = self._written_s
        for asset in list(self._changed):
            due = asset in self._due
            if not due and now_s - written.get(asset, 0.0) < interval:
                continue
            book = books.get(asset)
            if book is None:
                self._changed.discard(asset)
                self._due.discard(asset)
                continue
            if book.status is not _LIVE or not (final or _settled(book)):
                continue  # written once it is live again (verified), between bursts
            snapshot = _encode(book.to_snapshot())
            if publisher.put_snapshot(asset, snapshot, alternates=book.trade_price_alternates):
                written[asset] = now_s
                self._changed.discard(asset)
                self._due.discard(asset)
        if now_s >= self._next_quiet_s:
            self._refresh_quiet(books, now_s)

    def _refresh_quiet(self, books: dict[str, OrderBook], now_s: float) -> None:
        """Rewrite the bucket's value of live books with nothing published for ``quiet_refresh_s``, at the
        stream's newest acknowledged sequence (nothing of theirs lies between): a late consumer starts from
        the oldest value's sequence, which a quiet book would otherwise hold back for as long as it is
        quiet (a day's stream read and skipped, for one book)."""
        self._next_quiet_s = now_s + self.quiet_refresh_s / 4
        publisher = self.publisher
        horizon = now_s - self.quiet_refresh_s
        written = self._written_s
        changed = self._changed
        for asset, book in books.items():
            if (
                book.status is _LIVE
                and asset not in changed
                and written.get(asset, now_s) < horizon
                and _settled(book)
                and publisher.put_snapshot(
                    asset, _encode(book.to_snapshot()), quiet=True, alternates=book.trade_price_alternates
                )
            ):
                written[asset] = now_s

    async def _heartbeat(self) -> None:
        client = self.publisher.client
        if not client.is_connected:
            return
        books = self._books()
        live = sum(1 for b in books.values() if b.status is _LIVE)
        beat = encode_heartbeat(
            Heartbeat(
                collector=self.collector,
                shard=self.shard,
                books=len(books),
                live=live,
                time_ns=time.time_ns(),
            )
        )
        with contextlib.suppress(Exception):  # a heartbeat lost to a reconnect is simply the next one
            await client.publish(heartbeat_subject(self._prefix, self.collector), beat)


@dataclass
class PublishSummary:
    """What a publishing run did."""

    books: int
    published: int
    acked: int
    duplicates: int
    failed: int
    unpublished: int
    gaps: int
    snapshots_written: int
    seconds: float


async def _shard_assets(
    venue: Venue, assets: list[str], shard: tuple[int, int], ssl_context: ssl.SSLContext | None
) -> list[str]:
    """The assets of ``shard``: their markets from REST ``/books``, each kept by its condition id."""
    keep = MarketFilter(shard=shard).keeps
    async with http_session(ssl_context=ssl_context) as http:
        books = await fetch_books(http, venue.rest_url, assets)
    market_of = {b.asset_id: b.market for b in books}
    return [a for a in assets if keep(market_of.get(a, a))]


async def publish(
    nats_url: str,
    asset_ids: Iterable[str] = (),
    *,
    slugs: Iterable[str] = (),
    all_markets: MarketFilter | None = None,
    gamma_cache: GammaCache | None = None,
    venue: Venue | None = None,
    stream: str = "POLYFEED",
    shard: tuple[int, int] | None = None,
    collector: str | None = None,
    seconds: float | None = None,
    snapshot_interval_s: float = 10.0,
    max_age_s: float = 86_400.0,
    ssl_context: ssl.SSLContext | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_open: Callable[[MarketStream, Collector], None] | None = None,
    stop: asyncio.Event | None = None,
    labels: Mapping[str, tuple[str, str]] | None = None,
) -> PublishSummary:
    """Follow ``asset_ids`` and ``slugs`` (or, with ``all_markets``, every open market) on ``venue`` and
    publish their books to the JetStream stream ``stream`` at ``nats_url``, until cancelled, ``stop`` is
    set, or ``seconds`` pass. With ``shard=(I, N)``, only the markets of the I-th of N collectors.
    Each book's market slug and outcome (``labels``, by token id, for tokens given as ids; those of slugs
    and of every market are Gamma's) are published with its snapshots, for consumers to show.

    Raises:
        FanoutError: NATS unreachable, JetStream off, or the stream configured with other subjects.
        ConnectError, VenueError: as :class:`polyfeed.stream.MarketStream`.
    """
    started = time.monotonic()
    name = collector or default_collector_name()
    layout = StreamLayout(stream)
    venue = venue or Venue.polymarket()
    publisher: Publisher | None = None  # made once connected

    async def disconnected() -> None:
        if publisher is not None:
            publisher.connection_lost()

    client: Client = await connect(nats_url, name=f"polyfeed-collector {name}", on_disconnected=disconnected)
    try:
        js = await require_jetstream(client, nats_url)
        await ensure_layout(js, layout, max_age_s=max_age_s)
        publisher = Publisher(client, layout, collector=name)
        await publisher.start()
        books: dict[str, OrderBook] = {}
        collector_ = Collector(
            publisher, lambda: books, collector=name, snapshot_interval_s=snapshot_interval_s, shard=shard
        )

        def events(event: Event) -> None:
            collector_.on_event(event)
            if on_event is not None:
                on_event(event)

        if all_markets is not None:
            if shard is not None:
                all_markets = dataclasses.replace(all_markets, shard=shard)
            market = MarketStream.all_markets(
                all_markets,
                gamma_cache=gamma_cache,
                venue=venue,
                on_event=events,
                max_queue=0,
                ssl_context=ssl_context,
            )
        else:
            market = MarketStream.from_slugs(
                list(slugs),
                venue=venue,
                on_event=events,
                max_queue=0,
                ssl_context=ssl_context,
                # market_resolved (a custom feature) closes a book at once: its consumers learn it from the
                # collector's status message, since the venue sends nothing more for it
                config=SessionConfig(custom_feature_enabled=True),
            )
            market.asset_ids = list(dict.fromkeys(asset_ids))
            if shard is not None and market.asset_ids and not list(slugs):
                market.asset_ids = await _shard_assets(venue, market.asset_ids, shard, ssl_context)
        async with market:
            if shard is not None and all_markets is None and list(slugs):
                # slugs resolve on entering: the tokens of other shards' markets are dropped now
                keep = MarketFilter(shard=shard).keeps
                market.unsubscribe([a for a, b in market.books.items() if b.market and not keep(b.market)])
            books = market.books
            collector_._books = lambda: market.books
            # Gamma's names, for consumers to show (the universe's as they change)
            publisher.labels = collections.ChainMap(market.labels, dict(labels or {}))
            collector_.start()
            if on_open is not None:
                on_open(market, collector_)
            stop = stop or asyncio.Event()
            watcher = asyncio.ensure_future(market.failed())
            watcher.add_done_callback(lambda _: stop.set())
            try:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(stop.wait(), seconds)
            finally:
                watcher.cancel()
                collector_.closing = True
                await collector_.close()
                collector_.refresh(float("inf"))  # the books' last state into the bucket
            if market.error is not None:
                raise market.error
            n_books = len(market.books)
        await publisher.close()
        return PublishSummary(
            books=n_books,
            published=collector_.published,
            acked=publisher.acked,
            duplicates=publisher.duplicates,
            failed=publisher.failed,
            unpublished=publisher.unpublished,
            gaps=collector_.gaps,
            snapshots_written=publisher.snapshots_written,
            seconds=time.monotonic() - started,
        )
    finally:
        with contextlib.suppress(Exception):
            await client.close()
