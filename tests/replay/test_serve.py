"""A recording served as the venue: exact routing by token, byte-identical frames, snapshots synthesized
for late subscribers that verify hash by hash, the venue's control frames, the book REST calls, and
polyfeed's own MarketStream and Polymarket's quickstart client against it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.errors import RecordingFormatError
from polyfeed.record import Channel, Recorder, RecordKind, read_recording
from polyfeed.replay.serve import RecordingServer
from polyfeed.session import Event, MessageReceived
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.stream import MarketStream
from polyfeed.wire import Book, LastTradePrice, Notice, decode_market, encode_market_subscription
from tests.sim.simclient import quickstart_books, quickstart_class_source

BOUND_S = 60
T0 = 1_790_000_000_000_000_000
MS = 1_000_000
MIDDLE_NS = T0 + 1500 * MS  # about half of a 3000-frame recording


def make_recording(
    directory: Path, frames: int = 3000, metadata: list[dict[str, Any]] | None = None
) -> list[str]:
    """Three markets of the local exchange: the initial dump as one array of every book (spec 3), then
    ``frames`` market frames 1 ms apart; optionally a ``metadata`` marker first."""
    exchange = Exchange(markets=3, seed=21)
    assets = exchange.asset_ids()
    t = T0
    with Recorder(directory) as recorder:
        if metadata is not None:
            marker = msgspec.json.encode({"marker": "metadata", "books": metadata})
            recorder.write(int(RecordKind.MARKER), int(Channel.MARKET), 1, t, marker)
        recorder.write(int(RecordKind.SENT), int(Channel.MARKET), 1, t, encode_market_subscription(assets))
        dump = [book_frame(exchange.book(asset, initial=True), initial=True) for asset in assets]
        recorder.write(int(RecordKind.FRAME), int(Channel.MARKET), 1, t, msgspec.json.encode(dump))
        written = 0
        while written < frames:
            for out in exchange.step():
                if out.channel == "market":
                    t += MS
                    payload = encode_outbound(out).encode()
                    recorder.write(int(RecordKind.FRAME), int(Channel.MARKET), 1, t, payload)
                    written += 1
    return assets


def recorded_frames(directory: Path, from_ns: int | None = None) -> list[bytes]:
    return [
        r.payload
        for r in read_recording(directory, from_ns=from_ns)
        if r.kind == RecordKind.FRAME and r.channel == Channel.MARKET
    ]


def _items(body: Any) -> list[dict[str, Any]]:
    return body if isinstance(body, list) else [body]


def routed(frames: list[bytes], assets: set[str], *, dump: bool = True) -> list[tuple[Any, bytes | None]]:
    """What the venue sends a subscriber of ``assets`` (spec 4), written independently of the server:
    each frame's JSON, with its exact bytes when the whole frame is the subscriber's."""
    market_of = {m["asset_id"]: m["market"] for f in frames for m in _items(json.loads(f)) if "asset_id" in m}
    markets = {market_of[a] for a in assets}

    def wanted(m: dict[str, Any]) -> bool:
        kind = m.get("event_type")
        if kind == "price_change":
            return any(e["asset_id"] in assets for e in m["price_changes"])
        if kind == "book":
            return m["asset_id"] in assets and (dump or "tick_size" not in m)
        if kind == "last_trade_price":
            return bool(m["market"] in markets)
        return kind == "tick_size_change" and m["asset_id"] in assets

    out: list[tuple[Any, bytes | None]] = []
    for frame in frames:
        body = json.loads(frame)
        items = _items(body)
        keep = [m for m in items if wanted(m)]
        if len(keep) == len(items):
            out.append((body, frame))
        elif keep:
            out.append((keep, None))
    return out


def replayed_books(frames: list[bytes]) -> dict[str, OrderBook]:
    """Every token's book after ``frames``, rebuilt here as a client following every token would."""
    books: dict[str, OrderBook] = {}
    for frame in frames:
        for message in decode_market(frame):
            if isinstance(message, Book):
                books.setdefault(message.asset_id, OrderBook(message.asset_id)).apply(message)
                continue
            for book in books.values():  # each book takes what concerns it
                book.apply(message)
    return books


