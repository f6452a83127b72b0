"""Options the network commands share, and the venue they point at.

Every network command takes ``--ws-url``, ``--rest-url`` and ``--gamma-url`` (each in place of
Polymarket's, :meth:`polyfeed.venue.Venue.polymarket`) and ``--local``, which starts the local
exchange in-process and uses its venue instead. A new command takes them by adding these parameters to
its signature (``polyfeed record`` adds ``--user-ws-url``, ``UserWsUrl``)::

    def watch_command(
        targets: Targets,
        ws_url: WsUrl = None,
        rest_url: RestUrl = None,
        gamma_url: GammaUrl = None,
        local: Local = False,
    ) -> None:
        options = VenueOptions(ws_url, rest_url, gamma_url, local)
        ...
        async with open_venue(options) as venue: ...   # a polyfeed.venue.Venue
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console

from polyfeed.cli.terminal import progress, spinner
from polyfeed.net.gamma import MarketFilter, TokenInfo, is_token_id, label_tokens, resolve_targets
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.net.transport import http_session
from polyfeed.sim import Simulator
from polyfeed.venue import Venue

__all__ = [
    "LOCAL_MARKETS",
    "AllMarkets",
    "EndsAfter",
    "EndsBefore",
    "GammaUrl",
    "Local",
    "MetricsHost",
    "MetricsPort",
    "MinVolume",
    "NoCache",
    "OptionalTargets",
    "RestUrl",
    "Seconds",
    "Tag",
    "Targets",
    "Timeout",
    "Top",
    "UserWsUrl",
    "VenueOptions",
    "WsUrl",
    "gamma_cache",
    "market_filter",
    "open_venue",
    "resolve_for_console",
]

LOCAL_MARKETS = 20
"""Markets of the exchange ``--local`` starts (seed 1: slugs ``sim-market-0`` to ``sim-market-19``)."""
_VENUE_PANEL = "Venue"
_ALL_PANEL = "The whole market (--all)"
_POLYMARKET = Venue.polymarket()


def url_check(schemes: tuple[str, ...], what: str | None = None) -> Callable[[str | None], str | None]:
    """An option's callback: a URL of one of ``schemes`` with a host and a valid port (``None`` passes:
    not given). ``what`` names it in the error (by default, its schemes)."""
    what = what or f"a {' or '.join(s + '://' for s in schemes)} URL"

    def check(value: str | None) -> str | None:
        if value is None:  # not given: the venue's own
            return None
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not parsed.hostname:
            raise typer.BadParameter(f"{value!r} is not {what}")
        try:
            parsed.port  # noqa: B018 - reading it validates it
        except ValueError:
            raise typer.BadParameter(f"{value!r} has a bad port") from None
        return value

    return check


WsUrl = Annotated[
    str | None,
    typer.Option(
        "--ws-url",
        help="The market channel's WebSocket URL.",
        callback=url_check(("ws", "wss")),
        show_default=_POLYMARKET.market_url,
        rich_help_panel=_VENUE_PANEL,
    ),
]
UserWsUrl = Annotated[
    str | None,
    typer.Option(
        "--user-ws-url",
        help="The user channel's WebSocket URL (needed with --user when --ws-url is given).",
        callback=url_check(("ws", "wss")),
        show_default=_POLYMARKET.user_url,
        rich_help_panel=_VENUE_PANEL,
    ),
]
RestUrl = Annotated[
    str | None,
    typer.Option(
        "--rest-url",
        help="The CLOB REST API (book metadata, resyncs).",
        callback=url_check(("http", "https")),
        show_default=_POLYMARKET.rest_url,
        rich_help_panel=_VENUE_PANEL,
    ),
]
GammaUrl = Annotated[
    str | None,
    typer.Option(
        "--gamma-url",
        help="Gamma, for slugs and URLs.",
        callback=url_check(("http", "https")),
        show_default=_POLYMARKET.gamma_url,
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
OptionalTargets = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="SLUG|URL|TOKEN",
        help="Market or event slugs, polymarket.com URLs, or token ids (all digits); none with --all.",
        show_default=False,
    ),
]
AllMarkets = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Every open market of the venue (Gamma's list, paged), followed as markets open and "
        "resolve; narrowed by --tag, --min-volume, --ends-after, --ends-before.",
        rich_help_panel=_ALL_PANEL,
    ),
]
Tag = Annotated[
    str | None,
    typer.Option(
        "--tag", metavar="TAG_ID", help="Only markets with this Gamma tag id.", rich_help_panel=_ALL_PANEL
    ),
]
MinVolume = Annotated[
    float | None,
    typer.Option(
        "--min-volume",
        min=0.0,
        metavar="USDC",
        help="Only markets with at least this volume.",
        rich_help_panel=_ALL_PANEL,
    ),
]
EndsAfter = Annotated[
    str | None,
    typer.Option(
        "--ends-after",
        metavar="DATE",
        help="Only markets ending on or after this ISO date.",
        rich_help_panel=_ALL_PANEL,
    ),
]
EndsBefore = Annotated[
    str | None,
    typer.Option(
        "--ends-before",
        metavar="DATE",
        help="Only markets ending on or before this ISO date.",
        rich_help_panel=_ALL_PANEL,
    ),
]

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics at /metrics and a health check at /healthz (200 when every book "
        "is live and every connection up, else 503 naming what is not) on this port while running.",
        rich_help_panel="Operations",
    ),
]
MetricsHost = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        help="The address --metrics-port listens on (0.0.0.0 in a container whose port is published).",
        rich_help_panel="Operations",
    ),
]
NoCache = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Walk Gamma before subscribing, even when a listing written less than 10 minutes ago is "
        "cached ($POLYFEED_CACHE_DIR, else $XDG_CACHE_HOME/polyfeed or ~/.cache/polyfeed); without it, "
        "a young listing is subscribed at once and Gamma walked behind it.",
        rich_help_panel=_ALL_PANEL,
    ),
]
Top = Annotated[
    int | None,
    typer.Option(
        "--top",
        min=1,
        metavar="N",
        help="With --all, show the N busiest books, by updates in the last 5-10 s (default: as many as "
        "the window holds; 20 when piped).",
        show_default=False,
        rich_help_panel=_ALL_PANEL,
    ),
]


def gamma_cache(no_cache: bool) -> GammaCache | None:
    """Gamma's listing cached in the user's cache directory for ``--all``; ``None`` with ``--no-cache``."""
    return None if no_cache else GammaCache()


def market_filter(
    targets: list[str] | None,
    all_markets: bool,
    tag: str | None,
    min_volume: float | None,
    ends_after: str | None,
    ends_before: str | None,
) -> MarketFilter | None:
    """The filter of ``--all`` (``None`` without it).

    Raises:
        typer.BadParameter: targets and ``--all`` together, neither, a filter without ``--all``, or a
            date that is not ISO.
    """
    chosen = MarketFilter(tag, min_volume, ends_after, ends_before)
    if not all_markets:
        if chosen != MarketFilter():
            raise typer.BadParameter("--tag, --min-volume, --ends-after and --ends-before need --all")
        if not targets:
            raise typer.BadParameter("give markets to follow (slugs, URLs, token ids), or --all")
        return None
    if targets:
        raise typer.BadParameter("--all follows every market: give no markets with it")
    for name, value in (("--ends-after", ends_after), ("--ends-before", ends_before)):
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise typer.BadParameter(f"{name} {value!r} is not an ISO date (2026-12-31)") from None
    return chosen


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
    """The venue options as given on the command line (``None``: not given, Polymarket's)."""

    ws_url: str | None = None
    rest_url: str | None = None
    gamma_url: str | None = None
    local: bool = False
    user_ws_url: str | None = None

    def venue(self) -> Venue:
        """Polymarket's venue with the URLs given in place of its own (``--local`` aside)."""
        return _POLYMARKET.with_urls(
            market_url=self.ws_url,
            user_url=self.user_ws_url,
            rest_url=self.rest_url,
            gamma_url=self.gamma_url,
        )


@contextlib.asynccontextmanager
async def open_venue(options: VenueOptions, *, markets: int = LOCAL_MARKETS) -> AsyncIterator[Venue]:
    """The venue the options point at; with ``--local``, a local exchange's, started for the block and
    stopped after (the URL options are then ignored)."""
    if not options.local:
        yield options.venue()
        return
    async with Simulator(markets, seed=1, events_per_s=400) as sim:
        yield sim.venue


async def resolve_for_console(
    console: Console, gamma_url: str, targets: list[str], timeout_s: float, *, name_tokens: bool = True
) -> tuple[list[str], dict[str, TokenInfo]]:
    """:func:`polyfeed.net.gamma.resolve_targets` with a progress bar on ``console`` (on a terminal),
    and, when ``name_tokens``, Gamma's description of the token ids given as such
    (:func:`polyfeed.net.gamma.label_tokens`)."""
    async with http_session(timeout_s) as http:
        slugs = sum(1 for t in targets if not is_token_id(t))
        with progress(console, "resolving slugs on Gamma", slugs) as step:
            token_ids, infos = await resolve_targets(http, gamma_url, targets, step)
        unnamed = [t for t in token_ids if t not in infos] if name_tokens else []
        if unnamed:
            with spinner(console, "asking Gamma for the tokens' markets"):
                infos.update(await label_tokens(http, gamma_url, unnamed))
    return token_ids, infos
