"""Market-stream throughput on loopback, one connection, a fixed recorded stream pushed as fast as the
server can (bench/pushserver.py, in its own process): polyfeed beside the alternatives, in one run.

- polyfeed: MarketConnection + MarketSession (picows, msgspec, books with top-of-book/crossed checks),
  then the same with the hash check at every burst end;
- a hand-written minimal picows client (decode + books, no session): the ceiling for this stack;
- a `websockets` (asyncio) client with the same decode + books;
- Polymarket's quickstart approach: `websocket-client` WebSocketApp + `json.loads`, no book.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import picows
import websocket
import websockets

from polyfeed.book import OrderBook
from polyfeed.net import MarketConnection
from polyfeed.session import Event, MarketSession, MessageReceived
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import Book, decode_market, encode_market_subscription

N_FRAMES = 150_000
HERE = Path(__file__).parent


def recorded_stream() -> tuple[list[bytes], list[str]]:
    exchange = Exchange(markets=4, seed=1)
    assets = exchange.asset_ids()
    frames = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    while len(frames) < N_FRAMES:
        frames.extend(encode_outbound(o).encode() for o in exchange.step() if o.channel == "market")
    return frames[:N_FRAMES], assets


def route(books: dict[str, OrderBook], message: object) -> None:
    if isinstance(message, Book):
        book = books.get(message.asset_id)
        if book is not None:
            book.apply(message)
        return
    for book in books.values():
        book.apply(message)


async def polyfeed_client(url: str, assets: list[str], verify_hash: bool) -> float:
    books = {a: OrderBook(a, verify_hash=verify_hash) for a in assets}
    session = MarketSession(1, assets, books)
    done = asyncio.Event()
    count = 0
    started = 0.0

    def emit(events: list[Event]) -> None:
        nonlocal count, started
        for event in events:
            if isinstance(event, MessageReceived):
                count += 1
                if count == 1:
                    started = time.perf_counter()
                elif count >= N_FRAMES - 20:  # a few initial-dump arrays hold one message each
                    done.set()

    connection = MarketConnection(session, url, emit)
    runner = asyncio.create_task(connection.run())
    await done.wait()
    elapsed = time.perf_counter() - started
    await connection.close()
    runner.cancel()
    return count / elapsed


async def minimal_picows(url: str, assets: list[str]) -> float:
    books = {a: OrderBook(a, verify_hash=False) for a in assets}
    done = asyncio.get_running_loop().create_future()
    state = {"count": 0, "start": 0.0}

    class Listener(picows.WSListener):
        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            transport.send(picows.WSMsgType.TEXT, encode_market_subscription(assets))

        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            if frame.msg_type != picows.WSMsgType.TEXT:
                return
            for message in decode_market(frame.get_payload_as_bytes()):
                route(books, message)
            state["count"] += 1
            if state["count"] == 1:
                state["start"] = time.perf_counter()
            elif state["count"] == N_FRAMES and not done.done():
                done.set_result(time.perf_counter() - state["start"])

    transport, _ = await picows.ws_connect(Listener, url)
    elapsed = await done
    transport.disconnect()
    return N_FRAMES / elapsed


async def websockets_client(url: str, assets: list[str]) -> float:
    books = {a: OrderBook(a, verify_hash=False) for a in assets}
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(encode_market_subscription(assets).decode())
        count, start = 0, 0.0
        async for data in ws:
            for message in decode_market(data):
                route(books, message)
            count += 1
            if count == 1:
                start = time.perf_counter()
            if count == N_FRAMES:
                return count / (time.perf_counter() - start)
    return 0.0


def quickstart_client(url: str, assets: list[str]) -> float:
    """The quickstart's shape: WebSocketApp, json.loads of every message, no book."""
    state = {"count": 0, "start": 0.0, "rate": 0.0}

    def on_open(ws: websocket.WebSocketApp) -> None:
        ws.send(json.dumps({"assets_ids": assets, "type": "market"}))

    def on_message(ws: websocket.WebSocketApp, message: str) -> None:
        json.loads(message)
        state["count"] += 1
        if state["count"] == 1:
            state["start"] = time.perf_counter()
        elif state["count"] == N_FRAMES:
            state["rate"] = N_FRAMES / (time.perf_counter() - state["start"])
            ws.close()

    app = websocket.WebSocketApp(url, on_open=on_open, on_message=on_message)
    thread = threading.Thread(target=app.run_forever)
    thread.start()
    thread.join()
    return state["rate"]


def main() -> None:
    frames, assets = recorded_stream()
    mean = sum(map(len, frames)) / len(frames)
    with tempfile.NamedTemporaryFile(suffix=".ws", delete=False) as tmp:
        sys.path.insert(0, str(HERE))
        from pushserver import frame

        tmp.write(b"".join(frame(f) for f in frames))
    server = subprocess.Popen([sys.executable, str(HERE / "pushserver.py"), tmp.name], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = f"ws://127.0.0.1:{int(server.stdout.readline())}/ws/market"
        print(
            f"one connection, {N_FRAMES:,} recorded frames (mean {mean:.0f} bytes, {len(assets)} tokens) "
            "pushed as fast as the server can:"
        )
        runs: list[tuple[str, Callable[[], float]]] = [
            (
                "polyfeed MarketConnection, books + top-of-book checks",
                lambda: asyncio.run(polyfeed_client(url, assets, False)),
            ),
            (
                "polyfeed, + hash check at every burst end",
                lambda: asyncio.run(polyfeed_client(url, assets, True)),
            ),
            ("hand-written minimal picows client + books", lambda: asyncio.run(minimal_picows(url, assets))),
            ("websockets (asyncio) + msgspec + books", lambda: asyncio.run(websockets_client(url, assets))),
            ("quickstart: websocket-client + json.loads, no book", lambda: quickstart_client(url, assets)),
        ]
        for name, run in runs:
            print(f"  {name:<55} {run():>10,.0f} messages/s")
    finally:
        server.terminate()
        Path(tmp.name).unlink()


if __name__ == "__main__":
    main()
