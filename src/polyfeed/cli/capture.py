"""``polyfeed capture``: Polymarket's real captured crossing burst (2026-09-29: an initial book, 49 price
changes on both tokens, a trade burst and the post-trade snapshot), booked, with every check printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

import typer

from polyfeed.book import BookStatus, OrderBook
from polyfeed.cli.errors import EXIT_USAGE, fail
from polyfeed.wire import Book, LastTradePrice, PriceChange, decode_market

__all__ = ["EPILOG", "capture", "capture_command"]

EPILOG = """**Examples**

* `polyfeed capture`
* `POLYFEED_SHARED=/path/to/shared polyfeed capture`
"""

_FIXTURE = Path("fixtures/polymarket/ws/market/price_change_crossing_burst.json")


def capture_command() -> None:
    """Book Polymarket's captured crossing burst and print every check.

    The capture comes from the shared folder beside the checkout (or `$POLYFEED_SHARED`); exits 1 if
    a check failed.
    """
    places = _shared_dirs()
    found = [place / _FIXTURE for place in places if (place / _FIXTURE).exists()]
    if not found:
        looked = ", ".join(str(place) for place in places)
        raise fail(
            "capture",
            f"the capture is not installed with polyfeed: it is {_FIXTURE} in the shared folder beside a "
            f"polyfeed checkout; set POLYFEED_SHARED to that folder (looked in {looked})",
            EXIT_USAGE,
        )
    code = capture(found[0])
    if code:
        raise typer.Exit(code)


def _shared_dirs() -> list[Path]:
    """Where the shared folder may be: ``$POLYFEED_SHARED`` if set (and only there); else ``../shared``
    beside the checkout polyfeed runs from (an editable install), and ``./shared`` and ``../shared`` of
    the working directory."""
    configured = os.environ.get("POLYFEED_SHARED")
    if configured:
        return [Path(configured)]
    places = [Path.cwd() / "shared", Path.cwd().parent / "shared"]
    package = Path(__file__).resolve().parents[1]  # .../src/polyfeed
    if package.parent.name == "src" and (package.parents[1] / "pyproject.toml").exists():
        places.insert(0, package.parents[2] / "shared")  # the checkout's parent
    return list(dict.fromkeys(p.resolve() for p in places))


def capture(path: Path, out: TextIO | None = None) -> int:
    """Decode and book the burst in ``path``; print the ladder and the checks. Returns the exit code."""
    out = out or sys.stdout
    messages = decode_market(path.read_bytes())
    initial = messages[0]
    if not isinstance(initial, Book):
        raise fail("capture", f"{path} does not start with a book snapshot")
    book = OrderBook(initial.asset_id)
    write = out.write
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