def client_book(asset: str, received: list[str]) -> OrderBook:
    """A client's book of ``asset`` fed what it received, its last burst settled."""
    book = OrderBook(asset)
    for text in received:
        for message in decode_market(text):
            if not isinstance(message, Book) or message.asset_id == asset:
                book.apply(message)
    book.settle(final=True)
    return book


def assert_verified(book: OrderBook) -> None:
    assert book.status is BookStatus.LIVE, book.status_reason
    assert book.checks.total_failed == 0, book.last_failure
    assert book.checks.passed[CheckKind.HASH] > 10


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition of the server's (the test's own bound ends a wait that never comes)."""
    while not condition():
        await asyncio.sleep(0.01)


async def receive_text(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    received = []
    for _ in range(count):
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.TEXT, message
        received.append(message.data)
    return received


async def quiet_after(ws: aiohttp.ClientWebSocketResponse, server: RecordingServer) -> None:
    """Once the timeline has played everything, a PING's PONG comes next: nothing else was sent."""
    await until(lambda: server.finished)
    await ws.send_str("PING")
    assert (await ws.receive()).data == "PONG"


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_a_one_token_subscriber_gets_its_frames_byte_for_byte_and_never_the_other_tokens_books(
    tmp_path: Path,
) -> None:
    assets = make_recording(tmp_path / "rec")
    frames = recorded_frames(tmp_path / "rec")
    named = {m.get("asset_id") for body, _ in routed(frames, {assets[0]}) for m in _items(body)}
    one, other = (assets[1], assets[0]) if assets[0] in named else (assets[0], assets[1])
    expected = routed(frames, {one})
    prints = [m for body, _ in expected for m in _items(body) if m["event_type"] == "last_trade_price"]
    assert any(m["asset_id"] == other for m in prints), "prints of its market that name the other token"

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec") as server, aiohttp.ClientSession() as http:
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription([one]).decode())
                received = await receive_text(ws, len(expected))
                await quiet_after(ws, server)
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                await ws.send_str("PING")
                closing = await ws.receive()
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1008
                assert closing.extra == "invalid subscription payload"
        assert [json.loads(r) for r in received] == [body for body, _ in expected]
        assert [r.encode() for r, (_, exact) in zip(received, expected, strict=True) if exact] == [
            exact for _, exact in expected if exact
        ], "whole frames byte for byte"
        own = json.loads(frames[0])[assets.index(one)]
        assert json.loads(received[0]) == [own], "its own book, cut from the dump"
        books = [m for r in received for m in _items(json.loads(r)) if m["event_type"] == "book"]
        assert len(books) > 1 and {m["asset_id"] for m in books} == {one}
        assert_verified(client_book(one, received))

    run(main)


def test_a_binary_subscription_is_accepted_and_a_second_type_message_is_an_invalid_operation(
    tmp_path: Path,
) -> None:
    assets = make_recording(tmp_path / "rec", frames=300)
    frames = recorded_frames(tmp_path / "rec")

    async def main() -> None:
        async with (
            RecordingServer(tmp_path / "rec") as server,
            aiohttp.ClientSession() as http,
            http.ws_connect(server.ws_url + "/ws/market") as ws,
        ):
            await ws.send_bytes(encode_market_subscription([assets[2]]))
            first = await ws.receive()
            assert json.loads(first.data) == [json.loads(frames[0])[2]]
            await ws.send_bytes(encode_market_subscription([assets[3]]))
            for _ in range(len(frames) + 1):
                if (await ws.receive()).data == "INVALID OPERATION":
                    break
            else:
                pytest.fail("no INVALID OPERATION")

    run(main)


