"""CPU share of a MarketStream with 100 TLS connections carrying 20,000 messages/s in total.

The server (bench/paceserver.py, its own process) paces a recorded stream per token over wss: what the
venue sends a connection subscribed to that token, so every frame concerns its book (the share is
printed). The client is a plain ``MarketStream`` (one asset a connection, so 100 connections; hash and
top-of-book checks on, as by default) whose events a consumer drains with ``async for``. Once every book
is live, the client process's CPU time is measured over a window of wall time.

    python bench_cpu.py [--connections N] [--rate MSGS_S] [--window S] [--loop uvloop|asyncio] [--failures]

``--failures`` prints each check that failed (the book, its ``last_failure``, its status) with the frames
its connection received just before it, and each disconnect: to tell a fault of the served stream from
one of polyfeed's books.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import trustme

from polyfeed.book import BookStatus, CheckFailure, OrderBook
from polyfeed.session import Disconnected, MessageReceived, Reconnected, StatusChanged
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run
from polyfeed.wire import Book, PriceChange, timestamp_ms

CONNECTIONS = 100
TOTAL_RATE = 20_000
WINDOW_S = 10.0
LIVE_WITHIN_S = 30.0  # measured anyway past this, books not live counted as such
HERE = Path(__file__).parent
RECENT = 4000  # frames of a connection kept to print those around a failed check (--failures)


def _short(message: object, asset: str) -> str:
    """A frame in a line: its type and timestamp, and of a price change only the entries of ``asset``."""
    if isinstance(message, PriceChange):
        entries = [
            f"{e.side} {e.price} x {e.size} (venue top {e.best_bid}/{e.best_ask})"
            for e in message.price_changes
            if e.asset_id == asset
        ]
        return f"price_change {message.timestamp}: {'; '.join(entries)}"
    if isinstance(message, Book):
        bids, asks = message.bids, message.asks
        top = f"{bids[-1].price if bids else '-'}/{asks[-1].price if asks else '-'}"
        return f"book {message.timestamp} of {message.asset_id[:12]}..: top {top}"
    text = msgspec.json.encode(message).decode()
    return text if len(text) <= 300 else text[:300] + "..."


class Failures:
    """--failures: each failed check as it happens (a book's failed count grew after a message), with the
    frames its connection received just before, and the connections' disconnects."""

    def __init__(self) -> None:
        self.recent: dict[int, collections.deque[MessageReceived]] = collections.defaultdict(
            lambda: collections.deque(maxlen=RECENT)
        )
        self.failed: dict[str, int] = {}
        self.assets: dict[int, set[str]] = collections.defaultdict(set)  # connection -> its books seen
        self.seen = 0
        self.pending: list[tuple[str, OrderBook, int, CheckFailure | None, BookStatus, str]] = []

    def on_event(self, event: object, stream: MarketStream, started_ns: int) -> None:
        connection_id = getattr(event, "connection_id", -1)
        if isinstance(event, MessageReceived):
            self.recent[connection_id].append(event)
            asset = getattr(event.message, "asset_id", None)
            if isinstance(asset, str) and asset in stream.books:  # a snapshot names its connection's book
                self.assets[connection_id].add(asset)
        elif isinstance(event, (Disconnected, Reconnected)):
            what = event.reason if isinstance(event, Disconnected) else f"gap {event.gap_ns / 1e9:.2f} s"
            print(f"  [conn {event.connection_id}] {type(event).__name__}: {what} {event.assets}", flush=True)
        elif isinstance(event, StatusChanged) and event.old is not BookStatus.SYNCING:
            print(
                f"  [conn {event.connection_id}] {event.asset_id[:12]}.. {event.old.name} -> {event.new.name}"
                f" at {(event.recv_ns - started_ns) / 1e9:.3f} s: {event.reason}",
                flush=True,
            )
        for asset in self.assets.get(connection_id, ()):  # a failed check may change no status
            book = stream.books[asset]
            failed = book.checks.total_failed
            if failed != self.failed.get(asset, 0):
                self.failed[asset] = failed
                # printed once this consumer has read the connection's frames past the failure (the
                # books run ahead of the events read)
                self.pending.append(
                    (asset, book, connection_id, book.last_failure, book.status, book.status_reason)
                )
        if self.pending and isinstance(event, MessageReceived):
            ts = timestamp_ms(getattr(event.message, "timestamp", "")) or 0
            for item in [p for p in self.pending if p[2] == connection_id]:
                failure = item[3]
                if failure is None or ts > failure.timestamp_ms + 2:
                    self.pending.remove(item)
                    self.report(*item)

    def report(
        self,
        asset: str,
        book: OrderBook,
        connection_id: int,
        failure: CheckFailure | None,
        status: BookStatus,
        reason: str,
    ) -> None:
        """The failure, and the frames of its connection from two venue ms before its timestamp to one
        after, with when each was received (ms after the first of them)."""
        self.seen += 1
        print(f"FAILED CHECK #{self.seen}: asset {asset} on connection {connection_id}", flush=True)
        print(f"  last_failure: {failure}")
        print(f"  status then: {status.name} ({reason}); now {book.status.name}")
        if failure is None:
            return
        around = [
            r
            for r in self.recent.get(connection_id, ())
            if abs(int(getattr(r.message, "timestamp", 0) or 0) - failure.timestamp_ms - 0.5) < 2
        ]
        first = around[0].recv_ns if around else 0
        for received in around:
            print(f"    +{(received.recv_ns - first) / 1e6:7.1f} ms  {_short(received.message, asset)}")
        print(flush=True)


async def measure(
    port: int, tokens: list[str], context: ssl.SSLContext, window_s: float, show_failures: bool
) -> tuple[float, float, int, int, int]:
    base = f"127.0.0.1:{port}"
    count = 0
    started_ns = time.monotonic_ns()
    failures = Failures() if show_failures else None
    async with MarketStream(
        tokens,
        ws_url=f"wss://{base}/ws/market",
        rest_url=f"https://{base}",
        per_connection=1,
        connect_interval_s=0.02,
        ssl_context=context,
    ) as stream:

        async def consume() -> None:
            nonlocal count
            async for event in stream:
                if isinstance(event, MessageReceived):
                    count += 1
                if failures is not None:
                    failures.on_event(event, stream, started_ns)

        consumer = asyncio.create_task(consume())
        deadline = time.monotonic() + LIVE_WITHIN_S
        while time.monotonic() < deadline and (
            len(stream.books) < len(tokens)
            or any(b.status is not BookStatus.LIVE for b in stream.books.values())
        ):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        wall, cpu, before = time.perf_counter(), time.process_time(), count
        await asyncio.sleep(window_s)
        wall, cpu, messages = time.perf_counter() - wall, time.process_time() - cpu, count - before
        consumer.cancel()
        live = sum(b.status is BookStatus.LIVE for b in stream.books.values())
        failed = sum(b.checks.total_failed for b in stream.books.values())
        connections = len(stream._pool.connections) if stream._pool is not None else 0
    return messages / wall, cpu / wall, live, connections, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="one token each (even)")
    parser.add_argument("--rate", type=float, default=TOTAL_RATE, help="messages a second, in total")
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds measured")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), action="append", help="default: both")
    parser.add_argument("--failures", action="store_true", help="print each failed check with its frames")
    options = parser.parse_args()
    connections, total_rate, window_s = options.connections, options.rate, options.window
    loops = options.loop or ["uvloop", "asyncio"]
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    client = ssl.create_default_context()
    authority.configure_trust(client)
    # the stream both runs share (it never goes back in time): for each, opening the connections,
    # waiting for all books, the window; and spare
    seconds = 2 * (window_s + 10) + 15
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        args = [
            str(cert_path),
            str(key_path),
            str(connections // 2),
            str(total_rate / connections),
            str(seconds),
        ]
        server = subprocess.Popen(
            [sys.executable, str(HERE / "paceserver.py"), *args], stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            port, *tokens = server.stdout.readline().split()
            ids = [t.decode() for t in tokens]
            in_books, frames = map(int, server.stdout.readline().split())
            results = []
            for loop in loops:
                work = measure(int(port), ids, client, window_s, options.failures)
                results.append((loop, run(work) if loop == "uvloop" else asyncio.run(work)))
        finally:
            server.terminate()
            server.wait()
    print(
        f"{connections} TLS connections, {total_rate:,.0f} msgs/s in total, hash checks on, events consumed:"
    )
    concern = in_books / frames
    print(f"  frames concerning the book of their connection: {in_books:,} of {frames:,} ({concern:.1%})")
    for loop, (rate, share, live, connections, failed) in results:
        print(
            f"  {loop:<8} {connections} connections, {rate:>7,.0f} messages/s, {live}/{len(ids)} books live, "
            f"{failed} failed checks: {share:6.1%} of one core, {share / rate * 1e6:5.1f} us CPU a message"
        )


if __name__ == "__main__":
    main()
