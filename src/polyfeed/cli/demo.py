"""``polyfeed demo``: the local exchange in-process, and the ``watch`` view on its busiest markets.

Needs no network: the README's main job. On a terminal it runs until Ctrl-C; piped or in CI it prints
plain frames and ends after ``--seconds`` (8 by default). Exit 1 if a book failed a check.

The exchange's markets resolve now and then (:mod:`polyfeed.sim.lifetimes`). A watched market that
resolves shows as ``RESOLVED`` for a few seconds; then its panel goes to the busiest live market not
yet watched, subscribed in place on the same stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container
from typing import Annotated

import typer
from rich.console import Console

from polyfeed.cli.errors import run_command
from polyfeed.cli.options import Seconds
from polyfeed.cli.terminal import out_console
from polyfeed.cli.view import BookLabel, WatchState
from polyfeed.cli.watch import Depth, show_books, summary
from polyfeed.sim import Exchange, SimMarket, Simulator
from polyfeed.stream import MarketStream

__all__ = [
    "BOOKS",
    "EPILOG",
    "RESOLVED_SHOWN_S",
    "busiest",
    "demo_command",
    "follow_busiest",
    "watch_busiest",
]

EPILOG = """**Examples**

* `polyfeed demo`
* `polyfeed demo --markets 100 --seed 7 --seconds 30`
* `polyfeed demo --seconds 5 | tail -n 30`
"""

BOOKS = 4
"""YES books the demo watches: those of the exchange's busiest markets."""
RESOLVED_SHOWN_S = 5.0
"""How long a resolved market's panel shows ``RESOLVED`` before a live market takes its place."""
_EVENTS_PER_S = 400
_PLAIN_SECONDS = 8.0
_FOLLOW_EVERY_S = 0.25


def demo_command(
    markets: Annotated[int, typer.Option(min=1, help="Markets on the local exchange.")] = 20,
    seed: Annotated[int, typer.Option(help="The order flow's seed: the same seed, the same stream.")] = 1,
    seconds: Seconds = None,
    depth: Depth = None,
) -> None:
    """Watch the busiest books of a local exchange started in-process: no network needed.

    The exchange speaks Polymarket's protocol on a loopback port; the books come over a real WebSocket,
    checked as on the venue. A market that resolves shows as resolved, then makes way for the busiest
    live one. Runs until Ctrl-C on a terminal; piped or in CI, prints plain frames for 8 seconds (or
    `--seconds`). Exits 1 if a book failed a check.
    """
    console = out_console()
    if seconds is None:
        seconds = 0.0 if console.is_terminal else _PLAIN_SECONDS
    state = WatchState()
    run_command("demo", _demo(markets, seed, seconds, depth, state, console))
    if state.books:
        console.print(summary(state), soft_wrap=True)
        if any(b.checks.total_failed for b in state.books.values()):
            raise typer.Exit(1)


async def _demo(
    markets: int, seed: int, seconds: float, depth: int | None, state: WatchState, console: Console
) -> None:
    async with Simulator(markets, seed=seed, events_per_s=_EVENTS_PER_S) as sim:
        await watch_busiest(sim, state, console, seconds=seconds, depth=depth)


def busiest(exchange: Exchange, count: int, *, besides: Container[str] = ()) -> list[SimMarket]:
    """The ``count`` busiest open markets of the exchange whose YES token is not in ``besides``."""
    markets = [m for m in exchange.markets if m.yes not in besides]
    return sorted(markets, key=lambda m: -m.activity)[:count]


async def watch_busiest(
    sim: Simulator,
    state: WatchState,
    console: Console,
    *,
    seconds: float | None,
    depth: int | None = None,
    books: int = BOOKS,
    resolved_shown_s: float = RESOLVED_SHOWN_S,
) -> None:
    """Draw the YES books of the exchange's ``books`` busiest markets, each resolved one replaced by
    the busiest live market not yet watched after ``resolved_shown_s`` (:func:`follow_busiest`)."""
    chosen = busiest(sim.exchange, books)
    venue = sim.venue
    console.print(
        f"local exchange at {venue.market_url} ({len(sim.exchange.markets)} markets, seed "
        f"{sim.seed}); watching the YES books of its {len(chosen)} busiest markets",
        soft_wrap=True,
    )
    order = [m.yes for m in chosen]
    labels = {m.yes: BookLabel(m.slug, "Yes") for m in chosen}

    async def tend(stream: MarketStream) -> None:
        await follow_busiest(sim.exchange, stream, order, labels, state, resolved_shown_s=resolved_shown_s)

    await show_books(venue, order, labels, state, console, seconds=seconds, depth=depth, tend=tend)


async def follow_busiest(
    exchange: Exchange,
    stream: MarketStream,
    order: list[str],
    labels: dict[str, BookLabel],
    state: WatchState,
    *,
    resolved_shown_s: float = RESOLVED_SHOWN_S,
) -> None:
    """Until cancelled: once a watched book has been closed (its market resolved) for
    ``resolved_shown_s``, subscribe to the YES book of the busiest open market not watched, put it in
    the closed one's place in ``order`` (and ``labels``), and unsubscribe the closed one."""
    while True:
        await asyncio.sleep(_FOLLOW_EVERY_S)
        now_ns = time.monotonic_ns()
        for slot, asset in enumerate(order):
            closed_ns = state.closed_ns.get(asset)
            if closed_ns is None or now_ns - closed_ns < resolved_shown_s * 1e9:
                continue
            candidates = busiest(exchange, 1, besides=order)
            if not candidates:  # every open market is watched already: the resolved one stays
                continue
            market = candidates[0]
            labels[market.yes] = BookLabel(market.slug, "Yes")
            await stream.subscribe([market.yes])
            order[slot] = market.yes
            stream.unsubscribe([asset])
