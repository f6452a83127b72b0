"""Market-stream throughput on loopback, one connection, a fixed recorded stream pushed as fast as the
server can (bench/pushserver.py, in its own process): polyfeed beside the alternatives, in one run.

Like with like (bench/baseline.py): every frame concerns the subscribed books (the connection holds every
token of a local exchange whose markets never resolve; the share is printed), and the minimal client
does polyfeed's book work on them (the same routing, one apply call per book a message names, the same
checks); the apply calls of both are counted and printed. The figures that mean something are the ratios
to the minimal client, measured side by side in the same rounds:

- polyfeed: MarketConnection + MarketSession (picows, msgspec, books with top-of-book/crossed checks),
  beside a hand-written minimal picows client with the same books (decode + books, no session);
- the same two with the hash check as polyfeed runs it by default (a live book's newest claim at most
  every ``SessionConfig.hash_interval_s`` of the venue's time), and with it at every burst end;
- a `websockets` (asyncio) client with the same books;
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

import picows
import websocket
import websockets

from baseline import MinimalBooks, book_work, calls_text, checks, concerning, subscribed_stream
from polyfeed.book import OrderBook
from polyfeed.net import MarketConnection
from polyfeed.session import Event, MarketSession, MessageReceived, SessionConfig
from polyfeed.wire import encode_market_subscription
from pushserver import frame

N_FRAMES = 50_000
ROUNDS = 3
QUICKSTART_FRAMES = 5_000  # over ten times slower than the others: a rate needs no more
HERE = Path(__file__).parent

Result = tuple[float, float, tuple[int, int] | None]
"""Messages a second of wall time and of the client process's CPU time, from its first message to its
last, and (checks passed, failed) of its books."""


class Span:
    """Wall and process CPU time, from :meth:`start` to :meth:`stop`. On a machine that other work
    shares, CPU time suffers less from it than wall time does."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def result(self, messages: int, books: tuple[int, int] | None) -> Result:
        return messages / self.wall, messages / self.cpu, books


async def polyfeed_client(
    url: str, assets: list[str], total: int, verify_hash: bool, hash_interval_s: float
) -> Result:
    books = {a: OrderBook(a, verify_hash=verify_hash) for a in assets}
    session = MarketSession(1, assets, books, SessionConfig(hash_interval_s=hash_interval_s))
    done = asyncio.Event()
    span = Span()
    count = 0

    def emit(events: list[Event]) -> None:
        nonlocal count
        for event in events:
            if isinstance(event, MessageReceived):
                count += 1
                if count == 1:
                    span.start()
                elif count == total:
                    span.stop()
                    done.set()

    connection = MarketConnection(session, url, emit)
    runner = asyncio.create_task(connection.run())
    await done.wait()
    await connection.close()
    runner.cancel()
    return span.result(total, checks(books))


async def minimal_picows(
    url: str, assets: list[str], total: int, verify_hash: bool, hash_interval_s: float
) -> Result:
    minimal = MinimalBooks(assets, verify_hash=verify_hash, hash_every_ms=int(hash_interval_s * 1000))
    done = asyncio.get_running_loop().create_future()
    span = Span()
    count = 0

    class Listener(picows.WSListener):
        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            transport.send(picows.WSMsgType.TEXT, encode_market_subscription(assets))

        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            nonlocal count
            if frame.msg_type != picows.WSMsgType.TEXT:
                return
            if count == 0:
                span.start()
            count += minimal.frame(frame.get_payload_as_bytes())
            if count == total and not done.done():
                span.stop()
                done.set_result(None)

    transport, _ = await picows.ws_connect(Listener, url)
    await done
    transport.disconnect()
    return span.result(total, minimal.checks())


async def websockets_client(url: str, assets: list[str], total: int) -> Result:
    minimal = MinimalBooks(assets, verify_hash=False)
    span = Span()
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(encode_market_subscription(assets).decode())
        count = 0
        async for data in ws:
            if count == 0:
                span.start()
            count += minimal.frame(data)
            if count == total:
                span.stop()
                return span.result(total, minimal.checks())
    raise ConnectionError("the server closed the connection before the end of the stream")


def quickstart_client(url: str, assets: list[str], total: int) -> Result:
    """The quickstart's shape: WebSocketApp, json.loads of every message, no book."""
    span = Span()
    count = 0

    def on_open(ws: websocket.WebSocketApp) -> None:
        ws.send(json.dumps({"assets_ids": assets, "type": "market"}))

    def on_message(ws: websocket.WebSocketApp, message: str) -> None:
        nonlocal count
        if count == 0:
            span.start()
        json.loads(message)
        count += 1
        if count == total:
            span.stop()
            ws.close()

    app = websocket.WebSocketApp(url, on_open=on_open, on_message=on_message)
    thread = threading.Thread(target=app.run_forever)
    thread.start()
    thread.join()
    return span.result(total, None)


