"""The local exchange's server, over real WebSockets and HTTP on loopback (port 0)."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from polyfeed.book import BookStatus, OrderBook
from polyfeed.sim import Simulator
from polyfeed.wire import (
    Book,
    MarketMessage,
    decode_market,
    encode_market_subscription,
)
from tests.sim.simclient import quickstart_books, quickstart_class_source, read_until_pong, run
from tests.waiting import until


def test_books_from_the_stream_verify_every_hash_and_equal_get_book() -> None:
    async def scenario() -> None:
        async with Simulator(markets=3, seed=2, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            # Paused until the initial books are sent: on a loaded machine the flow could otherwise run
            # (and trade the first market) before the subscription is read.
            sim.pause()
            assets = sim.exchange.asset_ids()[:3]
            books = {a: OrderBook(a) for a in assets}
            initial: list[str] = []

            def handle(message: MarketMessage) -> None:
                for book in books.values():
                    if not isinstance(message, Book) or message.asset_id == book.asset_id:
                        book.apply(message)

            async with http.ws_connect(sim.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription(assets).decode())
                received = 0
                async for frame in ws:
                    if frame.data.startswith("["):
                        initial.append(frame.data)
                        sim.resume()
                    for message in decode_market(frame.data):
                        handle(message)
                    received += 1
                    if received >= 400:
                        break
                sim.pause()
                await read_until_pong(ws, handle)
                for asset, book in books.items():
                    book.settle(final=True)
                    async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                        rest = decode_market(await response.read())[0]
                    assert isinstance(rest, Book)
                    assert book.wire_levels() == (rest.bids, rest.asks), "the stream's book is the exchange's"
                    assert rest.min_order_size == "5" and rest.neg_risk is False
                    assert book.checks.total_failed == 0, book.last_failure
                    assert book.status is BookStatus.LIVE
            (dump,) = initial  # one array for the subscription (spec 3, 12)
            snapshots = decode_market(dump)
            assert [s.asset_id for s in snapshots if isinstance(s, Book)] == assets
            never_traded, traded = sim.exchange.markets[:2]  # the exchange's first market never traded
            for snapshot in snapshots:
                assert isinstance(snapshot, Book) and snapshot.tick_size
                market = sim.exchange.by_asset[snapshot.asset_id]
                if market is never_traded:
                    assert snapshot.last_trade_price == "", 'no trade yet: the hash has it as ""'
                else:
                    assert market is traded and snapshot.last_trade_price is not None
                    assert re.fullmatch(r"0\.\d{3,}", snapshot.last_trade_price), "3 decimals (spec 7.3)"

    run(scenario)


def test_rest_endpoints() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=4) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            token = sim.exchange.markets[0].yes
            book = sim.exchange.book(token)
            async with http.get(sim.rest_url + "/book", params={"token_id": "123"}) as r:
                assert r.status == 404 and (await r.json())["error"].startswith("No orderbook exists")
            async with http.get(sim.rest_url + "/book") as r:
                assert r.status == 400
            async with http.get(sim.rest_url + "/price", params={"token_id": token, "side": "BUY"}) as r:
                assert (await r.json())["price"] == book.asks[-1].price, "BUY is priced at the best ask"
            async with http.get(sim.rest_url + "/midpoint", params={"token_id": token}) as r:
                mid = (float(book.bids[-1].price) + float(book.asks[-1].price)) / 2
                assert float((await r.json())["mid"]) == pytest.approx(mid)
            async with http.post(sim.rest_url + "/books", json=[{"token_id": token}, {"token_id": "1"}]) as r:
                assert [b["asset_id"] for b in await r.json()] == [token]
            async with http.get(sim.rest_url + "/ws/other") as r:
                assert r.status == 404

    run(scenario)


def test_polymarket_quickstart_client_unchanged_receives_books_and_updates() -> None:
    quickstart_class_source()  # skips here, with its reason, where ../shared is absent

    async def scenario() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=500) as sim:
            assets = [sim.exchange.markets[0].yes, sim.exchange.markets[1].no]
            books = await quickstart_books(
                sim.ws_url,
                assets,
                lambda books, _, changes: (
                    changes >= 50 and all(b.status is not BookStatus.SYNCING for b in books.values())
                ),
            )
            for book in books.values():
                assert book.status is BookStatus.LIVE
                assert book.checks.total_failed == 0, book.last_failure

    run(scenario)


def test_hundreds_of_connections_are_all_served() -> None:
    async def scenario() -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with (
            Simulator(markets=1, events_per_s=1) as sim,
            aiohttp.ClientSession(connector=connector) as http,
        ):
            sim.pause()
            asset = sim.exchange.markets[0].no
            sockets = await asyncio.gather(*(http.ws_connect(sim.ws_url + "/ws/market") for _ in range(300)))
            for ws in sockets:
                await ws.send_str(encode_market_subscription([asset]).decode())
            books = [await ws.receive() for ws in sockets]
            assert all(isinstance(decode_market(frame.data)[0], Book) for frame in books)
            await asyncio.gather(*(ws.close() for ws in sockets))

    run(scenario)


def test_clock_speed_moves_the_exchange_s_clock_that_many_times_further_per_event() -> None:
    """At 100 events a second each event moves the exchange's clock 10 ms; at ``clock_speed=50`` it moves
    500 ms, so what that clock paces (trade lifecycles, lifetimes) passes 50 times sooner."""

    async def scenario() -> None:
        async with Simulator(markets=1, seed=2, events_per_s=100, clock_speed=50) as sim:
            start = sim.exchange.now_ms
            await until(lambda: sim.exchange.now_ms >= start + 5 * 500, "five events")
            assert (sim.exchange.now_ms - start) % 500 == 0, "whole events of 500 ms each"

    run(scenario)
    for speed in (0.0, -1.0):
        with pytest.raises(ValueError, match="clock_speed"):
            Simulator(clock_speed=speed)
