"""The local exchange's market channel (polyfeed.sim.marketchannel): subscriptions, initial dumps, operations,
best_bid_ask and broadcasts, over real WebSockets on loopback (port 0)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import aiohttp
import pytest

from polyfeed.sim import Exchange, Simulator
from polyfeed.sim.connection import Connection
from polyfeed.sim.frames import encode_outbound
from polyfeed.sim.marketchannel import MarketChannel
from polyfeed.wire import (
    BestBidAsk,
    Book,
    InvalidOperation,
    MarketMessage,
    MarketResolved,
    NewMarket,
    Pong,
    PriceChange,
    decode_market,
    encode_market_subscription,
    encode_operation,
)
from tests.sim.simclient import read_until_pong, run


async def frames_until_pong(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    """The raw frames the server queued before a PING (its PONG excluded)."""
    await ws.send_str("PING")
    frames: list[str] = []
    async for frame in ws:
        if frame.data == "PONG":
            return frames
        frames.append(frame.data)
    raise AssertionError("closed before PONG")


def initial_dumps(*, per_asset: bool = False) -> tuple[Simulator, list[str], list[str]]:
    """On a paused exchange: the frames answering a subscription (the first market's two tokens, an
    unknown id, a repeat) and then a subscribe operation (an asset already held and the second market)."""
    sim = Simulator(markets=2, seed=8, dump_per_asset=per_asset)
    first_frames: list[str] = []
    then_frames: list[str] = []

    async def scenario() -> None:
        async with sim, aiohttp.ClientSession() as http, http.ws_connect(sim.ws_url + "/ws/market") as ws:
            sim.pause()
            first, second = sim.exchange.markets
            await ws.send_str(encode_market_subscription([first.yes, "123", first.no, first.yes]).decode())
            first_frames.extend(await frames_until_pong(ws))
            operation = encode_operation("subscribe", assets_ids=[first.no, second.no, second.yes])
            await ws.send_str(operation.decode())
            then_frames.extend(await frames_until_pong(ws))

    run(scenario)
    return sim, first_frames, then_frames


def test_a_subscription_s_initial_books_come_in_one_array() -> None:
    sim, first_frames, then_frames = initial_dumps()
    first, second = sim.exchange.markets
    for frames, assets in ((first_frames, [first.yes, first.no]), (then_frames, [second.no, second.yes])):
        (frame,) = frames
        assert frame.startswith("[")
        books = decode_market(frame)
        assert [b.asset_id for b in books if isinstance(b, Book)] == assets
        assert all(isinstance(b, Book) and b.tick_size and b.last_trade_price is not None for b in books)


def test_dump_per_asset_sends_one_one_element_array_per_book() -> None:
    sim, first_frames, then_frames = initial_dumps(per_asset=True)
    first, second = sim.exchange.markets
    for frames, assets in ((first_frames, [first.yes, first.no]), (then_frames, [second.no, second.yes])):
        assert all(f.startswith("[") for f in frames)
        assert [[b.asset_id for b in decode_market(f) if isinstance(b, Book)] for f in frames] == [
            [a] for a in assets
        ]


def test_initial_dump_false_sends_no_books() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            market = sim.exchange.markets[0]
            async with http.ws_connect(sim.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription([market.yes], initial_dump=False).decode())
                assert await frames_until_pong(ws) == []
                operation = encode_operation("subscribe", assets_ids=[market.no], initial_dump=False)
                await ws.send_str(operation.decode())
                assert await frames_until_pong(ws) == []

    run(scenario)


@pytest.mark.parametrize(
    "first", ["PING", "not json", '{"type": "user"}', '{"assets_ids": "x", "type": "market"}']
)
def test_anything_but_a_market_subscription_first_is_closed_with_1008(first: str) -> None:
    async def scenario() -> None:
        async with Simulator(markets=1) as sim, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(sim.ws_url + "/ws/market")
            await ws.send_str(first)
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.CLOSE
            assert (frame.data, frame.extra) == (1008, "invalid subscription payload")
            await ws.close()

    run(scenario)


def test_ping_pong_and_a_second_type_frame() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            async with http.ws_connect(sim.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription([], initial_dump=False).decode())
                await ws.send_str(encode_market_subscription([]).decode())
                await ws.send_str("PING")
                replies = [decode_market((await ws.receive()).data)[0] for _ in range(2)]
                assert isinstance(replies[0], InvalidOperation) and isinstance(replies[1], Pong)

    run(scenario)


def test_operations_subscribe_and_unsubscribe_in_place_and_unknown_ids_are_ignored() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=3, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            first, second = sim.exchange.markets
            async with http.ws_connect(sim.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription(["123", first.yes]).decode())
                (snapshot,) = decode_market((await ws.receive()).data)
                assert isinstance(snapshot, Book) and snapshot.asset_id == first.yes, (
                    "unknown id: no snapshot"
                )
                await ws.send_str(encode_operation("unsubscribe", assets_ids=[first.yes]).decode())
                await ws.send_str(encode_operation("subscribe", assets_ids=[second.no]).decode())
                seen_new_snapshot = False
                after: list[PriceChange] = []
                async for frame in ws:
                    for message in decode_market(frame.data):
                        if isinstance(message, Book) and message.asset_id == second.no:
                            seen_new_snapshot = True
                        elif seen_new_snapshot and isinstance(message, PriceChange):
                            after.append(message)
                    if len(after) >= 20:
                        break
                sim.pause()  # the close waits for the flow's backlog: a bounded one, not at 2,000 a second
                assert {m.market for m in after} == {second.condition_id}, (
                    "after the switch only the newly subscribed market's flow arrives"
                )

    run(scenario)


def test_best_bid_ask_only_with_custom_features_and_it_matches_the_book() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=6, events_per_s=2_000) as sim, aiohttp.ClientSession() as http:
            asset = sim.exchange.markets[0].yes
            claimed: tuple[str | None, str | None] = (None, None)
            async with (
                http.ws_connect(sim.ws_url + "/ws/market") as plain,
                http.ws_connect(sim.ws_url + "/ws/market") as custom,
            ):
                await plain.send_str(encode_market_subscription([asset]).decode())
                await custom.send_str(
                    encode_market_subscription([asset], custom_feature_enabled=True).decode()
                )
                tops = 0
                async for frame in custom:
                    for message in decode_market(frame.data):
                        if isinstance(message, PriceChange):
                            for entry in message.price_changes:
                                if entry.asset_id == asset:
                                    claimed = (entry.best_bid, entry.best_ask)
                        elif isinstance(message, BestBidAsk):
                            tops += 1
                            assert (message.best_bid, message.best_ask) == claimed, (
                                "best_bid_ask repeats the top of book of the price_change before it"
                            )
                            assert Decimal(message.spread) == Decimal(message.best_ask) - Decimal(
                                message.best_bid
                            )
                    if tops >= 10:
                        break
                # The closes wait for each socket's backlog (plain was not read so far): bounded, paused.
                sim.pause()
                plain_kinds: set[type] = set()
                await read_until_pong(plain, lambda m: plain_kinds.add(type(m)))
                assert BestBidAsk not in plain_kinds and PriceChange in plain_kinds

    run(scenario)


def test_new_and_resolved_markets_reach_custom_feature_connections_whatever_their_assets() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=7, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            plain = await http.ws_connect(sim.ws_url + "/ws/market")
            custom = await http.ws_connect(sim.ws_url + "/ws/market")
            await plain.send_str(encode_market_subscription([]).decode())
            await custom.send_str(encode_market_subscription([], custom_feature_enabled=True).decode())
            await read_until_pong(plain, lambda m: None)
            await read_until_pong(custom, lambda m: None)
            sim.open_market()
            sim.resolve_market(0)
            heard: list[MarketMessage] = []
            await read_until_pong(custom, heard.append)
            assert [type(m) for m in heard] == [NewMarket, MarketResolved, NewMarket], "and its replacement"
            quiet: list[MarketMessage] = []
            await read_until_pong(plain, quiet.append)
            assert quiet == [], "only with custom features"
            await plain.close()
            await custom.close()

    run(scenario)


def test_above_the_asset_cap_no_snapshots_are_sent() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, max_assets=3, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            async with http.ws_connect(sim.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription(sim.exchange.asset_ids()).decode())
                received: list[MarketMessage] = []
                await read_until_pong(ws, received.append)
                assert received == [], "4 assets on a connection capped at 3: no initial books (spec 1.4)"

    run(scenario)


def test_an_oversize_frame_closes_only_its_own_connection() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, events_per_s=1) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            asset = sim.exchange.markets[0].yes
            bystander = await http.ws_connect(sim.ws_url + "/ws/market")
            await bystander.send_str(encode_market_subscription([asset]).decode())
            culprit = await http.ws_connect(sim.ws_url + "/ws/market")
            await culprit.send_str(encode_market_subscription([asset]).decode())
            await culprit.send_str("x" * (2 << 20))
            while (await culprit.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
            ):
                pass
            assert culprit.close_code == 1009, "message too big"
            received: list[MarketMessage] = []
            await read_until_pong(bystander, received.append)
            assert [type(m) for m in received] == [Book], "the other connection is served as before"
            await bystander.close()

    run(scenario)


class Unsearchable(set[str]):
    """A connection's assets that routing must not search: it asks each asset's subscribers instead."""

    def __contains__(self, item: object) -> bool:
        raise AssertionError("routing searched a connection's assets")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("routing walked a connection's assets")


def drain(conn: Connection) -> list[str | None]:
    frames = []
    while not conn.queue.empty():
        frames.append(conn.queue.get_nowait())
    return frames


def test_a_message_goes_to_its_assets_subscribers_without_a_look_at_the_other_connections() -> None:
    """Routing costs a message's receivers, not every connection's assets (the whole venue is some 92
    connections of 500 assets): each asset knows its subscribers, kept through subscribes, unsubscribes
    and disconnects, and a connection holding both tokens of a market gets each message once."""
    exchange = Exchange(markets=40, seed=3)
    channel = MarketChannel(
        exchange,
        lambda: None,
        subscribe_timeout_s=1,
        max_assets=500,
        dump_per_asset=False,
        snapshot_tick_size=True,
    )
    tokens = exchange.asset_ids()
    connections = []
    for i in range(20):
        conn = Connection(cast(Any, None))
        channel.connections.add(conn)
        channel._add_assets(conn, [*tokens[i * 4 : (i + 1) * 4], tokens[0]])  # and everyone the first token
        connections.append(conn)
    channel._remove_assets(connections[1], [tokens[0], tokens[4]])
    gone = connections[2]
    channel.connections.discard(gone)  # what a disconnect does
    channel._unlist(gone, list(gone.assets))
    wanted = {id(c): set(c.assets) for c in connections}
    assert wanted[id(connections[1])] == set(tokens[5:8])
    for conn in connections:
        conn.assets = Unsearchable(conn.assets)
    outs = [out for out in exchange.run(3_000) if out.channel == "market"]
    for out in outs:
        channel.broadcast(out)
    assert drain(gone) == []
    for conn in connections[:2] + connections[3:]:
        expected = [encode_outbound(o) for o in outs if wanted[id(conn)] & set(o.assets)]
        assert drain(conn) == expected and expected


def test_a_resolved_market_s_tops_are_forgotten() -> None:
    exchange = Exchange(markets=3, seed=3)
    channel = MarketChannel(
        exchange,
        lambda: None,
        subscribe_timeout_s=1,
        max_assets=500,
        dump_per_asset=False,
        snapshot_tick_size=True,
    )
    for out in exchange.run(300):
        channel.broadcast(out)
    market = exchange.markets[1]
    assert {market.yes, market.no} <= channel._tops.keys()
    for out in exchange.resolve_market(market):
        channel.broadcast(out)
    assert not {market.yes, market.no} & channel._tops.keys()
