"""The whole market for :meth:`polyfeed.stream.MarketStream.all_markets`: every open market of the
venue, followed as markets open and resolve.

- **On entering**, Gamma is paged (:func:`polyfeed.net.gamma.active_markets`) and each page is
  subscribed as it arrives, so the first connections open while later pages load. The books' metadata
  (tick size, minimum order size, neg-risk: they enter the hash) comes from Gamma's own documents;
  REST ``POST /books`` only completes the tokens Gamma left incomplete.
- **With a cache** (:class:`polyfeed.net.gamma_cache.GammaCache`), a listing written by an earlier run
  less than ``max_age_s`` ago is subscribed at once, without waiting for Gamma, and a walk of Gamma
  starts straight away in the background to correct it as a poll does (markets opened since are added,
  markets it lists no more are dropped). Every complete walk is written to the cache.
- **A market that opens** is subscribed when its ``new_market`` message comes (a broadcast of the custom
  features, spec 4.6, sent to every connection: each market is added once), with its metadata from REST,
  and in any case at the next Gamma poll.
- **A market that resolves** is closed by its session at ``market_resolved`` (spec 4.7: the book ends
  ``CLOSED``, never live and wrong) and then dropped: unsubscribed, out of ``books``. ``market_resolved``
  is reportedly not always sent, so a market Gamma no longer lists as open is dropped at the next poll.
- **Polls** every ``poll_s`` (300 s by default): Gamma's ``/markets`` is limited to 300 calls per 10 s
  (spec 8.4), and a walk of the whole market takes about 50 pages. A poll that fails is logged and
  tried again at the next one; the stream goes on with what it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp

from polyfeed.errors import PolyfeedError
from polyfeed.net.gamma import GammaMarket, MarketFilter, active_markets
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.session import Event, MessageReceived
from polyfeed.wire import MarketResolved, NewMarket

if TYPE_CHECKING:
    from polyfeed.stream.market import MarketStream

__all__ = ["Universe"]

log = logging.getLogger(__name__)


class Universe:
    """The markets an all-markets stream follows, and the work that keeps them whole.

    Args:
        stream: the stream whose pool and books it fills.
        market_filter: Gamma's filters for a partial universe.
        poll_s: seconds between two walks of Gamma (``0``: no polling, except the walk that corrects
            a cached listing).
        cache: Gamma's listing on disk, read on entering and written after every walk (``None``: none).
    """

    def __init__(
        self,
        stream: MarketStream,
        market_filter: MarketFilter,
        poll_s: float,
        cache: GammaCache | None = None,
    ) -> None:
        self.stream = stream
        self.market_filter = market_filter
        self.poll_s = poll_s
        self.cache = cache
        self.from_cache = False
        """Whether the first subscriptions came from the cached listing (Gamma then walked behind)."""
        self.markets: dict[str, tuple[str, ...]] = {}
        """condition id -> its tokens, for every market followed."""
        self.labels: dict[str, tuple[str, str]] = {}
        """token id -> (market slug, outcome), as Gamma names them."""
        self.opened = 0
        """Markets added after the first walk (``new_market`` or a poll)."""
        self.dropped = 0
        """Markets dropped after they resolved or closed."""
        self.polls = 0
        self.polls_failed = 0
        self._http: aiohttp.ClientSession | None = None
        self._gamma_url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._resolved: set[str] = set()  # condition ids dropped: a late Gamma page does not add them back
        self._listed: set[str] = set()  # condition ids Gamma has listed open at least once

    @property
    def tokens(self) -> int:
        return sum(len(tokens) for tokens in self.markets.values())

    async def start(self, http: aiohttp.ClientSession, gamma_url: str) -> None:
        """The first walk (every page subscribed as it comes), or the cached listing at once and the walk
        behind it; then the polls run in the background.

        Raises:
            VenueError: Gamma could not give the first walk (and no cached listing was young enough).
        """
        self._http = http
        self._gamma_url = gamma_url
        cached = self.cache.load(gamma_url, self.market_filter) if self.cache is not None else None
        if cached is not None:
            self.from_cache = True
            self._listed.update(m.condition_id for m in cached)  # the walk drops those it lists no more
            await self._add(cached)
            log.info(
                "following %d markets (%d tokens) from the cached Gamma listing, Gamma walked behind; "
                "filters: %s",
                len(self.markets),
                self.tokens,
                self.market_filter,
            )
            self._spawn(self._poll_forever(first_s=0.0))
            return
        walked: list[GammaMarket] = []
        async for page in active_markets(http, gamma_url, self.market_filter):
            self._listed.update(m.condition_id for m in page)
            walked.extend(page)
            await self._add(page)
        log.info(
            "following %d markets (%d tokens); filters: %s",
            len(self.markets),
            self.tokens,
            self.market_filter,
        )
        await self._store(walked)
        if self.poll_s > 0:
            self._spawn(self._poll_forever(first_s=self.poll_s))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- markets in and out ---------------------------------------------------------------------------

    async def _add(self, markets: list[GammaMarket]) -> None:
        keeps = self.market_filter.keeps
        new = [
            m
            for m in markets
            if m.condition_id not in self.markets
            and m.condition_id not in self._resolved
            and keeps(m.condition_id)
        ]
        if not new:
            return
        tokens = [t for m in new for t in m.tokens]
        for market in new:
            self.markets[market.condition_id] = tuple(t.token_id for t in market.tokens)
            self.labels.update((t.token_id, (t.market_slug, t.outcome)) for t in market.tokens)
        pool = self.stream._pool
        assert pool is not None
        incomplete = self.stream._gamma_metadata(tokens)
        try:
            await self.stream._load_metadata(incomplete)
        except PolyfeedError:  # not followed after all: the next walk finds them new again
            for market in new:
                self.markets.pop(market.condition_id, None)
                for token in market.tokens:
                    self.labels.pop(token.token_id, None)
            subscribed = pool.assets
            for token in tokens:
                if token.token_id not in subscribed:
                    pool.books.pop(token.token_id, None)
            raise
        pool.subscribe(t.token_id for t in tokens)

    def _drop(self, condition_id: str) -> None:
        tokens = self.markets.pop(condition_id, None)
        self._resolved.add(condition_id)
        if tokens is not None:
            for token in tokens:
                self.labels.pop(token, None)
            self.dropped += 1
            self.stream.unsubscribe(tokens)

    async def _opened(self, condition_id: str, assets: list[str]) -> None:
        if (
            condition_id in self.markets
            or condition_id in self._resolved
            or not assets
            or not self.market_filter.keeps(condition_id)
        ):
            return
        self.markets[condition_id] = tuple(assets)
        self.opened += 1
        log.info("market %s opened: following its %d tokens", condition_id, len(assets))
        try:
            await self.stream.subscribe(assets)
        except PolyfeedError as exc:  # its metadata could not be loaded: the next poll tries again
            log.warning("market %s opened but could not be followed yet: %s", condition_id, exc)
            self.markets.pop(condition_id, None)

    # -- what the stream brings -----------------------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        """Called with every batch of events before the user sees it: ``new_market`` and
        ``market_resolved`` change the universe (after the batch: never inside a connection's turn)."""
        for event in events:
            if type(event) is MessageReceived:
                message = event.message
                cls = message.__class__
                if cls is NewMarket or cls is MarketResolved:
                    self._on_message(message)  # type: ignore[arg-type]

    def _on_message(self, message: NewMarket | MarketResolved) -> None:
        market = message.market
        if isinstance(message, MarketResolved):
            if market in self.markets:  # sent to every connection: the first drops it
                log.info("market %s resolved (winner %s): dropped", market, message.winning_outcome or "?")
                asyncio.get_running_loop().call_soon(self._drop, market)
        elif (
            market not in self.markets
            and market not in self._resolved
            and self.market_filter.gamma_only == MarketFilter()
        ):
            # A filtered universe takes new markets from Gamma's polls only: Gamma applies the filters (a
            # shard, applied here, is checked in _opened).
            self._spawn(self._opened(market, list(message.assets_ids)))

    # -- polls ----------------------------------------------------------------------------------------

    async def _poll_forever(self, first_s: float) -> None:
        pause_s = first_s
        while True:
            if pause_s > 0:
                await asyncio.sleep(pause_s)
            await self.poll()
            if self.poll_s <= 0:
                return
            pause_s = self.poll_s

    async def poll(self) -> None:
        """Walk Gamma once: add the markets it lists that are not followed, drop those it no longer lists."""
        assert self._http is not None
        self.polls += 1
        listed: set[str] = set()
        pages: list[GammaMarket] = []
        try:
            async for page in active_markets(self._http, self._gamma_url, self.market_filter):
                listed.update(m.condition_id for m in page)
                pages.extend(page)
        except PolyfeedError as exc:
            self.polls_failed += 1
            log.warning("Gamma poll failed (%s); the next in %.0f s", exc, self.poll_s)
            return
        before = len(self.markets)
        try:
            await self._add(pages)
        except PolyfeedError as exc:  # REST could not complete their metadata: the drops still happen
            self.polls_failed += 1
            log.warning("markets Gamma listed could not be followed yet (%s); the next poll tries again", exc)
        self.opened += len(self.markets) - before
        # A market added at its new_market may not be listed yet (its tokens appear on Gamma minutes
        # later, spec 9.2): only a market Gamma listed before and lists no more is dropped.
        gone = [c for c in self.markets if c not in listed and c in self._listed]
        self._listed.update(listed)
        for condition_id in gone:
            log.info("market %s is no longer listed open by Gamma: dropped", condition_id)
            self._drop(condition_id)
        await self._store(pages)

    async def _store(self, listing: list[GammaMarket]) -> None:
        """Write a whole walk's listing to the cache, off the event loop (megabytes at full scale)."""
        if self.cache is not None:
            await asyncio.to_thread(self.cache.store, self._gamma_url, self.market_filter, listing)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