def test_a_connection_that_never_subscribes_or_sends_junk_is_closed_with_1008(tmp_path: Path) -> None:
    make_recording(tmp_path / "rec", frames=10)

    async def main() -> None:
        async with (
            RecordingServer(tmp_path / "rec", subscribe_timeout_s=0.5) as server,
            aiohttp.ClientSession() as http,
        ):
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                closing = await ws.receive()  # we say nothing
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1008
            for junk in ('{"type": "user", "markets": []}', "{not json", '{"assets_ids": "1"}'):
                async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                    await ws.send_str(junk)
                    closing = await ws.receive()
                    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1008, junk
            assert server.clients == 0

    run(main)


KEY_ORDER = ["market", "asset_id", "timestamp", "hash", "bids", "asks", "tick_size", "event_type"]


def test_an_empty_subscription_then_operations_as_poly_websockets_sends_them(tmp_path: Path) -> None:
    assets = make_recording(tmp_path / "rec")
    frames = recorded_frames(tmp_path / "rec")
    expected = routed(frames, {assets[0]})
    final = replayed_books(frames)[assets[4]]

    async def main() -> None:
        async with (
            RecordingServer(tmp_path / "rec") as server,
            aiohttp.ClientSession() as http,
            http.ws_connect(server.ws_url + "/ws/market") as ws,
        ):
            await ws.send_str(json.dumps({"assets_ids": [], "type": "market"}))
            await ws.send_str("PING")
            assert (await ws.receive()).data == "PONG"
            assert server.records_played == 0, "nobody listens to a token: the timeline waits"
            await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [assets[0]]}))
            received = await receive_text(ws, len(expected))
            await quiet_after(ws, server)
            # After the end, a new token gets a snapshot of its book as the recording left it.
            await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [assets[4], assets[0]]}))
            late = await ws.receive()
            await ws.send_str(json.dumps({"operation": "unsubscribe", "assets_ids": assets}))
            await ws.send_str("PING")
            assert (await ws.receive()).data == "PONG"
        assert [json.loads(r) for r in received] == [body for body, _ in expected]
        snapshot = json.loads(late.data)
        assert [m["asset_id"] for m in snapshot] == [assets[4]], "one array, the new token only"
        assert list(snapshot[0]) == [*KEY_ORDER, "last_trade_price"], "initial-book key order (spec 3)"
        book = client_book(assets[4], [late.data])
        assert book.status is BookStatus.LIVE and book.checks.passed[CheckKind.HASH] == 1, book.last_failure
        assert book.wire_levels() == final.wire_levels() and book.last_trade_price == final.last_trade_price

    run(main)


def test_initial_dump_false_sends_no_snapshot_recorded_or_synthesized(tmp_path: Path) -> None:
    assets = make_recording(tmp_path / "rec", frames=1000)
    expected = routed(recorded_frames(tmp_path / "rec"), {assets[0]}, dump=False)

    async def main() -> None:
        async with (
            RecordingServer(tmp_path / "rec") as server,
            aiohttp.ClientSession() as http,
            http.ws_connect(server.ws_url + "/ws/market") as ws,
        ):
            subscription = encode_market_subscription([assets[0]], initial_dump=False)
            await ws.send_str(subscription.decode())
            received = await receive_text(ws, len(expected))
            await quiet_after(ws, server)
            await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [assets[2]]}))
            await ws.send_str("PING")
            assert (await ws.receive()).data == "PONG", "no snapshot for the added token either"
        assert [json.loads(r) for r in received] == [body for body, _ in expected]
        assert not any("tick_size" in m for r in received for m in _items(json.loads(r))), "no snapshot"

    run(main)


