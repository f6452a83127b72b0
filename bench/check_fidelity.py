"""The check of the whole (issue 11): every token of a local exchange followed by one ``MarketStream`` for
minutes, trades printed at 2-decimal prices while the exchange hashes their 3-decimal text (spec 7.3),
and not one failed hash check.

The exchange is a witness, not a mirror: its hashes come from its own code written from the spec
(``polyfeed.sim.bookhash``), never from ``polyfeed.book``. At the end the flow is paused and every book
is compared with the exchange's own ``GET /book``.

    python bench/check_fidelity.py [--markets 100] [--seconds 180] [--events-per-s 300] [--seed 11]

Prints how many hash checks ran and failed (by kind), how many prints had fewer than 3 decimals, and
how many books at rest differ from the exchange. Exits 1 if any check failed or any book differs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

import aiohttp

from polyfeed import MarketStream
from polyfeed.book import BookStatus, CheckKind
from polyfeed.session import Event, MessageReceived
from polyfeed.sim import Simulator
from polyfeed.wire import Book, LastTradePrice, decode_market


async def check(markets: int, seconds: float, events_per_s: float, seed: int) -> int:
    prints: Counter[str] = Counter()

    def on_event(event: Event) -> None:
        if isinstance(event, MessageReceived) and isinstance(event.message, LastTradePrice):
            decimals = len(event.message.price.partition(".")[2])
            prints["under 3 decimals" if decimals < 3 else "3 decimals or more"] += 1

    async with Simulator(markets=markets, seed=seed, events_per_s=events_per_s) as sim:
        assets = sim.exchange.asset_ids()
        stream = MarketStream(
            assets, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, on_event=on_event, max_queue=0
        )
        started = time.perf_counter()
        async with stream, aiohttp.ClientSession() as http:
            while not all(b.status is BookStatus.LIVE for b in stream.books.values()):
                await asyncio.sleep(0.05)
            print(f"{len(assets)} books live after {time.perf_counter() - started:.1f} s", flush=True)
            start = time.perf_counter()
            while (left := start + seconds - time.perf_counter()) > 0:
                await asyncio.sleep(min(left, 30))
                passed = sum(b.checks.passed[CheckKind.HASH] for b in stream.books.values())
                failed = sum(b.checks.total_failed for b in stream.books.values())
                print(
                    f"  {time.perf_counter() - start:5.0f} s: {passed:,} hash checks passed, {failed} failed",
                    flush=True,
                )
            sim.pause()
            await asyncio.sleep(2.0)  # let the last frames arrive and every burst settle (settle_after_s)
            for book in stream.books.values():
                book.settle(final=True)
            differing = 0
            for asset, book in stream.books.items():
                async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                    if response.status == 404:  # resolved during the run
                        continue
                    truth = decode_market(await response.read())[0]
                assert isinstance(truth, Book)
                if book.status is BookStatus.LIVE and not book.same_levels(truth):
                    differing += 1
            books = list(stream.books.values())
            failed_by_kind: Counter[str] = Counter()
            for book in books:
                for kind, count in book.checks.failed.items():
                    failed_by_kind[kind.value if isinstance(kind, CheckKind) else str(kind)] += count
            hash_passed = sum(b.checks.passed[CheckKind.HASH] for b in books)
            statuses = Counter(b.status.value for b in books)
    print(
        f"markets {markets}, books {len(books)}, {seconds:.0f} s at {events_per_s:.0f} events/s, seed {seed}"
    )
    print(f"trade prints: {dict(prints)}")
    print(f"hash checks passed: {hash_passed:,}")
    print(f"checks failed: {sum(failed_by_kind.values())} {dict(failed_by_kind)}")
    print(f"books by status at rest: {dict(statuses)}")
    print(f"LIVE books differing from the exchange's GET /book at rest: {differing}")
    return 1 if failed_by_kind or differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--events-per-s", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    sys.exit(asyncio.run(check(args.markets, args.seconds, args.events_per_s, args.seed)))


if __name__ == "__main__":
    main()
