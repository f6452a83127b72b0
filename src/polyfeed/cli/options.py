"""Options the network commands share, and the venue they point at.

Every network command takes ``--ws-url``, ``--rest-url`` and ``--gamma-url`` (Polymarket's by default)
and ``--local``, which starts the local exchange in-process and points all three at it. A new command
takes them by adding these parameters to its signature::

    def record_command(
        targets: Targets,
        ws_url: WsUrl = DEFAULT_WS_URL,
        rest_url: RestUrl = DEFAULT_REST_URL,
        gamma_url: GammaUrl = DEFAULT_GAMMA_URL,
        local: Local = False,
    ) -> None:
        venue = VenueOptions(ws_url, rest_url, gamma_url, local)
        ...
        async with open_venue(venue) as urls: ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlparse

import typer

from polyfeed.sim import Simulator
from polyfeed.stream.market import DEFAULT_GAMMA_URL, DEFAULT_REST_URL, DEFAULT_WS_URL

__all__ = [
    "DEFAULT_GAMMA_URL",
    "DEFAULT_REST_URL",
    "DEFAULT_WS_URL",
    "LOCAL_MARKETS",
    "GammaUrl",
    "Local",
    "RestUrl",
    "Seconds",
    "Targets",
    "Timeout",
    "Venue",
    "VenueOptions",
    "local_venue",
    "open_venue",
]

LOCAL_MARKETS = 20
"""Markets of the exchange ``--local`` starts (seed 1: slugs ``sim-market-0`` to ``sim-market-19``)."""
_VENUE_PANEL = "Venue"


def _url_check(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not parsed.hostname:
            raise typer.BadParameter(f"{value!r} is not a {' or '.join(s + '://' for s in schemes)} URL")
        try:
            parsed.port  # noqa: B018 - reading it validates it
        except ValueError:
            raise typer.BadParameter(f"{value!r} has a bad port") from None
        return value

    return check


WsUrl = Annotated[
    str,
    typer.Option(
        "--ws-url",
        help="The market channel's WebSocket URL.",
        callback=_url_check(("ws", "wss")),
        rich_help_panel=_VENUE_PANEL,
    ),
]
RestUrl = Annotated[
    str,
    typer.Option(
        "--rest-url",
        help="The CLOB REST API (book metadata, resyncs).",
        callback=_url_check(("http", "https")),
        rich_help_panel=_VENUE_PANEL,
    ),
]
GammaUrl = Annotated[
    str,
    typer.Option(
        "--gamma-url",
        help="Gamma, for slugs and URLs.",
        callback=_url_check(("http", "https")),
        rich_help_panel=_VENUE_PANEL,
    ),
]
Local = Annotated[
    bool,
    typer.Option(
        "--local",
        help=f"Start the local exchange in-process ({LOCAL_MARKETS} markets, slugs sim-market-0 to "
        f"sim-market-{LOCAL_MARKETS - 1}, events sim-event-0...) and use it instead of the URLs.",
        rich_help_panel=_VENUE_PANEL,
    ),
]
Targets = Annotated[
    list[str],
    typer.Argument(
        metavar="SLUG|URL|TOKEN",
        help="Market or event slugs, polymarket.com URLs, or token ids (all digits).",
        show_default=False,
    ),
]
Seconds = Annotated[
    float | None,
    typer.Option(
        "--seconds", min=0.0, help="Stop after this many seconds (0: until Ctrl-C).", show_default=False
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.0,
        help="Give up when Gamma, REST or the first market data take longer than this (seconds).",
    ),
]


@dataclass(frozen=True)
class VenueOptions:
    """The venue options as given on the command line."""

    ws_url: str = DEFAULT_WS_URL
    rest_url: str = DEFAULT_REST_URL
    gamma_url: str = DEFAULT_GAMMA_URL
    local: bool = False


@dataclass(frozen=True)
class Venue:
    """Where a command connects: the market channel, the CLOB REST API and Gamma."""

    ws_url: str
    rest_url: str
    gamma_url: str


@contextlib.asynccontextmanager
async def open_venue(options: VenueOptions, *, markets: int = LOCAL_MARKETS) -> AsyncIterator[Venue]:
    """The venue's URLs; with ``--local``, a local exchange started for the block and stopped after."""
    if not options.local:
        yield Venue(options.ws_url, options.rest_url, options.gamma_url)
        return
    async with Simulator(markets, seed=1, events_per_s=400) as sim:
        yield local_venue(sim)


def local_venue(sim: Simulator) -> Venue:
    """The URLs of a local exchange (Gamma is served on the same port)."""
    return Venue(sim.ws_url + "/ws/market", sim.rest_url, sim.rest_url)
