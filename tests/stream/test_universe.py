"""MarketStream.all_markets against the local exchange: every open market followed, verified, and kept
whole as markets open and resolve."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from polyfeed import MarketStream
from polyfeed.book import BookStatus
from polyfeed.errors import VenueError
from polyfeed.net import Backoff
from polyfeed.net.gamma import GammaMarket, MarketFilter, active_markets
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.sim import Simulator
from polyfeed.wire import Book, decode_market
from tests.waiting import BOUND_S, until, until_async

FAST = Backoff(initial_s=0.01, max_s=0.05)


def run(main: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))  # type: ignore[arg-type]


def test_gamma_is_paged_until_a_short_page_and_each_open_market_comes_once() -> None:
    async def main() -> None:
        async with Simulator(markets=23, seed=4, events_per_s=50) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            pages = [page async for page in active_markets(http, sim.venue.gamma_url, page_size=5)]
            assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
            listed = [m.condition_id for p in pages for m in p]
            assert sorted(listed) == sorted(m.condition_id for m in sim.exchange.markets)
            first = pages[0][0]
            assert [t.token_id for t in first.tokens] == [
                sim.exchange.markets[0].yes,
                sim.exchange.markets[0].no,
            ]
            assert all(t.complete for p in pages for m in p for t in m.tokens), (
                "Gamma gives the hash's metadata"
            )

    run(main)


def test_every_open_market_is_followed_live_and_equal_to_the_exchange() -> None:
    async def main() -> None:
        async with Simulator(markets=30, seed=5, events_per_s=300) as sim:
            stream = MarketStream.all_markets(venue=sim.venue, per_connection=25, backoff=FAST, poll_s=0)
            async with stream, aiohttp.ClientSession() as http:
                assert stream.universe is not None and len(stream.universe.markets) == 30
                assert set(stream.books) == set(sim.exchange.asset_ids())
                assert [len(s.assets) for s in stream.sessions] == [25, 25, 10], "sharded, 25 a connection"
                assert all(s.config.custom_feature_enabled for s in stream.sessions)
                await until(
                    lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "all live"
                )
                sim.pause()

                async def equal_to_rest() -> bool:
                    for asset in list(stream.books)[::7]:
                        async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                            rest = decode_market(await response.read())[0]
                        assert isinstance(rest, Book)
                        book = stream.books[asset]
                        if book.wire_levels() != (rest.bids, rest.asks) or book.status is not BookStatus.LIVE:
                            return False
                    return True

                await until_async(equal_to_rest, "sampled books live and equal to GET /book, the flow paused")
                assert sum(b.checks.total_failed for b in stream.books.values()) == 0

    run(main)


def test_a_market_that_opens_is_followed_and_one_that_resolves_is_dropped() -> None:
    async def main() -> None:
        async with Simulator(markets=6, seed=6, events_per_s=200) as sim:
            stream = MarketStream.all_markets(venue=sim.venue, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None
                await until(
                    lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "all live"
                )
                gone = sim.exchange.markets[2]
                held = stream.books[gone.yes]
                sim.resolve_market(2)  # market_resolved, and a new market in its place (new_market)
                fresh = sim.exchange.markets[-1]
                await until(lambda: gone.yes not in stream.books and gone.no not in stream.books, "dropped")
                assert held.status is BookStatus.CLOSED and "resolved" in held.status_reason, (
                    "never live and wrong"
                )
                assert gone.condition_id not in universe.markets and universe.dropped == 1
                await until(
                    lambda: fresh.yes in stream.books and stream.books[fresh.yes].status is BookStatus.LIVE,
                    "the new market followed and live",
                )
                assert universe.opened == 1 and len(universe.markets) == 6
                assert stream.books[fresh.yes].min_order_size == "5", "its metadata loaded for the hash"
                assert gone.yes not in set().union(*(s.assets for s in stream.sessions)), "unsubscribed"

    run(main)


def test_a_poll_adds_what_gamma_lists_and_drops_what_it_no_longer_lists() -> None:
    async def main() -> None:
        async with Simulator(markets=4, seed=7, events_per_s=50) as sim:
            stream = MarketStream.all_markets(venue=sim.venue, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None
                stream.universe = None  # no new_market/market_resolved handling: the poll alone must see it
                gone = sim.exchange.markets[1]
                sim.resolve_market(1)
                fresh = sim.exchange.markets[-1]
                await universe.poll()
                assert fresh.condition_id in universe.markets and fresh.yes in stream.books
                assert gone.condition_id not in universe.markets and gone.yes not in stream.books
                assert (universe.polls, universe.polls_failed) == (1, 0)

    run(main)


def test_a_filter_is_sent_to_gamma_with_every_page() -> None:
    assert MarketFilter().params() == [] and str(MarketFilter()) == "none"
    wanted = MarketFilter(tag_id="21", volume_min=1000.0, end_date_max="2027-01-01")
    assert wanted.params() == [("tag_id", "21"), ("volume_num_min", "1000"), ("end_date_max", "2027-01-01")]


# -- the cached listing -------------------------------------------------------------------------------


async def gamma_listing(sim: Simulator) -> list[GammaMarket]:
    async with aiohttp.ClientSession() as http:
        return [m async for page in active_markets(http, sim.venue.gamma_url) for m in page]


def all_live(stream: MarketStream) -> bool:
    return bool(stream.books) and all(b.status is BookStatus.LIVE for b in stream.books.values())


def test_a_young_cached_listing_is_subscribed_without_gamma(tmp_path: Path, closed_port: int) -> None:
    """Gamma cannot be reached at all: the cached listing alone opens every book, and they go live."""

    async def main() -> None:
        async with Simulator(markets=8, seed=8, events_per_s=200) as sim:
            no_gamma = sim.venue.with_urls(gamma_url=f"http://127.0.0.1:{closed_port}")
            cache = GammaCache(tmp_path)
            cache.store(no_gamma.gamma_url, MarketFilter(), await gamma_listing(sim))
            stream = MarketStream.all_markets(venue=no_gamma, gamma_cache=cache, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None and universe.from_cache
                assert set(stream.books) == set(sim.exchange.asset_ids())
                await until(lambda: all_live(stream), "every cached market's books live")
                assert universe.labels[sim.exchange.markets[3].no] == (sim.exchange.markets[3].slug, "No")

    run(main)


def test_a_stale_cached_listing_is_walked_again_first(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(markets=5, seed=9, events_per_s=50) as sim:
            listing = await gamma_listing(sim)
            cache = GammaCache(tmp_path, max_age_s=600)
            stale = [*listing[:2], dataclasses.replace(listing[2], condition_id="0x" + "e" * 64)]
            cache.store(sim.venue.gamma_url, MarketFilter(), stale, now_s=time.time() - 601)
            stream = MarketStream.all_markets(venue=sim.venue, gamma_cache=cache, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None and not universe.from_cache
                assert set(universe.markets) == {m.condition_id for m in sim.exchange.markets}, (
                    "Gamma's walk, not the stale listing's made-up market"
                )
            assert cache.load(sim.venue.gamma_url, MarketFilter()) == listing, "the walk replaced it"

    run(main)


def test_a_damaged_cached_listing_is_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with Simulator(markets=4, seed=10, events_per_s=50) as sim:
            cache = GammaCache(tmp_path)
            path = cache.path(sim.venue.gamma_url, MarketFilter())
            path.write_bytes(b'{"version": 1, "markets": [{"condition_id": ')
            stream = MarketStream.all_markets(venue=sim.venue, gamma_cache=cache, backoff=FAST, poll_s=0)
            with caplog.at_level(logging.WARNING, "polyfeed"):
                async with stream:
                    assert stream.universe is not None and not stream.universe.from_cache
                    assert set(stream.books) == set(sim.exchange.asset_ids())
            assert cache.load(sim.venue.gamma_url, MarketFilter()) is not None, "rewritten after the walk"

    run(main)
    skipped = [r for r in caplog.records if str(tmp_path) in r.getMessage()]
    assert [r.levelno for r in skipped] == [logging.WARNING] and "damaged" in skipped[0].getMessage()


def test_the_walk_behind_a_cached_listing_drops_a_market_gone_and_adds_one_opened(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(markets=5, seed=11, events_per_s=100) as sim:
            cache = GammaCache(tmp_path)
            cache.store(sim.venue.gamma_url, MarketFilter(), await gamma_listing(sim))
            gone = sim.exchange.markets[1]
            sim.resolve_market(1)  # resolved (and replaced) while no stream ran: no message will say so
            fresh = sim.exchange.markets[-1]
            stream = MarketStream.all_markets(venue=sim.venue, gamma_cache=cache, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None and universe.from_cache
                assert gone.condition_id in universe.markets and fresh.condition_id not in universe.markets, (
                    "subscribed from the listing as it was"
                )
                await until(
                    lambda: (
                        gone.condition_id not in universe.markets and fresh.condition_id in universe.markets
                    ),
                    "the walk behind the cached listing corrects it",
                )
                assert gone.yes not in stream.books and gone.no not in stream.books
                await until(
                    lambda: fresh.yes in stream.books and stream.books[fresh.yes].status is BookStatus.LIVE,
                    "the market opened meanwhile followed and live",
                )
                assert set(universe.markets) == {m.condition_id for m in sim.exchange.markets}

                def cache_corrected() -> bool:
                    listed = cache.load(sim.venue.gamma_url, MarketFilter())
                    return listed is not None and {m.condition_id for m in listed} == set(universe.markets)

                await until(cache_corrected, "the cached listing rewritten from the walk")

    run(main)


def test_a_market_whose_metadata_cannot_be_loaded_is_tried_again_at_the_next_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not recorded as followed while never subscribed (the next poll would skip it for ever), and the
    poll's drops still happen."""

    async def main() -> None:
        async with Simulator(markets=4, seed=12, events_per_s=50) as sim:
            stream = MarketStream.all_markets(venue=sim.venue, backoff=FAST, poll_s=0)
            async with stream:
                universe = stream.universe
                assert universe is not None
                stream.universe = None  # no new_market/market_resolved handling: the polls alone
                gone = sim.exchange.markets[1]
                sim.resolve_market(1)
                fresh = sim.exchange.markets[-1]

                async def refused(assets: list[str]) -> None:
                    raise VenueError(sim.rest_url + "/books", "HTTP 503", status=503)

                with monkeypatch.context() as patched:
                    patched.setattr(stream, "_load_metadata", refused)
                    await universe.poll()
                assert (universe.polls, universe.polls_failed) == (1, 1)
                assert fresh.condition_id not in universe.markets and fresh.yes not in stream.books
                assert fresh.yes not in universe.labels
                assert gone.condition_id not in universe.markets and gone.yes not in stream.books
                await universe.poll()
                assert (universe.polls, universe.polls_failed) == (2, 1)
                assert fresh.condition_id in universe.markets and fresh.yes in stream.books
                await until(lambda: stream.books[fresh.yes].status is BookStatus.LIVE, "followed and live")

    run(main)
