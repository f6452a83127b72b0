"""``polyfeed markets``: the markets and tokens behind a slug, a polymarket.com URL or a token id."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from typing import Annotated

import typer
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from polyfeed.cli.errors import run_command
from polyfeed.cli.options import (
    GammaUrl,
    Local,
    RestUrl,
    Timeout,
    VenueOptions,
    WsUrl,
    open_venue,
)
from polyfeed.cli.terminal import abbreviate, err_console, out_console, spinner
from polyfeed.net.gamma import TokenInfo, complete_from_books, lookup
from polyfeed.net.transport import http_session

__all__ = ["EPILOG", "find_tokens", "markets_command", "render_markets"]

EPILOG = """**Examples**

* `polyfeed markets fed-decision-in-december`
* `polyfeed markets https://polymarket.com/event/fed-decision-in-december`
* `polyfeed markets 7667...1111 --json | jq -r '.[].token_id'`
* `polyfeed markets sim-event-0 --local`
"""


def markets_command(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY|SLUG|URL",
            help="An event or market slug, a polymarket.com URL, a token id or a condition id (0x...).",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array of tokens on stdout, for programs.")
    ] = False,
    ws_url: WsUrl = None,
    rest_url: RestUrl = None,
    gamma_url: GammaUrl = None,
    local: Local = False,
    timeout: Timeout = 30.0,
) -> None:
    """The markets and tokens behind a slug, a polymarket.com URL or a token id.

    For each outcome: its token id, price, tick size, minimum order size and neg-risk, from Gamma, and
    from REST `/books` for what Gamma leaves out. A table for people; `--json` for programs.
    """
    venue = VenueOptions(ws_url, rest_url, gamma_url, local)
    tokens = run_command("markets", find_tokens(venue, query, timeout))
    if tokens is None:  # Ctrl-C
        return
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(t) for t in tokens], indent=2) + "\n")
        return
    out_console().print(render_markets(tokens))


async def find_tokens(venue: VenueOptions, query: str, timeout_s: float) -> list[TokenInfo]:
    """Gamma's tokens for ``query``, completed from REST ``/books`` where Gamma leaves fields out (a
    spinner on stderr meanwhile, when it is a terminal)."""
    async with open_venue(venue) as urls, http_session(timeout_s) as http:
        with spinner(err_console(), f"asking Gamma for {query}") as say:
            tokens = await lookup(http, urls.gamma_url, query)
            if not all(t.complete for t in tokens):
                say("tick and minimum sizes from REST /books")
                tokens = await complete_from_books(http, urls.rest_url, tokens)
    return tokens


def render_markets(tokens: list[TokenInfo]) -> RenderableType:
    """A table a market, under its event's title: each outcome's price, tick, minimum size, neg-risk
    and token id (which folds over several lines on a narrow terminal, never cut)."""
    parts: list[RenderableType] = []
    last_event: str | None = None
    for _, group in itertools.groupby(tokens, key=lambda t: (t.condition_id, t.market_slug)):
        outcomes = list(group)
        first = outcomes[0]
        if first.event_slug and first.event_slug != last_event:
            last_event = first.event_slug
            parts.append(
                Text.assemble(("event ", "dim"), (first.event_title or "", "bold"), f" ({last_event})")
            )
        caption = f"{first.market_slug} · condition {abbreviate(first.condition_id, 6)}"
        table = Table(
            title=first.question or first.market_slug,
            caption=caption,
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("outcome")
        table.add_column("price", justify="right")
        table.add_column("tick", justify="right")
        table.add_column("min size", justify="right")
        table.add_column("neg risk")
        table.add_column("token id", overflow="fold", min_width=20)
        for token in outcomes:
            table.add_row(
                token.outcome,
                token.price or "-",
                token.tick_size or "?",
                token.min_order_size or "?",
                {True: "yes", False: "no", None: "?"}[token.neg_risk],
                token.token_id,
            )
        parts.append(table)
    return Group(*parts)
