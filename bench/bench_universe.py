"""The whole market on one core: ``MarketStream.all_markets`` on every token of a local exchange the size
of Polymarket's universe (22,800 markets, 45,600 tokens by default).

The exchange runs in its own process (``polyfeed sim``, markets that never resolve); this process runs
the stream, paging the exchange's Gamma and subscribing every token (500 a connection, so 92
connections). It prints:

- the time from entering the stream to every book live, and how it splits (Gamma and subscriptions,
  then the snapshots);
- the client's resident memory once every book is live, and per book;
- at each order-flow rate, the client's CPU time per message and its share of one core over a window;
- books not live at the end, by status and reason;
- with ``--check``, a sample of books compared with the exchange's ``GET /book`` with the flow paused.

Usage: ``python bench_universe.py [--markets 22800] [--rates 2000,6000] [--window 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import aiohttp
import msgspec
import picows

from baseline import MinimalBooks
from polyfeed.book import BookStatus
from polyfeed.net.gamma import active_markets
from polyfeed.session import Event, MessageReceived
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run
from polyfeed.venue import Venue
from polyfeed.wire import PING, Book, decode_market, encode_market_subscription


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def exchange(markets: int, rate: float, port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "polyfeed", "sim", "--markets", str(markets), "--port", str(port)]
    command += ["--events-per-s", str(rate), "--lifetime", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def wait_up(base: str, process: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the exchange exited ({process.returncode})")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/time") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.2)


async def measure(base: str, window_s: float, rate: float, args: argparse.Namespace) -> None:
    messages = 0
    if args.memory_top:
        tracemalloc.start(4)

    def count(event: Event) -> None:
        nonlocal messages
        if type(event) is MessageReceived:
            messages += 1

    started = time.perf_counter()
    stream = MarketStream.all_markets(venue=Venue.local(base), on_event=count, max_queue=0, poll_s=0)
    async with stream:
        entered = time.perf_counter() - started
        books = stream.books
        print(
            f"  Gamma paged and {len(books):,} tokens subscribed in {entered:.1f} s "
            f"({len(stream.sessions)} connections)"
        )
        while any(b.status is not BookStatus.LIVE for b in books.values()):
            await asyncio.sleep(0.25)
            if time.perf_counter() - started > 600:
                break
        live_s = time.perf_counter() - started
        live = sum(1 for b in books.values() if b.status is BookStatus.LIVE)
        print(f"  every book live after {live_s:.1f} s ({live:,} of {len(books):,} live)")
        await asyncio.sleep(2.0)
        rss = rss_mib()
        print(f"  client RSS {rss:,.0f} MiB ({rss * 1024 / max(1, len(books)):.1f} KiB a book)")
        if args.memory_top:
            print_memory_top(args.memory_top, len(books))
        profile = cProfile.Profile() if args.profile else None
        wall, cpu, before = time.perf_counter(), time.process_time(), messages
        if profile is not None:
            profile.enable()
        await asyncio.sleep(window_s)
        if profile is not None:
            profile.disable()
            profile.dump_stats(f"{args.profile}.{rate:.0f}")
        wall, cpu, got = time.perf_counter() - wall, time.process_time() - cpu, messages - before
        per = cpu / got * 1e6 if got else float("nan")
        print(
            f"  at {rate:,.0f} events/s: {got / wall:,.0f} messages/s, {per:.1f} us CPU a message, "
            f"{cpu / wall:.0%} of a core"
        )
        not_live = Counter(
            (b.status.value, b.status_reason.split(":")[0])
            for b in books.values()
            if b.status is not BookStatus.LIVE
        )
        failed = sum(b.checks.total_failed for b in books.values())
        print(f"  checks failed: {failed:,}; books not live: {dict(not_live) or 'none'}")
        if args.check:
            await compare_sample(base, stream)


async def minimal_client(
    base: str, window_s: float, per_connection: int, interval_s: float
) -> dict[str, float]:
    """The minimal client on the same universe: Gamma's listing, then picows connections of
    ``per_connection`` tokens opened ``interval_s`` apart, each frame decoded and applied to the same
    books (:class:`baseline.MinimalBooks`: polyfeed's ``OrderBook``, hash on polyfeed's schedule, the
    metadata from Gamma), with no session: no events, statuses, deadlines, resyncs or timers."""
    started = time.perf_counter()
    tokens = []
    async with aiohttp.ClientSession() as http:
        async for page in active_markets(http, base):
            tokens.extend(token for market in page for token in market.tokens)
    minimal = MinimalBooks([t.token_id for t in tokens], verify_hash=True, hash_every_ms=1000)
    for token in tokens:
        minimal.books[token.token_id].set_metadata(
            min_order_size=token.min_order_size, tick_size=token.tick_size, neg_risk=token.neg_risk
        )
    messages = 0

    class Listener(picows.WSListener):
        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            nonlocal messages
            if frame.msg_type == picows.WSMsgType.TEXT:
                payload = frame.get_payload_as_bytes()
                if payload != b"PONG":
                    messages += minimal.frame(payload)

    url = Venue.local(base).market_url
    transports = []
    ids = [t.token_id for t in tokens]
    for i in range(0, len(ids), per_connection):
        transport, _ = await picows.ws_connect(Listener, url, max_frame_size=64 * 2**20)
        transport.send(picows.WSMsgType.TEXT, encode_market_subscription(ids[i : i + per_connection]))
        transports.append(transport)
        await asyncio.sleep(interval_s)
    subscribed_s = time.perf_counter() - started
    books = minimal.books
    while any(b.status is BookStatus.SYNCING for b in books.values()) and time.perf_counter() - started < 600:
        await asyncio.sleep(0.25)
    live_s = time.perf_counter() - started
    await asyncio.sleep(2.0)
    rss = rss_mib()
    wall, cpu, before = time.perf_counter(), time.process_time(), messages
    end = wall + window_s
    while time.perf_counter() < end:
        await asyncio.sleep(min(5.0, max(0.0, end - time.perf_counter())))
        for transport in transports:
            transport.send(picows.WSMsgType.TEXT, PING)
    wall, cpu, got = time.perf_counter() - wall, time.process_time() - cpu, messages - before
    for transport in transports:
        transport.disconnect()
    _, failed = minimal.checks()
    return {
        "subscribed_s": subscribed_s,
        "live_s": live_s,
        "books": len(books),
        "rss_mib": rss,
        "messages_s": got / wall,
        "cpu_us": cpu / got * 1e6 if got else float("nan"),
        "share": cpu / wall,
        "failed": failed,
    }


def measure_minimal(base: str, window_s: float) -> None:
    """The minimal client in a process of its own (its memory and CPU alone), on the same exchange."""
    command = [sys.executable, __file__, "--minimal-client", base, "--window", str(window_s)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    r = msgspec.json.decode(out.strip().splitlines()[-1])
    print(
        f"  minimal client: every book received after {r['live_s']:.1f} s "
        f"(connections opened after {r['subscribed_s']:.1f} s); RSS {r['rss_mib']:,.0f} MiB "
        f"({r['rss_mib'] * 1024 / max(1, r['books']):.1f} KiB a book); {r['messages_s']:,.0f} messages/s, "
        f"{r['cpu_us']:.1f} us CPU a message, {r['share']:.0%} of a core; checks failed: {r['failed']:,.0f}"
    )


def print_memory_top(lines: int, books: int) -> None:
    """Where the memory held now was allocated (tracemalloc, traced since the stream began)."""
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("traceback")
    total = sum(stat.size for stat in stats)
    print(f"  traced: {total / 2**20:,.0f} MiB ({total / max(1, books):,.0f} B a book); the biggest:")
    for stat in stats[:lines]:
        where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in stat.traceback)
        print(f"    {stat.size / max(1, books):8,.0f} B a book  {stat.count:9,}  {where}")
    tracemalloc.stop()


async def compare_sample(base: str, stream: MarketStream) -> None:
    """Books equal to the exchange's with the flow paused (needs the exchange's flow control)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/control/flow", json={"paused": True}) as response:
            if response.status != 200:
                print("  (no flow control on this exchange: the sample check is skipped)")
                return
        await asyncio.sleep(2.0)
        sample = list(stream.books)[::97]
        wrong = 0
        for asset in sample:
            async with http.get(base + "/book", params={"token_id": asset}) as response:
                rest = decode_market(await response.read())[0]
            book = stream.books[asset]
            if (
                isinstance(rest, Book)
                and book.status is BookStatus.LIVE
                and book.wire_levels() != (rest.bids, rest.asks)
            ):
                wrong += 1
        print(f"  books live and wrong at a pause: {wrong} of {len(sample)} sampled")
        async with http.post(base + "/control/flow", json={"paused": False}):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=22_800)
    parser.add_argument("--rates", default="2000,6000", help="order-flow events a second, comma-separated")
    parser.add_argument("--window", type=float, default=20.0, help="seconds CPU is measured over")
    parser.add_argument("--check", action="store_true", help="compare a sample with the exchange, paused")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the CPU window into PATH.<rate>")
    parser.add_argument(
        "--memory-top", type=int, default=0, metavar="N", help="trace allocations; print the N biggest sites"
    )
    parser.add_argument("--minimal-client", metavar="BASE", help=argparse.SUPPRESS)
    parser.add_argument("--no-minimal", action="store_true", help="measure polyfeed alone")
    args = parser.parse_args()
    if args.minimal_client:
        result = run(minimal_client(args.minimal_client, args.window, 500, 0.1))
        print(msgspec.json.encode(result).decode())
        return
    print(f"the whole market: {args.markets:,} markets ({2 * args.markets:,} tokens), one MarketStream")
    for rate in (float(r) for r in args.rates.split(",")):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with exchange(args.markets, rate, port) as process:
            up = run(wait_up(base, process))
            print(f"exchange up in {up:.1f} s, {rate:,.0f} events/s:")
            run(measure(base, args.window, rate, args))
            if not args.no_minimal:
                measure_minimal(base, args.window)


if __name__ == "__main__":
    main()
