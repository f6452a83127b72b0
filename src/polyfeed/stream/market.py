"""``MarketStream``: the public face of the market channel.

>>> async with MarketStream(["7667...1111"]) as stream:          # doctest: +SKIP
...     async for event in stream:                               # books, trades, status changes, gaps
...         book = stream.books.get(getattr(event, "asset_id", ""))

Polymarket's venue by default; ``venue=Venue.local("ws://127.0.0.1:8765")`` (or a
:class:`polyfeed.sim.Simulator`'s ``sim.venue``) for the local exchange.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from types import TracebackType

import aiohttp

from polyfeed.book import OrderBook
from polyfeed.errors import InvalidLevelError
from polyfeed.net.connection import Backoff, FrameSink
from polyfeed.net.gamma import MarketFilter, TokenInfo, resolve_slug_tokens
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.net.pool import MarketPool
from polyfeed.net.rest import fetch_books
from polyfeed.net.transport import http_session
from polyfeed.record.format import BookMetadata, Channel, MetadataMarker, RecordKind, encode_marker
from polyfeed.session import Event, MarketSession, SessionConfig
from polyfeed.stream.queue import EventQueue, QueuedStream
from polyfeed.stream.universe import Universe
from polyfeed.venue import WS_SCHEMES, Venue, check_url

__all__ = ["MarketStream"]

log = logging.getLogger(__name__)


class MarketStream(QueuedStream):
    """Books and events for a set of assets, kept honest across the venue's failures.

    Args:
        asset_ids: token ids to follow.
        venue: where to connect (:class:`polyfeed.venue.Venue`; ``None``: Polymarket): its market
            channel, its CLOB REST API (metadata and resyncs) and Gamma (for :meth:`from_slugs`).
        ws_url: the market channel (``.../ws/market``) instead of the venue's.
        rest_url: the CLOB REST API instead of the venue's.
        gamma_url: Gamma instead of the venue's.
        per_connection: assets a connection carries (at most 500).
        connect_interval_s: pause between opening two connections (the venue answers bursts with 429).
        on_event: called with every event as well, in order, on the event loop; an exception it raises
            is logged and counted in ``callback_errors``, never passed into the stream.
        config: session timings and budgets.
        backoff: reconnect pacing.
        max_queue: events buffered for ``async for`` before the oldest are dropped (counted in
            ``events_dropped``, logged). ``0`` keeps no events at all: for programs that only read
            ``books`` or use ``on_event``.
        ssl_context: for ``wss://`` and ``https://`` (a local exchange's own certificate, say).
        recorder: records every raw frame, the frames sent, the stream's markers and the REST answers
            it used (:class:`polyfeed.record.Recorder`); ``polyfeed replay`` rebuilds the same books.
        max_connect_attempts: a connection that never connected gives up after this many failed
            tries (refused, unreachable; ``None``: tries forever); a handshake answered HTTP 4xx (not
            429) gives up at once. The stream then fails: :attr:`error`, :meth:`failed`, and ``async
            for`` raises :class:`polyfeed.errors.ConnectError`. Once connected, a connection is
            retried for as long as the stream runs.

    Entering the stream fetches the books' metadata from REST (and resolves the slugs through Gamma):
    a venue that answers with an error raises :class:`polyfeed.errors.VenueError` (its HTTP ``status``
    an attribute), one that cannot be reached :class:`polyfeed.errors.VenueUnreachableError`; a slug
    Gamma does not know, :class:`polyfeed.errors.SubscriptionError`.

    Raises:
        InvalidURLError: ``ws_url`` not ``ws://``/``wss://``, or ``rest_url``/``gamma_url`` not
            ``http://``/``https://``.
    """

    def __init__(
        self,
        asset_ids: Iterable[str] = (),
        *,
        venue: Venue | None = None,
        ws_url: str | None = None,
        rest_url: str | None = None,
        gamma_url: str | None = None,
        per_connection: int = 200,
        connect_interval_s: float = 0.1,
        on_event: Callable[[Event], None] | None = None,
        config: SessionConfig | None = None,
        backoff: Backoff | None = None,
        max_queue: int = 100_000,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> None:
        self.recorder = recorder
        self.ssl_context = ssl_context
        self.asset_ids = list(dict.fromkeys(asset_ids))
        if ws_url is not None:
            check_url(ws_url, WS_SCHEMES, "ws_url")
        self.venue = (venue or Venue.polymarket()).with_urls(
            market_url=ws_url, rest_url=rest_url, gamma_url=gamma_url
        )
        self.ws_url = self.venue.market_url
        self.rest_url = self.venue.rest_url
        self.gamma_url = self.venue.gamma_url
        self.max_connect_attempts = max_connect_attempts
        self.per_connection = per_connection
        self.connect_interval_s = connect_interval_s
        self.on_event = on_event
        self.config = config
        self.backoff = backoff
        self._slugs: list[str] = []
        self.universe: Universe | None = None
        """What :meth:`all_markets` follows (``None`` for a stream of given assets)."""
        self._labels: dict[str, tuple[str, str]] = {}
        self._queue = EventQueue(on_event, max_queue)
        self._http: aiohttp.ClientSession | None = None
        self._pool: MarketPool | None = None

    @classmethod
    def from_slugs(
        cls,
        slugs: Iterable[str],
        *,
        venue: Venue | None = None,
        ws_url: str | None = None,
        rest_url: str | None = None,
        gamma_url: str | None = None,
        per_connection: int = 200,
        connect_interval_s: float = 0.1,
        on_event: Callable[[Event], None] | None = None,
        config: SessionConfig | None = None,
        backoff: Backoff | None = None,
        max_queue: int = 100_000,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> MarketStream:
        """A stream of the tokens behind event or market slugs or polymarket.com URLs, resolved through
        the venue's Gamma when the stream starts; the other arguments are the constructor's."""
        stream = cls(
            (),
            venue=venue,
            ws_url=ws_url,
            rest_url=rest_url,
            gamma_url=gamma_url,
            per_connection=per_connection,
            connect_interval_s=connect_interval_s,
            on_event=on_event,
            config=config,
            backoff=backoff,
            max_queue=max_queue,
            ssl_context=ssl_context,
            recorder=recorder,
            max_connect_attempts=max_connect_attempts,
        )
        stream._slugs = list(slugs)
        return stream

    @classmethod
    def all_markets(
        cls,
        market_filter: MarketFilter | None = None,
        *,
        poll_s: float = 300.0,
        gamma_cache: GammaCache | None = None,
        venue: Venue | None = None,
        per_connection: int = 500,
        connect_interval_s: float = 0.1,
        on_event: Callable[[Event], None] | None = None,
        config: SessionConfig | None = None,
        backoff: Backoff | None = None,
        max_queue: int = 100_000,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> MarketStream:
        """A stream of every open market of the venue (or those ``market_filter`` keeps), kept whole as
        markets open and resolve (:class:`polyfeed.stream.universe.Universe`): Gamma is paged on entering
        and every ``poll_s``, ``new_market`` messages add markets as they open, ``market_resolved`` and
        Gamma's ``closed`` drop them. Each connection carries up to ``per_connection`` tokens (the
        venue's most, 500, by default). With ``gamma_cache``
        (:class:`polyfeed.net.gamma_cache.GammaCache`), a listing an earlier run wrote less than its
        ``max_age_s`` ago is subscribed at once and corrected by a walk of Gamma behind it. The other
        arguments are the constructor's; custom features are turned on in ``config`` (they carry
        ``new_market`` and ``market_resolved``)."""
        config = config or SessionConfig()
        if not config.custom_feature_enabled:
            config = dataclasses.replace(config, custom_feature_enabled=True)
        stream = cls(
            (),
            venue=venue,
            per_connection=per_connection,
            connect_interval_s=connect_interval_s,
            on_event=on_event,
            config=config,
            backoff=backoff,
            max_queue=max_queue,
            ssl_context=ssl_context,
            recorder=recorder,
            max_connect_attempts=max_connect_attempts,
        )
        stream.universe = Universe(stream, market_filter or MarketFilter(), poll_s, gamma_cache)
        return stream

    @property
    def labels(self) -> dict[str, tuple[str, str]]:
        """Each book's market slug and outcome, where Gamma named them: every book of :meth:`all_markets`,
        the tokens of :meth:`from_slugs`' slugs once entered; none for token ids given as such."""
        return self.universe.labels if self.universe is not None else self._labels

    @property
    def books(self) -> dict[str, OrderBook]:
        """Every followed asset's book, by token id."""
        return self._pool.books if self._pool is not None else {}

    @property
    def sessions(self) -> list[MarketSession]:
        """Each connection's session, in the order the connections opened, for its own counters:
        ``assets``, ``idle_deadline_s``, ``zombies_detected``, ``quiet_confirmed``,
        ``resolved_assets``, ``decode_failures``."""
        return [c.session for c in self._pool.connections] if self._pool is not None else []

    async def __aenter__(self) -> MarketStream:
        self._http = http_session(ssl_context=self.ssl_context)
        try:
            if self._slugs:
                found = await resolve_slug_tokens(self._http, self.gamma_url, self._slugs)
                self._labels.update((t.token_id, (t.market_slug, t.outcome)) for t in found)  # labels
                self.asset_ids = list(dict.fromkeys([*self.asset_ids, *(t.token_id for t in found)]))
            self._pool = MarketPool(
                self.ws_url,
                self._emit,
                http=self._http,
                rest_url=self.rest_url,
                per_connection=self.per_connection,
                connect_interval_s=self.connect_interval_s,
                config=self.config,
                backoff=self.backoff,
                ssl_context=self.ssl_context,
                recorder=self.recorder,
                max_connect_attempts=self.max_connect_attempts,
                on_error=self._queue.fail,
            )
            await self._load_metadata(self.asset_ids)
            self._pool.subscribe(self.asset_ids)
            if self.universe is not None:
                await self.universe.start(self._http, self.venue.gamma_url)
        except BaseException:
            if self.universe is not None:
                await self.universe.close()
            await self._http.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.universe is not None:
            await self.universe.close()
        if self._pool is not None:
            await self._pool.close()
        if self._http is not None:
            await self._http.close()

    async def _load_metadata(self, assets: list[str]) -> None:
        """min_order_size and neg_risk enter the venue's hash but never come over the WebSocket; tick_size
        does too and was missing from December 2025's snapshots (spec 7.3)."""
        assert self._http is not None and self._pool is not None
        if not assets:
            return
        snapshots = await fetch_books(self._http, self.rest_url, assets)
        self._set_metadata(
            [(b.asset_id, b.min_order_size, b.tick_size, b.neg_risk) for b in snapshots], "REST /books"
        )

    def _gamma_metadata(self, tokens: list[TokenInfo]) -> list[str]:
        """Set the metadata Gamma gave of ``tokens``; returns the tokens it gave incomplete (REST
        ``POST /books`` completes them)."""
        complete = [t for t in tokens if t.complete]
        self._set_metadata(
            [(t.token_id, t.min_order_size, t.tick_size, t.neg_risk) for t in complete], "Gamma"
        )
        return [t.token_id for t in tokens if not t.complete]

    def _set_metadata(
        self, items: list[tuple[str, str | None, str | None, bool | None]], source: str
    ) -> None:
        assert self._pool is not None
        metadata: list[BookMetadata] = []
        books = self._pool.books
        for asset, min_order_size, tick_size, neg_risk in items:
            book = books.get(asset)
            if book is None:
                book = books[asset] = OrderBook(asset)
            try:
                book.set_metadata(min_order_size=min_order_size, tick_size=tick_size, neg_risk=neg_risk)
            except InvalidLevelError as exc:  # the book's hash checks will say it cannot verify
                log.warning("%s gave %s a tick size it cannot use: %s", source, asset, exc)
            metadata.append(BookMetadata(asset, book.min_order_size, book.tick_size, book.neg_risk))
        if self.recorder is not None and metadata:
            marker = encode_marker(MetadataMarker(metadata))
            self.recorder.write(int(RecordKind.MARKER), int(Channel.MARKET), 0, time.time_ns(), marker)

    async def subscribe(self, asset_ids: Iterable[str]) -> None:
        """Follow more assets, in place (no reconnect)."""
        assert self._pool is not None, "use the stream inside 'async with'"
        new = [a for a in asset_ids if a not in self._pool.assets]
        await self._load_metadata(new)
        self._pool.subscribe(new)

    def unsubscribe(self, asset_ids: Iterable[str]) -> None:
        assert self._pool is not None, "use the stream inside 'async with'"
        self._pool.unsubscribe(asset_ids)

    def _emit(self, events: list[Event]) -> None:
        if self.universe is not None:
            self.universe.on_events(events)
        self._queue.emit(events)
