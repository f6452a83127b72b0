"""``python -m polyfeed``: the command line (a first version; the typer/rich CLI is issue 6).

- ``demo``: starts the local exchange in-process, subscribes to its busiest markets over a real
  WebSocket and prints their books, checked, as they move. Needs no network: the README's main job.
- ``sim``: runs the local exchange until Ctrl-C and prints the URLs it serves.
- ``capture``: books Polymarket's real captured crossing burst (2026-09-29: an initial book, 49 price
  changes on both tokens, a trade burst and the post-trade snapshot) and prints every check.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from polyfeed.book import BookStatus, OrderBook
from polyfeed.sim.faults import parse_fault_flag
from polyfeed.wire import Book, LastTradePrice, PriceChange, decode_market

_FIXTURE = Path("fixtures/polymarket/ws/market/price_change_crossing_burst.json")


def _shared_dir() -> Path:
    configured = os.environ.get("POLYFEED_SHARED")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared"


def capture(out: object = sys.stdout) -> int:
    """Decode and book the crossing burst; print the ladder and the checks. Returns the exit code."""
    path = _shared_dir() / _FIXTURE
    if not path.exists():
        print(
            f"polyfeed capture: {path} not found (set POLYFEED_SHARED to the shared folder)", file=sys.stderr
        )
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
        prog="polyfeed", description="Polymarket order books, exact and checked."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="watch checked books on the local exchange (no network)")
    demo_parser.add_argument("--seconds", type=float, default=8.0, help="how long to watch (0: until Ctrl-C)")
    demo_parser.add_argument("--markets", type=int, default=20, help="markets on the local exchange")
    demo_parser.add_argument("--seed", type=int, default=1)
    sim_parser = commands.add_parser(
        "sim",
        help="run the local exchange until Ctrl-C",
        epilog="example: polyfeed sim --port 8765 --markets 50 --seed 1",
    )
    sim_parser.add_argument("--host", default="127.0.0.1")
    sim_parser.add_argument("--port", type=int, default=8765)
    sim_parser.add_argument("--markets", type=int, default=50)
    sim_parser.add_argument("--seed", type=int, default=1)
    sim_parser.add_argument("--events-per-s", type=float, default=200.0, help="order-flow events a second")
    sim_parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:k=v,...]",
        help="inject this fault every --fault-every seconds, e.g. drop:mode=reset, zombie, "
        "corrupt, duplicate:count=20, delay:ms=200,count=50, reject_connects:count=3",
    )
    sim_parser.add_argument("--fault-every", type=float, default=30.0, metavar="SECONDS")
    commands.add_parser("capture", help="book Polymarket's captured crossing burst and print every check")
    args = parser.parse_args(argv)
    if args.command == "capture":
        return capture()
    from polyfeed import livedemo  # imports aiohttp; the capture walk-through does not need it

    if args.command == "demo":
        if args.markets < 1 or args.seconds < 0:
            parser.error("--markets must be at least 1 and --seconds not negative")
        return livedemo.run_demo(markets=args.markets, seed=args.seed, seconds=args.seconds)
    if args.markets < 1 or not 0 <= args.port < 65536 or args.events_per_s <= 0 or args.fault_every <= 0:
        parser.error(
            "--markets must be at least 1, --port within 0-65535, --events-per-s and --fault-every positive"
        )
    try:
        faults = [parse_fault_flag(flag) for flag in args.fault]
    except ValueError as exc:
        parser.error(f"--fault: {exc}")
    return livedemo.run_sim(
        host=args.host,
        port=args.port,
        markets=args.markets,
        seed=args.seed,
        events_per_s=args.events_per_s,
        faults=faults,
        fault_every_s=args.fault_every,
    )


if __name__ == "__main__":
    sys.exit(main())