HASH_INTERVAL_S = SessionConfig().hash_interval_s
CHECKS = {  # key: (heading, verify_hash, hash_interval_s)
    "": ("top-of-book and crossed checks at every burst end", False, 0.0),
    "+hash/s": (
        f"the same + the hash, at most every {HASH_INTERVAL_S:g} s a book: polyfeed's default",
        True,
        HASH_INTERVAL_S,
    ),
    "+hash": ("the same + the hash at every burst end", True, 0.0),
}
SIDES = {
    "polyfeed": "polyfeed MarketConnection + session",
    "minimal": "hand-written minimal picows client, the same books",
}
OTHERS = {  # one run each, beside the minimal client without the hash
    "websockets": "websockets (asyncio) + msgspec + the same books",
    "quickstart": f"quickstart: websocket-client + json.loads, no book, {QUICKSTART_FRAMES:,} frames",
}


def main() -> None:
    frames, assets = subscribed_stream(N_FRAMES)
    in_books, total = concerning(frames, assets)
    assert total == len(frames), "one message a frame: frames/s and messages/s are the same"
    polyfeed_calls, minimal_calls = book_work(frames, assets)
    mean = sum(map(len, frames)) / len(frames)
    with tempfile.NamedTemporaryFile(suffix=".ws", delete=False) as tmp:
        tmp.write(b"".join(frame(f) for f in frames))
    server = subprocess.Popen([sys.executable, str(HERE / "pushserver.py"), tmp.name], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = f"ws://127.0.0.1:{int(server.stdout.readline())}/ws/market"

        def paired(side: str, verify_hash: bool, interval_s: float) -> Callable[[], Result]:
            client = polyfeed_client if side == "polyfeed" else minimal_picows
            return lambda: asyncio.run(client(url, assets, total, verify_hash, interval_s))

        runs: list[tuple[str, Callable[[], Result]]] = []
        for round_ in range(ROUNDS):
            pairs = [
                (side + key, paired(side, verify_hash, interval_s))
                for key, (_, verify_hash, interval_s) in CHECKS.items()
                for side in SIDES
            ]
            runs += pairs if round_ % 2 == 0 else pairs[::-1]  # neither side always goes first
        runs += [
            ("websockets", lambda: asyncio.run(websockets_client(url, assets, total))),
            ("quickstart", lambda: quickstart_client(url, assets, QUICKSTART_FRAMES)),
        ]
        wall: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        work: dict[str, tuple[int, int]] = {}
        for key, run in runs:
            by_wall, by_cpu, checked = run()
            wall.setdefault(key, []).append(by_wall)
            cpu.setdefault(key, []).append(by_cpu)
            if checked is not None:
                work[key] = checked
    finally:
        server.terminate()
        server.wait()
        Path(tmp.name).unlink()

    def row(what: str, key: str, base: str) -> str:
        ratios = (f"{max(r[key]) / max(r[base]):.2f}" if base else "" for r in (wall, cpu))
        checked = "{:,}/{:,}".format(*work[key]) if key in work else "-"
        figures = f"{max(wall[key]):>7,.0f} {next(ratios):>5} {max(cpu[key]):>9,.0f} {next(ratios):>5}"
        return f"    {what:<64} {figures}  {checked}"

    print(
        f"one connection, {len(frames):,} recorded frames (one message each, mean {mean:.0f} bytes) "
        f"pushed as fast as the server can;\n{len(assets)} tokens of {len(assets) // 2} markets that never "
        "resolve, all subscribed:"
    )
    share = in_books / len(frames)
    print(f"  frames concerning the subscribed books: {in_books:,} of {len(frames):,} ({share:.1%})")
    print("  book work on these frames, counted in an untimed pass:")
    print(f"    polyfeed session: {calls_text(polyfeed_calls)}")
    print(f"    minimal client:   {calls_text(minimal_calls)}")
    print(
        f"  best of {ROUNDS} rounds; a ratio is to the minimal client with the same checks, of the best runs:"
    )
    print(f"    {'':<64} {'msg/s':>7} {'ratio':>5} {'msg/CPU-s':>9} {'ratio':>5}  checks passed/failed")
    for key, (heading, _, _) in CHECKS.items():
        print(f"  {heading}:")
        for side, what in SIDES.items():
            print(row(what, side + key, "minimal" + key if side == "polyfeed" else ""))
    print("  one run each, beside the minimal client without the hash:")
    for key, what in OTHERS.items():
        print(row(what, key, "minimal"))
    print("  polyfeed / minimal client, each round's (wall time; CPU time):")
    for key, (heading, _, _) in CHECKS.items():
        each = [
            " ".join(f"{a / b:.2f}" for a, b in zip(r["polyfeed" + key], r["minimal" + key], strict=True))
            for r in (wall, cpu)
        ]
        print(f"    {heading.split(':')[0]:<64} {each[0]}; {each[1]}")


if __name__ == "__main__":
    main()