def test_a_subscriber_from_the_middle_gets_snapshots_that_its_updates_verify(tmp_path: Path) -> None:
    assets = make_recording(tmp_path / "rec")
    wanted = [assets[0], assets[3]]
    before = read_recording(tmp_path / "rec", until_ns=MIDDLE_NS)
    at_start = replayed_books([r.payload for r in before if r.kind == RecordKind.FRAME])
    expected = routed(recorded_frames(tmp_path / "rec", from_ns=MIDDLE_NS), set(wanted))

    async def main() -> None:
        async with (
            RecordingServer(tmp_path / "rec", from_ns=MIDDLE_NS) as server,
            aiohttp.ClientSession() as http,
            http.ws_connect(server.ws_url + "/ws/market") as ws,
        ):
            await ws.send_str(encode_market_subscription(wanted).decode())
            received = await receive_text(ws, 1 + len(expected))
            await quiet_after(ws, server)
        snapshot = json.loads(received[0])
        assert [m["asset_id"] for m in snapshot] == wanted
        for message, asset in zip(decode_market(received[0]), wanted, strict=True):
            assert isinstance(message, Book)
            assert (message.bids, message.asks) == at_start[asset].wire_levels(), "the book at from_ns"
        assert [json.loads(r) for r in received[1:]] == [body for body, _ in expected]
        for asset in wanted:
            assert_verified(client_book(asset, received))

    run(main)


def test_rest_answers_from_the_books_the_replay_has_rebuilt(tmp_path: Path) -> None:
    assets = Exchange(markets=3, seed=21).asset_ids()  # make_recording's tokens
    metadata = [{"asset_id": assets[5], "min_order_size": "15", "neg_risk": True}]
    assert make_recording(tmp_path / "rec", frames=1000, metadata=metadata) == assets
    frames = recorded_frames(tmp_path / "rec")
    first = {m["asset_id"]: m for m in json.loads(frames[0])}
    final = replayed_books(frames)[assets[1]]

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec") as server, aiohttp.ClientSession() as http:
            rest = server.rest_url
            # Before anyone subscribes: the first recorded books, with the recorded metadata.
            body = [{"token_id": a} for a in (assets[0], "123", assets[5])]
            async with http.post(rest + "/books", json=body) as response:
                books = await response.json()
            assert [b["asset_id"] for b in books] == [assets[0], assets[5]]
            for book in books:
                recorded = first[book["asset_id"]]
                assert [book[k] for k in ("bids", "asks", "tick_size")] == [
                    recorded[k] for k in ("bids", "asks", "tick_size")
                ]
            assert books[0]["hash"] == first[assets[0]]["hash"], "the venue's own hash, recomputed"
            assert (books[0]["min_order_size"], books[0]["neg_risk"]) == ("5", False)
            assert (books[1]["min_order_size"], books[1]["neg_risk"]) == ("15", True)
            async with http.get(rest + "/book", params={"token_id": "123"}) as response:
                assert response.status == 404
                assert await response.json() == {"error": "No orderbook exists for the requested token id"}
            async with http.get(rest + "/book") as response:
                assert response.status == 400
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription([assets[1]]).decode())
                await until(lambda: server.finished)
            # Then the books as the timeline left them.
            async with http.get(rest + "/book", params={"token_id": assets[1]}) as response:
                answer = decode_market(await response.read())[0]
            assert isinstance(answer, Book)
            assert (answer.bids, answer.asks) == final.wire_levels()
            check = OrderBook(assets[1])
            check.apply(answer)
            assert check.checks.passed[CheckKind.HASH] == 1, "a hash a client verifies"
            assert final.mid is not None
            for path, params, want in [
                ("/price", {"side": "BUY"}, {"price": answer.asks[-1].price}),
                ("/price", {"side": "SELL"}, {"price": answer.bids[-1].price}),
                ("/midpoint", {}, {"mid": str(final.mid.normalize())}),
                ("/tick-size", {}, {"minimum_tick_size": float(final.tick_size or "")}),
            ]:
                async with http.get(rest + path, params={"token_id": assets[1], **params}) as response:
                    assert await response.json() == want, path

    run(main)


