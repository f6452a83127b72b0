"""The ``demo`` and ``sim`` commands: the local exchange, and a checked live view of its books.

The view is a :class:`polyfeed.MarketStream` on the exchange: what a newcomer's own code would do.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Sequence
from typing import TextIO

from polyfeed.book import OrderBook
from polyfeed.sim import Simulator
from polyfeed.sim.faults import Fault
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run

__all__ = ["run_demo", "run_sim"]


def run_demo(*, markets: int = 20, seed: int = 1, seconds: float = 8.0, out: TextIO = sys.stdout) -> int:
    """Watch the busiest markets' YES books for ``seconds`` (0: until Ctrl-C); 0 if every check passed."""
    try:
        return run(_demo(markets, seed, seconds, out))
    except KeyboardInterrupt:
        return 0


def run_sim(
    *,
    host: str,
    port: int,
    markets: int,
    seed: int,
    events_per_s: float,
    faults: Sequence[Fault] = (),
    fault_every_s: float = 30.0,
    out: TextIO = sys.stdout,
) -> int:
    """Serve the local exchange until Ctrl-C, injecting ``faults`` in turn every ``fault_every_s``."""
    try:
        run(_sim(host, port, markets, seed, events_per_s, faults, fault_every_s, out))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"polyfeed sim: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


async def _sim(
    host: str,
    port: int,
    markets: int,
    seed: int,
    events_per_s: float,
    faults: Sequence[Fault],
    fault_every_s: float,
    out: TextIO,
) -> None:
    async with Simulator(markets, seed=seed, host=host, port=port, events_per_s=events_per_s) as sim:
        out.write(f"local exchange: {markets} markets, seed {seed}\n")
        out.write(
            f"  market channel  {sim.ws_url}/ws/market\n  REST            {sim.rest_url}/book?token_id=...\n"
        )
        for market in sim.exchange.markets[:3]:
            out.write(f"  {market.slug}: YES {market.yes}\n  {' ' * len(market.slug)}  NO  {market.no}\n")
        if faults:
            out.write(f"injecting {', '.join(f.kind for f in faults)} in turn every {fault_every_s:g} s\n")
        out.write("Ctrl-C to stop\n")
        out.flush()
        if not faults:
            await asyncio.Event().wait()
        for fault in itertools.cycle(faults):
            await asyncio.sleep(fault_every_s)
            await sim.inject(fault)
            out.write(f"injected {fault.kind}\n")
            out.flush()


async def _demo(markets: int, seed: int, seconds: float, out: TextIO) -> int:
    async with Simulator(markets, seed=seed, events_per_s=400) as sim:
        busiest = sorted(sim.exchange.markets, key=lambda m: -m.activity)[:4]
        names = {m.yes: m.slug for m in busiest}
        out.write(
            f"local exchange at {sim.ws_url}/ws/market; watching the YES books of {len(names)} markets\n"
        )
        async with MarketStream(
            list(names), ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url
        ) as stream:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds if seconds else float("inf")
            while loop.time() < deadline:
                await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))
                _print_books({a: stream.books[a] for a in names}, names, out)
            books = [stream.books[a] for a in names]
        failed = sum(b.checks.total_failed for b in books)
        passed = sum(b.checks.total_passed for b in books)
        out.write(f"{passed} checks passed, {failed} failed\n")
        return 0 if failed == 0 else 1


def _print_books(books: dict[str, OrderBook], names: dict[str, str], out: TextIO) -> None:
    out.write("\n")
    for asset, book in books.items():
        bids, asks = book.bids(3), book.asks(3)
        out.write(
            f"{names[asset]:<16} {book.status.value:<8} mid {book.mid!s:<7} spread {book.spread!s:<6} "
            f"checks {book.checks.total_passed} ok / {book.checks.total_failed} failed\n"
        )
        for n in range(3):
            bid = f"{bids[n].size:>10} @ {bids[n].price:<6}" if n < len(bids) else " " * 19
            ask = f"{asks[n].price:>6} x {asks[n].size:<10}" if n < len(asks) else ""
            out.write(f"    {bid} | {ask}\n")
    out.flush()
