"""Fault injection (polyfeed.sim.injector): each fault seen from a client's side, over real connections."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.errors import FrameDecodeError
from polyfeed.sim import Simulator
from polyfeed.wire import Book, MarketMessage, PriceChange, decode_market, encode_market_subscription
from tests.sim.simclient import read_until_pong, run


async def subscribe(
    http: aiohttp.ClientSession, sim: Simulator, assets: list[str]
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(sim.ws_url + "/ws/market")
    await ws.send_str(encode_market_subscription(assets).decode())
    return ws


@pytest.mark.parametrize(("mode", "expected"), [("close", aiohttp.WSMsgType.CLOSE), ("reset", None)])
def test_drop_closes_or_resets(mode: str, expected: aiohttp.WSMsgType | None) -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=50) as sim, aiohttp.ClientSession() as http:
            ws = await subscribe(http, sim, [sim.exchange.markets[0].yes])
            await ws.receive()  # the initial book
            await sim.inject({"kind": "drop", "mode": mode})
            kinds = set()
            while True:
                frame = await ws.receive()
                kinds.add(frame.type)
                if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            if expected is not None:
                assert expected in kinds and ws.close_code == 1001
            else:
                assert aiohttp.WSMsgType.CLOSE not in kinds, "a reset sends no close frame"
            await ws.close()

    run(scenario)


def test_zombie_answers_pings_but_sends_no_data() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            ws = await subscribe(http, sim, [sim.exchange.markets[0].yes])
            await read_until_pong(ws, lambda m: None)
            await sim.inject({"kind": "zombie"})
            before = sim.messages_sent
            for _ in range(5):
                data: list[MarketMessage] = []
                await read_until_pong(ws, data.append)
                await asyncio.sleep(0.02)
            assert sim.messages_sent > before, "PONGs still flow"
            # everything queued before the fault may still drain; nothing is queued after it
            late: list[MarketMessage] = []
            await read_until_pong(ws, late.append)
            assert late == []
            sim.pause()  # a close waits for the flow's backlog: a bounded one (not at 2,000 a second)
            await ws.close()

    run(scenario)


def test_malformed_frame_reaches_the_client_and_raises_with_the_raw_frame() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            ws = await subscribe(http, sim, [sim.exchange.markets[0].yes])
            await ws.receive()
            await sim.inject({"kind": "malformed"})
            frame = await ws.receive()
            with pytest.raises(FrameDecodeError) as error:
                decode_market(frame.data)
            assert error.value.raw == frame.data
            await ws.close()

    run(scenario)


def test_duplicated_frames_arrive_twice() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            ws = await subscribe(http, sim, [sim.exchange.markets[0].yes])
            await ws.receive()
            await sim.inject({"kind": "duplicate", "count": 5})
            # The duplicates come after what was queued before the fault: on a loaded machine that is a
            # backlog of many frames, so read until they come (bounded by the flow and the scenario's bound).
            frames: list[str] = []
            pairs = 0
            while pairs < 5 and len(frames) < 20_000:
                frames.append((await ws.receive()).data)
                pairs += len(frames) > 1 and frames[-1] == frames[-2]
            assert pairs >= 5
            sim.pause()  # a close waits for the flow's backlog: a bounded one (not at 2,000 a second)
            await ws.close()

    run(scenario)


def test_corrupted_level_is_caught_by_the_hash_not_the_top_of_book() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=3, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            asset = sim.exchange.markets[0].yes
            book = OrderBook(asset)

            def feed(message: MarketMessage) -> None:
                book.apply(message)

            def status() -> BookStatus:  # read afresh: the book's status changes under the calls
                return book.status

            ws = await subscribe(http, sim, [asset])
            await read_until_pong(ws, feed)
            assert status() is BookStatus.LIVE
            await sim.inject({"kind": "corrupt", "asset_id": asset})
            await read_until_pong(ws, feed)
            book.settle(final=True)
            assert status() is BookStatus.SUSPECT
            assert book.checks.failed[CheckKind.HASH] == 1
            assert book.checks.failed[CheckKind.TOP_OF_BOOK] == 0, "the corruption is below the top"
            async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                rest = decode_market(await response.read())[0]
            assert isinstance(rest, Book) and book.wire_levels() != (rest.bids, rest.asks)
            await ws.close()

    run(scenario)


def test_rejected_connects_and_rest_errors_then_recovery() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1) as sim, aiohttp.ClientSession() as http:
            async with http.post(
                sim.rest_url + "/control/faults", json={"kind": "reject_connects", "count": 2}
            ) as r:
                assert r.status == 200
            for _ in range(2):
                with pytest.raises(aiohttp.WSServerHandshakeError) as error:
                    await http.ws_connect(sim.ws_url + "/ws/market")
                assert error.value.status == 429
            ws = await http.ws_connect(sim.ws_url + "/ws/market")
            await ws.close()
            await sim.inject({"kind": "rest_error", "status": 503, "count": 1})
            token = sim.exchange.markets[0].yes
            async with http.get(sim.rest_url + "/book", params={"token_id": token}) as r:
                assert r.status == 503
            async with http.get(sim.rest_url + "/book", params={"token_id": token}) as r:
                assert r.status == 200

    run(scenario)


def test_delay_keeps_order() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            ws = await subscribe(http, sim, [sim.exchange.markets[0].yes])
            await ws.receive()
            await sim.inject({"kind": "delay", "ms": 5, "count": 10})
            stamps: list[int] = []
            while len(stamps) < 30:
                for message in decode_market((await ws.receive()).data):
                    if isinstance(message, PriceChange):
                        stamps.append(int(message.timestamp))
            assert stamps == sorted(stamps)
            sim.pause()  # a close waits for the flow's backlog: a bounded one (not at 2,000 a second)
            await ws.close()

    run(scenario)


def test_control_endpoint_refuses_bad_faults() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1) as sim, aiohttp.ClientSession() as http:
            response = await http.post(sim.rest_url + "/control/faults", data="not json")
            assert response.status == 400 and "kind" in (await response.json())["error"]
            response.release()

    run(scenario)


def test_stale_and_slow_rest_answer_the_books_of_the_injection_then_fresh_ones() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=0.0001) as sim, aiohttp.ClientSession() as http:
            token = sim.exchange.markets[0].yes
            await sim.inject({"kind": "stale_rest", "count": 1})
            before = sim.exchange.book(token)
            for _ in range(30):  # the flow moves on; the next /book still answers the old book
                sim.exchange.step()
            await sim.inject({"kind": "slow_rest", "count": 1, "ms": 10})
            async with http.get(sim.rest_url + "/book", params={"token_id": token}) as r:
                stale = decode_market(await r.read())[0]
            async with http.get(sim.rest_url + "/book", params={"token_id": token}) as r:
                fresh = decode_market(await r.read())[0]
            assert isinstance(stale, Book) and isinstance(fresh, Book)
            assert stale.timestamp == before.timestamp < fresh.timestamp
            assert (stale.bids, stale.asks, stale.hash) == (before.bids, before.asks, before.hash)

    run(scenario)


@pytest.mark.parametrize("mode", ["nested", "huge", "types", "foreign", "backwards"])
def test_hostile_frames_reach_the_client_and_leave_the_exchanges_books_alone(mode: str) -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, events_per_s=0.0001) as sim, aiohttp.ClientSession() as http:
            token = sim.exchange.markets[0].yes
            ws = await http.ws_connect(sim.ws_url + "/ws/market", max_msg_size=0)
            await ws.send_str(encode_market_subscription([token]).decode())
            await ws.receive()  # the initial books
            books = {a: sim.exchange.book(a) for a in sim.exchange.asset_ids()}
            await sim.inject({"kind": "hostile", "mode": mode})
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.TEXT
            if mode in ("nested", "types"):
                with pytest.raises(FrameDecodeError):
                    decode_market(frame.data)
            elif mode == "huge":
                assert len(frame.data) > 12_000_000
            else:
                assert decode_market(frame.data)
            assert {a: sim.exchange.book(a) for a in sim.exchange.asset_ids()} == books
            await ws.close()

    run(scenario)


def test_resolve_resolves_the_market_of_a_token() -> None:
    async def scenario() -> None:
        async with Simulator(markets=3) as sim:
            token = sim.exchange.markets[1].no
            await sim.inject({"kind": "resolve", "asset_id": token})
            assert token not in sim.exchange.by_asset
            assert len(sim.exchange.markets) == 3, "a new market opened in its place"

    run(scenario)
