"""``polyfeed demo``: the local exchange in-process, and the ``watch`` view on its busiest markets.

Needs no network: the README's main job. On a terminal it runs until Ctrl-C; piped or in CI it prints
plain frames and ends after ``--seconds`` (8 by default). Exit 1 if a book failed a check.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from polyfeed.cli.errors import run_command
from polyfeed.cli.options import Seconds, local_venue
from polyfeed.cli.terminal import out_console
from polyfeed.cli.view import BookLabel, WatchState
from polyfeed.cli.watch import Depth, show_books, summary
from polyfeed.sim import Simulator

__all__ = ["BOOKS", "EPILOG", "demo_command"]

EPILOG = """**Examples**

* `polyfeed demo`
* `polyfeed demo --markets 100 --seed 7 --seconds 30`
* `polyfeed demo --seconds 5 | tail -n 30`
"""

BOOKS = 4
"""YES books the demo watches: those of the exchange's busiest markets."""
_EVENTS_PER_S = 400
_PLAIN_SECONDS = 8.0


def demo_command(
    markets: Annotated[int, typer.Option(min=1, help="Markets on the local exchange.")] = 20,
    seed: Annotated[int, typer.Option(help="The order flow's seed: the same seed, the same stream.")] = 1,
    seconds: Seconds = None,
    depth: Depth = None,
) -> None:
    """Watch the busiest books of a local exchange started in-process: no network needed.

    The exchange speaks Polymarket's protocol on a loopback port; the books come over a real WebSocket,
    checked as on the venue. Runs until Ctrl-C on a terminal; piped or in CI, prints plain frames for
    8 seconds (or `--seconds`). Exits 1 if a book failed a check.
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
        busiest = sorted(sim.exchange.markets, key=lambda m: -m.activity)[:BOOKS]
        venue = local_venue(sim)
        console.print(
            f"local exchange at {venue.ws_url} ({markets} markets, seed {seed}); "
            f"watching the YES books of its {len(busiest)} busiest markets",
            soft_wrap=True,
        )
        labels = {m.yes: BookLabel(m.slug, "Yes") for m in busiest}
        await show_books(venue, list(labels), labels, state, console, seconds=seconds, depth=depth)
