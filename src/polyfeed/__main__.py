"""``python -m polyfeed``: the command line (a first version: ``demo`` only).

``demo`` replays Polymarket's captured crossing burst (a real market, 2026-09-29: an initial book, 49
price changes on both tokens, a trade burst and the post-trade snapshot) through polyfeed's decoder and
book, and prints the book and every check it ran. It needs no network. Until the local exchange lands,
this is the embedded default the README's main-job command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from polyfeed.book import BookStatus, OrderBook
from polyfeed.wire import Book, LastTradePrice, PriceChange, decode_market

_FIXTURE = Path("fixtures/polymarket/ws/market/price_change_crossing_burst.json")


def _shared_dir() -> Path:
    configured = os.environ.get("POLYFEED_SHARED")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared"


def demo(out: object = sys.stdout) -> int:
    """Decode and book the crossing burst; print the ladder and the checks. Returns the exit code."""
    path = _shared_dir() / _FIXTURE
    if not path.exists():
        print(f"polyfeed demo: {path} not found (set POLYFEED_SHARED to the shared folder)", file=sys.stderr)
        return 2
    messages = decode_market(path.read_bytes())
    initial = messages[0]
    assert isinstance(initial, Book)
    book = OrderBook(initial.asset_id)
    write = out.write  # type: ignore[attr-defined]
    for message in messages:
        book.apply(message)
        if isinstance(message, PriceChange) and book.status is not BookStatus.LIVE:
            write(f"  status {book.status.value}: {book.status_reason}\n")
    # The capture ends before the trade's print; the venue hashed its price (spec 7.3).
    book.apply(
        LastTradePrice(
            asset_id=initial.asset_id,
            market=initial.market,
            price="0.301",
            size="45.83",
            side="SELL",
            timestamp="1790658827000",
        )
    )
    write(f"{len(messages)} messages of market {initial.market[:10]}..., token {initial.asset_id[:12]}...\n")
    write(
        f"status: {book.status.value} ({book.status_reason}), tick {book.tick_size}, "
        f"last trade {book.last_trade_price}\n"
    )
    write(f"{'bid size':>14} {'bid':>7} | {'ask':<7} {'ask size':<14}\n")
    for bid, ask in zip(book.bids(10), book.asks(10), strict=False):
        write(f"{bid.size:>14} {bid.price:>7} | {ask.price:<7} {ask.size:<14}\n")
    write(f"mid {book.mid}  spread {book.spread}\n")
    write(f"checks: {book.checks}\n")
    return 0 if book.checks.total_failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="polyfeed", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="book Polymarket's captured crossing burst and print it (no network)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
