"""MarketStream against the local exchange: sharding, run-time subscriptions, slugs, honest books."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from polyfeed import MarketStream
from polyfeed.book import BookStatus, CheckKind
from polyfeed.errors import (
    ConnectError,
    InvalidURLError,
    SubscriptionError,
    SubscriptionLimitError,
    VenueError,
    VenueUnreachableError,
)
from polyfeed.net import Backoff, MarketPool
from polyfeed.session import BookUpdated, Event
from polyfeed.sim import Simulator
from polyfeed.venue import Venue
from polyfeed.wire import Book, decode_market
from tests.waiting import until, until_async

BOUND_S = 60
FAST = Backoff(initial_s=0.01, max_s=0.05)


def run(main: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))  # type: ignore[arg-type]


def test_a_thousand_assets_over_five_connections_all_live_and_equal_to_the_exchange() -> None:
    async def main() -> None:
        async with Simulator(markets=500, seed=2, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            stream = MarketStream(
                assets,
                ws_url=sim.ws_url + "/ws/market",
                rest_url=sim.rest_url,
                per_connection=200,
                backoff=FAST,
            )
            async with stream, aiohttp.ClientSession() as http:
                assert stream._pool is not None
                assert len(stream._pool.connections) == 5
                assert [len(c.session.assets) for c in stream._pool.connections] == [200] * 5
                assert stream.sessions == [c.session for c in stream._pool.connections]
                assert set().union(*(s.assets for s in stream.sessions)) == set(assets)
                await until(
                    lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "all live"
                )
                sim.pause()
                sample = assets[::97]

                async def equal_to_rest() -> bool:
                    # Frames sent before the pause may still be in flight: equal once they are read.
                    for asset in sample:
                        async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                            rest = decode_market(await response.read())[0]
                        assert isinstance(rest, Book)
                        if stream.books[asset].wire_levels() != (rest.bids, rest.asks):
                            return False
                    return True

                await until_async(equal_to_rest, "the sampled books equal GET /book, the flow paused")
                assert all(stream.books[a].min_order_size == "5" for a in sample)

    run(main)


def test_subscribe_and_unsubscribe_at_run_time() -> None:
    async def main() -> None:
        async with Simulator(markets=4, seed=3, events_per_s=300) as sim:
            first, later = sim.exchange.asset_ids()[:4], sim.exchange.asset_ids()[4:]
            async with MarketStream(
                first, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, backoff=FAST
            ) as stream:
                await until(
                    lambda: all(stream.books[a].status is BookStatus.LIVE for a in first), "first live"
                )
                await stream.subscribe(later)
                await until(
                    lambda: all(
                        a in stream.books and stream.books[a].status is BookStatus.LIVE for a in later
                    ),
                    "new assets live, on the same connection",
                )
                assert stream._pool is not None and len(stream._pool.connections) == 1
                stream.unsubscribe(first)
                await until(
                    lambda: all(not (set(first) & c.assets) for c in sim._connections),
                    "the exchange dropped the unsubscribed assets",
                )
                await stream.subscribe(later)  # already subscribed: nothing is sent twice
                assert sum(len(c.assets) for c in sim._connections) == len(later)

    run(main)


def test_events_arrive_in_order_with_per_connection_sequence_numbers() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=4, events_per_s=500) as sim:
            seen: list[Event] = []
            async with MarketStream(
                sim.exchange.asset_ids(),
                ws_url=sim.ws_url + "/ws/market",
                rest_url=sim.rest_url,
                on_event=seen.append,
                backoff=FAST,
            ) as stream:
                events = []
                async for event in stream:
                    events.append(event)
                    if len(events) >= 300:
                        break
                assert events == seen[:300], "callbacks and iteration see the same events, in order"
                seqs = [e.seq for e in events]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                assert any(isinstance(e, BookUpdated) for e in events)

    run(main)


def test_slugs_and_polymarket_urls_resolve_through_gamma() -> None:
    async def main() -> None:
        async with Simulator(markets=6, seed=5, events_per_s=100) as sim:
            stream = MarketStream.from_slugs(
                ["sim-market-0", "https://polymarket.com/event/sim-event-1"],
                ws_url=sim.ws_url + "/ws/market",
                rest_url=sim.rest_url,
                gamma_url=sim.rest_url,
                backoff=FAST,
            )
            async with stream:
                markets = sim.exchange.markets
                expected = [markets[0].yes, markets[0].no] + [t for m in markets[3:6] for t in (m.yes, m.no)]
                assert stream.asset_ids == expected
                # Gamma's names of each book, kept (watch, a fan-out's collector show them)
                by_token = {t: m.slug for m in (markets[0], *markets[3:6]) for t in (m.yes, m.no)}
                assert {t: slug for t, (slug, _) in stream.labels.items()} == by_token
                assert {stream.labels[m.yes][1] for m in markets[3:6]} == {"Yes"}
            with pytest.raises(SubscriptionError):
                async with MarketStream.from_slugs(
                    ["no-such-market"],
                    ws_url=sim.ws_url + "/ws/market",
                    rest_url=sim.rest_url,
                    gamma_url=sim.rest_url,
                ):
                    pass

    run(main)


def test_a_stream_built_from_a_simulators_venue_resolves_its_slugs_and_goes_live() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=3, events_per_s=400) as sim:
            slugs = [m.slug for m in sim.exchange.markets]
            stream = MarketStream.from_slugs(slugs, venue=sim.venue, backoff=FAST, max_connect_attempts=1)
            assert stream.venue == sim.venue
            async with stream:
                assert stream.asset_ids == sim.exchange.asset_ids(), "resolved on the venue's Gamma"
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")

    run(main)


def test_a_venue_given_and_single_urls_in_place_of_its_own() -> None:
    local = Venue.local("ws://127.0.0.1:8765")
    assert MarketStream(["1"]).venue == Venue.polymarket()
    stream = MarketStream(["1"], venue=local, rest_url="http://127.0.0.1:9")
    assert stream.venue == local.with_urls(rest_url="http://127.0.0.1:9")
    assert (stream.ws_url, stream.rest_url, stream.gamma_url) == (
        local.market_url,
        "http://127.0.0.1:9",
        local.gamma_url,
    )
    assert MarketStream.from_slugs(["x"], ws_url="ws://127.0.0.1:9/ws/market").venue == (
        Venue.polymarket().with_urls(market_url="ws://127.0.0.1:9/ws/market")
    )


def test_a_venue_that_cannot_be_reached_is_a_venue_unreachable_error(closed_port: int) -> None:
    async def main() -> None:
        venue = Venue.local(f"http://127.0.0.1:{closed_port}")
        for stream in (
            MarketStream(["1"], venue=venue),
            MarketStream.from_slugs(["sim-market-0"], venue=venue),
        ):
            with pytest.raises(VenueUnreachableError, match="connection refused") as caught:
                async with stream:
                    pass
            assert caught.value.url.startswith(venue.rest_url) and caught.value.status is None

    run(main)


def test_the_asset_cap() -> None:
    with pytest.raises(SubscriptionLimitError, match="500"):
        MarketPool("ws://127.0.0.1:1/ws/market", lambda events: None, http=None, per_connection=501)


def test_a_slow_consumer_loses_the_oldest_events_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=500) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, backoff=FAST, max_queue=10
            ) as stream:
                await until(lambda: stream.events_dropped > 0, "a drop")
                kept = [await stream.__anext__() for _ in range(10)]
                assert len(stream._queue.events) <= 10
                # what is left is the newest: sequence numbers of one connection still ascend
                seqs = [e.seq for e in kept if e.connection_id == 1]
                assert seqs == sorted(seqs) and seqs
                assert all(b.status is BookStatus.LIVE for b in stream.books.values())

    with caplog.at_level("WARNING", logger="polyfeed.stream"):
        run(main)
    assert any("events dropped so far" in r.getMessage() for r in caplog.records)


def test_a_raising_callback_is_logged_and_counted_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if isinstance(event, BookUpdated):
            raise ValueError("a bug in the user's callback")

    async def main() -> None:
        async with Simulator(markets=2, seed=6, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets,
                ws_url=sim.ws_url + "/ws/market",
                rest_url=sim.rest_url,
                backoff=FAST,
                on_event=on_event,
            ) as stream:
                await until(lambda: stream.callback_errors >= 20, "twenty callback errors")
                updates = [e async for e in _take(stream, 50)]
                assert len(updates) == 50  # the iterator still gets every event the callback raised on
                assert all(b.status is BookStatus.LIVE for b in stream.books.values())
                assert stream._pool is not None
                assert all(c.connects == 1 for c in stream._pool.connections)  # no connection was lost

    with caplog.at_level("ERROR", logger="polyfeed.stream"):
        run(main)
    assert any("on_event raised" in r.getMessage() and r.exc_info for r in caplog.records)
    assert any(isinstance(e, BookUpdated) for e in seen)


def test_a_stream_that_keeps_no_events_still_keeps_books() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=7, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, backoff=FAST, max_queue=0
            ) as stream:
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                assert not stream._queue.events and stream.events_dropped == 0
                with pytest.raises(RuntimeError, match="keeps no events"):
                    await stream.__anext__()

    run(main)


async def _take(stream: MarketStream, n: int) -> AsyncIterator[Event]:
    for _ in range(n):
        yield await stream.__anext__()


def test_initial_books_without_tick_size_verify_with_the_tick_from_rest() -> None:
    """December 2025's initial books had no tick_size (spec 7.3): the stream takes it from POST /books,
    and every book verifies its snapshot's hash, which covers the tick."""

    async def main() -> None:
        async with Simulator(markets=4, seed=5, snapshot_tick_size=False) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, backoff=FAST
            ) as stream:
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                for asset, book in stream.books.items():
                    assert book.tick_size == sim.exchange.by_asset[asset].tick
                    assert book.checks.passed[CheckKind.HASH] >= 1 and book.checks.total_failed == 0

    run(main)


