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
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import aiohttp

from polyfeed.book import BookStatus
from polyfeed.session import Event, MessageReceived
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run
from polyfeed.venue import Venue
from polyfeed.wire import Book, decode_market


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


async def measure(base: str, window_s: float, rate: float, check: bool) -> None:
    messages = 0

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
        wall, cpu, before = time.perf_counter(), time.process_time(), messages
        await asyncio.sleep(window_s)
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
        if check:
            await compare_sample(base, stream)


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
    args = parser.parse_args()
    print(f"the whole market: {args.markets:,} markets ({2 * args.markets:,} tokens), one MarketStream")
    for rate in (float(r) for r in args.rates.split(",")):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with exchange(args.markets, rate, port) as process:
            up = run(wait_up(base, process))
            print(f"exchange up in {up:.1f} s, {rate:,.0f} events/s:")
            run(measure(base, args.window, rate, args.check))


if __name__ == "__main__":
    main()
