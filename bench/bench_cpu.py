"""CPU share of a MarketStream with 100 TLS connections carrying 20,000 messages/s in total.

The server (bench/paceserver.py, its own process) paces a recorded stream per token over wss: what the
venue sends a connection subscribed to that token, so every frame concerns its book (the share is
printed). The client is a plain ``MarketStream`` (one asset a connection, so 100 connections; hash and
top-of-book checks on, as by default) whose events a consumer drains with ``async for``. Once every book
is live, the client process's CPU time is measured over a window of wall time.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

from polyfeed.book import BookStatus
from polyfeed.session import MessageReceived
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run

CONNECTIONS = 100
TOTAL_RATE = 20_000
WINDOW_S = 10.0
HERE = Path(__file__).parent


async def measure(
    port: int, tokens: list[str], context: ssl.SSLContext
) -> tuple[float, float, int, int, int]:
    base = f"127.0.0.1:{port}"
    count = 0
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

        consumer = asyncio.create_task(consume())
        while len(stream.books) < len(tokens) or any(
            b.status is not BookStatus.LIVE for b in stream.books.values()
        ):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        wall, cpu, before = time.perf_counter(), time.process_time(), count
        await asyncio.sleep(WINDOW_S)
        wall, cpu, messages = time.perf_counter() - wall, time.process_time() - cpu, count - before
        consumer.cancel()
        live = sum(b.status is BookStatus.LIVE for b in stream.books.values())
        failed = sum(b.checks.total_failed for b in stream.books.values())
        connections = len(stream._pool.connections) if stream._pool is not None else 0
    return messages / wall, cpu / wall, live, connections, failed


def main() -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    client = ssl.create_default_context()
    authority.configure_trust(client)
    seconds = 2 * WINDOW_S + 15  # opening 100 connections, waiting for all books, the window, and spare
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        args = [
            str(cert_path),
            str(key_path),
            str(CONNECTIONS // 2),
            str(TOTAL_RATE / CONNECTIONS),
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
            results = [
                ("uvloop", run(measure(int(port), ids, client))),
                ("asyncio", asyncio.run(measure(int(port), ids, client))),
            ]
        finally:
            server.terminate()
            server.wait()
    print(f"{CONNECTIONS} TLS connections, {TOTAL_RATE:,} msgs/s in total, hash checks on, events consumed:")
    concern = in_books / frames
    print(f"  frames concerning the book of their connection: {in_books:,} of {frames:,} ({concern:.1%})")
    for loop, (rate, share, live, connections, failed) in results:
        print(
            f"  {loop:<8} {connections} connections, {rate:>7,.0f} messages/s, {live}/{len(ids)} books live, "
            f"{failed} failed checks: {share:6.1%} of one core, {share / rate * 1e6:5.1f} us CPU a message"
        )


if __name__ == "__main__":
    main()