def test_a_stream_that_cannot_read_the_books_metadata_says_so_at_once() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=5, snapshot_tick_size=False) as sim:
            await sim.inject({"kind": "rest_error", "status": 503})
            stream = MarketStream(
                sim.exchange.asset_ids(), ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url
            )
            with pytest.raises(VenueError) as caught:
                async with stream:
                    pass
            assert (caught.value.url, caught.value.status) == (sim.rest_url + "/books", 503)
            assert str(caught.value) == f"{sim.rest_url}/books: answered HTTP 503 Service Unavailable"

    run(main)


def test_unsubscribed_books_leave_the_stream_and_read_closed() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets, ws_url=sim.market_url, rest_url=sim.rest_url, backoff=FAST
            ) as stream:
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                gone = assets[:2]
                kept = {a: stream.books[a] for a in gone}
                stream.unsubscribe(gone)
                assert set(stream.books) == set(assets[2:])
                for book in kept.values():
                    assert book.status is BookStatus.CLOSED
                    assert book.status_reason == "unsubscribed"
                await stream.subscribe(gone)  # back again: new books, checked from their snapshots
                await until(
                    lambda: all(
                        a in stream.books and stream.books[a].status is BookStatus.LIVE for a in gone
                    ),
                    "resubscribed books live",
                )

    run(main)


