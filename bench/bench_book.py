"""Order-book costs: apply per price_change entry (with the top-of-book and crossed checks), the same
with the hash check at burst ends, a 60-level-a-side snapshot, top-10 levels, and the book hash."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from polyfeed.book import OrderBook
from polyfeed.wire import Book, PriceChange, decode_market
from synthetic import NO, YES, market_stream

N_MESSAGES = 30_000
REPEATS = 5


def best_ns(run: Callable[[], None], repeats: int = REPEATS) -> int:
    best = 1 << 62
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        best = min(best, time.perf_counter_ns() - start)
    return best


def stream_books(verify_hash: bool) -> tuple[float, int, int]:
    """Apply a decoded stream to the YES and NO books; returns (µs per entry, checks passed, failed)."""
    messages = [m for frame in market_stream(N_MESSAGES, mixed=False) for m in decode_market(frame)]
    initial = [m for m in messages[:2] if isinstance(m, Book)]
    changes = [m for m in messages[2:] if isinstance(m, PriceChange)]
    entries = sum(len(m.price_changes) for m in changes)
    result: dict[str, OrderBook] = {}

    def run() -> None:
        books = [OrderBook(YES, verify_hash=verify_hash), OrderBook(NO, verify_hash=verify_hash)]
        for book, snapshot in zip(books, initial, strict=True):
            book.apply(snapshot)
        yes, no = books
        for message in changes:
            yes.apply(message)
            no.apply(message)
        result["yes"], result["no"] = yes, no

    elapsed = best_ns(run)
    passed = sum(b.checks.total_passed for b in result.values())
    failed = sum(b.checks.total_failed for b in result.values())
    return elapsed / entries / 1000, passed, failed


def main() -> None:
    messages = [m for frame in market_stream(200) for m in decode_market(frame)]
    snapshot = next(m for m in messages if isinstance(m, Book) and m.asset_id == YES)
    levels = len(snapshot.bids), len(snapshot.asks)
    book = OrderBook(YES)
    book.apply(snapshot)
    n = 20_000

    print(f"order book ({levels[0]} bids x {levels[1]} asks, tick 0.001), best of {REPEATS}:")
    us, passed, failed = stream_books(verify_hash=False)
    print(
        f"  apply price_change entry + top-of-book/crossed checks: {us:6.3f} us/entry "
        f"({passed} checks passed, {failed} failed)"
    )
    us, passed, failed = stream_books(verify_hash=True)
    print(
        f"  ... with the hash check at every burst end as well:   {us:6.3f} us/entry "
        f"({passed} checks passed, {failed} failed)"
    )

    def snapshots() -> None:
        for _ in range(2_000):
            book.apply(snapshot)

    book.verify_hash = False
    print(
        f"  snapshot, {levels[0]}+{levels[1]} levels:                     "
        f"{best_ns(snapshots) / 2_000 / 1000:6.2f} us"
    )

    def top10() -> None:
        for _ in range(n):
            book.bids(10)
            book.asks(10)

    print(f"  top-10 levels of both sides (Decimal Levels):          {best_ns(top10) / n / 1000:6.2f} us")

    def hashes() -> None:
        for _ in range(n):
            book.compute_hash("1790658827000")

    print(f"  book hash, {levels[0]}+{levels[1]} levels:{'':20} {best_ns(hashes) / n / 1000:6.2f} us")
    bids, asks = book.wire_levels()

    def naive() -> None:
        for _ in range(2_000):
            obj = {
                "market": book.market,
                "asset_id": YES,
                "timestamp": "1790658827000",
                "hash": "",
                "bids": [{"price": lv.price, "size": lv.size} for lv in bids],
                "asks": [{"price": lv.price, "size": lv.size} for lv in asks],
                "min_order_size": "5",
                "tick_size": "0.001",
                "neg_risk": False,
                "last_trade_price": "0.5",
            }
            hashlib.sha1(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()

    print(
        f"  (naive json.dumps + sha1 of the same book:             {best_ns(naive) / 2_000 / 1000:6.2f} us)"
    )


if __name__ == "__main__":
    main()
