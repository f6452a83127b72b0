"""A recording served over Polymarket's protocol: byte-identical frames, PING/PONG, the quickstart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import msgspec
import pytest

from polyfeed.book import BookStatus
from polyfeed.errors import RecordingFormatError
from polyfeed.record import Channel, Recorder, RecordKind, read_recording
from polyfeed.record.serve import RecordingServer
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import Book, decode_market, encode_market_subscription
from tests.sim.simclient import quickstart_books, quickstart_class_source

BOUND_S = 60


def make_recording(directory: Path, frames: int = 3000) -> list[str]:
    exchange = Exchange(markets=3, seed=21)
    assets = exchange.asset_ids()
    t = 1_790_000_000_000_000_000
    with Recorder(directory) as recorder:
        recorder.write(int(RecordKind.SENT), int(Channel.MARKET), 1, t, encode_market_subscription(assets))
        for asset in assets:
            frame = msgspec.json.encode([book_frame(exchange.book(asset, initial=True), initial=True)])
            recorder.write(int(RecordKind.FRAME), int(Channel.MARKET), 1, t, frame)
        written = 0
        while written < frames:
            for out in exchange.step():
                if out.channel == "market":
                    t += 1_000_000
                    recorder.write(
                        int(RecordKind.FRAME), int(Channel.MARKET), 1, t, encode_outbound(out).encode()
                    )
                    written += 1
    return assets


def test_frames_for_the_subscribed_assets_arrive_byte_for_byte_and_pings_are_answered(tmp_path: Path) -> None:
    assets = make_recording(tmp_path / "rec")
    wanted = assets[0].encode()
    market = next(
        m.market
        for r in read_recording(tmp_path / "rec")
        if r.kind == RecordKind.FRAME
        for m in decode_market(r.payload)
        if isinstance(m, Book) and m.asset_id == assets[0]
    ).encode()
    expected = [
        r.payload
        for r in read_recording(tmp_path / "rec")
        if r.kind == RecordKind.FRAME and (wanted in r.payload or market in r.payload)
    ]
    assert any(wanted not in p for p in expected), "prints of the market that name the other token"

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec") as server, aiohttp.ClientSession() as http:
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                await ws.send_str(encode_market_subscription([assets[0]]).decode())
                got = [(await ws.receive()).data.encode() for _ in expected]
                assert got == expected
                await ws.send_str("PING")
                assert (await ws.receive()).data == "PONG", "after the recording: a quiet market that answers"
            async with http.ws_connect(server.ws_url + "/ws/market") as ws:
                await ws.send_str("PING")
                closing = await ws.receive()
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1008

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


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
    frames = [r.payload for r in read_recording(tmp_path / "rec") if r.kind == RecordKind.FRAME]
    markets = {
        m.market.encode()
        for f in frames
        for m in decode_market(f)
        if isinstance(m, Book) and m.asset_id in subscribed
    }
    served = sum(
        1 for f in frames if any(a.encode() in f for a in subscribed) or any(m in f for m in markets)
    )

    async def main() -> None:
        async with RecordingServer(tmp_path / "rec", speed=50.0) as server:
            books = await quickstart_books(
                server.ws_url, subscribed, lambda _, lines, changes: lines >= served and changes > 1000
            )
            for book in books.values():
                book.settle(final=True)
                assert book.status is BookStatus.LIVE and book.checks.total_failed == 0, book.last_failure

    asyncio.run(asyncio.wait_for(main(), BOUND_S))