def test_a_websocket_url_that_answers_404_fails_the_stream_naming_url_and_status() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=5) as sim:
            wrong = sim.ws_url + "/ws/nothing"
            async with MarketStream(
                sim.exchange.asset_ids(), ws_url=wrong, rest_url=sim.rest_url, backoff=FAST
            ) as stream:
                error = await stream.failed()
                assert isinstance(error, ConnectError)
                assert error.status == 404
                assert error.url == wrong
                assert str(error) == f"{wrong}: the WebSocket handshake was answered HTTP 404 Not Found"
                assert stream.error is error
                with pytest.raises(ConnectError):  # async for ends with it too
                    async for _ in stream:
                        pass
                assert stream.sessions[0].connection_id == 1
                assert stream._pool is not None and stream._pool.connections[0].failed_connects == 1

    run(main)


def test_a_refused_connection_fails_the_stream_after_its_tries() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=5) as sim:
            with socket.socket() as unused:  # a port nobody listens on: bound, never listening
                unused.bind(("127.0.0.1", 0))
                url = f"ws://127.0.0.1:{unused.getsockname()[1]}/ws/market"
                async with MarketStream(
                    sim.exchange.asset_ids(),
                    ws_url=url,
                    rest_url=sim.rest_url,
                    backoff=FAST,
                    max_connect_attempts=3,
                ) as stream:
                    error = await stream.failed()
            assert isinstance(error, ConnectError)
            assert error.status is None
            assert str(error) == f"{url}: connection refused (3 tries, never connected)"

    run(main)


def test_once_connected_a_stream_outlives_the_venue_going_away() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=5, events_per_s=100) as sim:
            stream = MarketStream(
                sim.exchange.asset_ids(),
                ws_url=sim.market_url,
                rest_url=sim.rest_url,
                backoff=FAST,
                max_connect_attempts=1,
            )
            async with stream:
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                assert stream._pool is not None
                connection = stream._pool.connections[0]
                connection.ws_url = connection.ws_url.replace("/ws/market", "/ws/gone")  # now 404s
                await sim.inject({"kind": "drop", "mode": "reset"})
                await until(lambda: connection.failed_connects >= 3, "three failed reconnects")
                assert stream.error is None

    run(main)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ws_url": "http://127.0.0.1:1/ws/market"}, "ws_url must be a ws:// or wss:// URL"),
        ({"ws_url": "127.0.0.1:1/ws/market"}, "ws_url must be a ws:// or wss:// URL"),
        ({"rest_url": "ws://127.0.0.1:1"}, "rest_url must be a http:// or https:// URL"),
        ({"gamma_url": "gamma.example"}, "gamma_url must be a http:// or https:// URL"),
    ],
)
def test_a_url_of_the_wrong_scheme_is_refused_at_once(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidURLError, match=message):
        MarketStream(["1"], **kwargs)  # type: ignore[arg-type]