@pytest.mark.parametrize("from_ns", [None, MIDDLE_NS], ids=["from-the-start", "from-the-middle"])
def test_polyfeeds_own_market_stream_gets_every_book_live_with_no_failed_check(
    tmp_path: Path, from_ns: int | None
) -> None:
    assets = make_recording(tmp_path / "rec")
    wanted = assets[:4]
    expected = routed(recorded_frames(tmp_path / "rec", from_ns=from_ns), set(wanted))
    messages = sum(len(_items(body)) for body, _ in expected) + (len(wanted) if from_ns else 0)
    received: list[MessageReceived] = []

    def on_event(event: Event) -> None:
        if isinstance(event, MessageReceived) and not isinstance(event.message, Notice):
            received.append(event)

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec", from_ns=from_ns) as server:
            stream = MarketStream(
                wanted,
                ws_url=server.ws_url + "/ws/market",
                rest_url=server.rest_url,
                on_event=on_event,
                max_queue=0,
            )
            async with stream:
                await until(lambda: len(received) >= messages)
                assert server.rest.calls > 0, "the stream took its metadata from the server's REST"
                for asset in wanted:
                    book = stream.books[asset]
                    book.settle(final=True)
                    assert_verified(book)
            assert len(received) == messages
            assert any(isinstance(e.message, LastTradePrice) for e in received)

    run(main)


def test_a_missing_recording_fails_before_serving(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(RecordingFormatError, match="not a recording"):
            async with RecordingServer(tmp_path / "nothing"):
                pass

    asyncio.run(main())


def test_polymarket_quickstart_client_unchanged_replays_a_recorded_day(tmp_path: Path) -> None:
    quickstart_class_source()  # skips here, with its reason, where ../shared is absent
    assets = make_recording(tmp_path / "rec")
    subscribed = [assets[0], assets[3]]
    served = len(routed(recorded_frames(tmp_path / "rec"), set(subscribed)))

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec", speed=50.0) as server:
            books = await quickstart_books(
                server.ws_url, subscribed, lambda _, lines, changes: lines >= served and changes > 1000
            )
            for book in books.values():
                book.settle(final=True)
                assert book.status is BookStatus.LIVE and book.checks.total_failed == 0, book.last_failure

    run(main)


def test_the_official_py_clob_client_reads_a_served_recordings_books(tmp_path: Path) -> None:
    client_module = pytest.importorskip("py_clob_client.client", reason="py-clob-client is a dev extra")
    types = pytest.importorskip("py_clob_client.clob_types")

    async def main() -> None:
        directory = tmp_path / "rec"
        assets = make_recording(directory, frames=500)
        yes, no = assets[0], assets[1]
        async with RecordingServer(directory) as server:
            client = client_module.ClobClient(server.rest_url)

            async def call(method: Callable[..., Any], *args: Any) -> Any:
                return await asyncio.to_thread(method, *args)  # the client is synchronous

            assert await call(client.get_ok) == "OK"
            assert isinstance(await call(client.get_server_time), int)
            summary = await call(client.get_order_book, yes)
            assert summary.asset_id == yes and summary.bids
            assert client.get_order_book_hash(summary) == summary.hash, "the client recomputes our hash"
            pair = await call(client.get_order_books, [types.BookParams(yes), types.BookParams(no)])
            assert [s.asset_id for s in pair] == [yes, no]
            assert (await call(client.get_price, yes, "BUY"))["price"] == summary.asks[-1].price
            mid = (await call(client.get_midpoint, yes))["mid"]
            assert float(summary.bids[-1].price) < float(mid) < float(summary.asks[-1].price)
            assert float((await call(client.get_spread, yes))["spread"]) > 0
            assert await call(client.get_tick_size, yes) == summary.tick_size
            assert await call(client.get_neg_risk, yes) is False

    run(main)
