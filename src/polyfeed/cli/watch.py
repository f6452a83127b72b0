"""``polyfeed watch``: live books in the terminal, redrawn four times a second.

On a terminal the screen is a rich live view on the terminal's alternate screen, sized to the window
and redrawn whole at each refresh, so that resizing the window leaves no old frame behind (see
:mod:`polyfeed.cli.view`); when it ends, the last frame is printed on the normal screen. While it is up,
what is written to stderr (``-v``'s log lines) is shown in a strip at its foot, books named by their
labels, and written to stderr when it closes (:class:`polyfeed.cli.terminal.ScreenLog`). Piped or in CI,
the same frame is printed as plain text every two seconds and once at the end, so that a log shows what
the books did. Ctrl-C ends it quietly with exit code 0, after a one-line summary.

The stream asks for the venue's custom features, so that ``market_resolved`` closes a resolved
market's books at once: the screen shows them ``RESOLVED`` rather than live and ageing.

``watch --all`` follows every open market (``MarketStream.all_markets``, the filters and Gamma cache of
``record --all``) and draws only the busiest books, by updates over the last 5-10 seconds
(:class:`BusiestBooks`): each update costs a dict increment, and about once a second the top N are
picked with ``heapq.nlargest`` and the universe's books counted by status for the header. A frame
draws those N books only, whatever the universe's size.

``watch --nats URL`` reads the books from a fan-out that ``polyfeed publish`` fills
(:class:`polyfeed.fanout.NatsMarketStream`: the same checks, the venue's hashes) instead of the venue:
token ids, or ``--all`` for every book the collectors publish, the busiest drawn as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live

from polyfeed.cli.errors import CommandError, run_command
from polyfeed.cli.fanout import JetStreamName, NatsSource, check_nats, nats_targets, nats_where
from polyfeed.cli.options import (
    AllMarkets,
    EndsAfter,
    EndsBefore,
    GammaUrl,
    Local,
    MetricsHost,
    MetricsPort,
    MinVolume,
    NoCache,
    OptionalTargets,
    RestUrl,
    Seconds,
    Tag,
    Timeout,
    Top,
    VenueOptions,
    WsUrl,
    gamma_cache,
    market_filter,
    open_venue,
    resolve_for_console,
)
from polyfeed.cli.serving import follow, with_metrics
from polyfeed.cli.terminal import ScreenLog, out_console, spinner, stderr_to
from polyfeed.cli.view import (
    Activity,
    BookLabel,
    UniverseCounts,
    WatchState,
    panels_that_fit,
    render_screen,
)
from polyfeed.fanout import NatsMarketStream
from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.session import SessionConfig
from polyfeed.stream import MarketStream
from polyfeed.venue import Venue

__all__ = ["EPILOG", "BusiestBooks", "Depth", "draw", "show_books", "summary", "watch_command"]

EPILOG = """**Examples**

* `polyfeed watch fed-decision-in-december`
* `polyfeed watch https://polymarket.com/event/fed-decision-in-december --depth 8`
* `polyfeed watch 7667...1111 5220...3344 --seconds 60`
* `polyfeed watch sim-market-0 sim-market-1 --local`
* `polyfeed watch --all --top 12`: the 12 busiest books of every open market
* `polyfeed watch --all --tag 21 --min-volume 100000`
* `polyfeed watch --nats nats://127.0.0.1:4222 7667...1111`: a book from the fan-out `polyfeed publish`
  fills
* `polyfeed watch --nats nats://127.0.0.1:4222 --all --top 8`
"""

Depth = Annotated[
    int | None,
    typer.Option(
        "--depth", min=1, max=20, help="Levels a side (default: as many as the window's height allows)."
    ),
]
_REFRESH_S = 0.25
_PLAIN_EVERY_S = 2.0
_PLAIN_TOP = 20  # the busiest books a plain frame of --all shows without --top
_RANK_EVERY_NS = 1_000_000_000  # --all picks its busiest books (and counts statuses) once a second


def watch_command(
    context: typer.Context,
    targets: OptionalTargets = None,
    depth: Depth = None,
    seconds: Seconds = None,
    ws_url: WsUrl = None,
    rest_url: RestUrl = None,
    gamma_url: GammaUrl = None,
    local: Local = False,
    timeout: Timeout = 30.0,
    all_markets: AllMarkets = False,
    top: Top = None,
    tag: Tag = None,
    min_volume: MinVolume = None,
    ends_after: EndsAfter = None,
    ends_before: EndsBefore = None,
    no_cache: NoCache = False,
    nats: NatsSource = None,
    jetstream: JetStreamName = "POLYFEED",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Watch live books in the terminal.

    Each book shows both sides' top levels as a ladder, its status (syncing, live, suspect, stale) and
    age, the checks it passed and failed, spread, mid and the last trades; the top line counts messages
    a second, reconnects and resyncs. Readable from 80 columns; Ctrl-C quits. With --all, every open
    market is followed and the busiest books are shown, with every book counted by status. With --nats,
    the books come from the fan-out `polyfeed publish` fills, checked here with the venue's hashes.
    """
    console = out_console()
    state = WatchState()
    if nats is not None:
        token_ids = nats_targets(context, targets, all_markets)
        if token_ids is not None and top is not None:
            raise typer.BadParameter("--top picks among every book: it needs --all")
        watching = _watch_nats(nats, jetstream, token_ids, state, console, seconds, depth, timeout, top)
        run_command("watch", with_metrics(watching, metrics_port, metrics_host))
        if state.books:
            console.print(summary(state), soft_wrap=True)
        return
    if jetstream != "POLYFEED":
        raise typer.BadParameter("--stream names the fan-out to read: it needs --nats")
    universe = market_filter(targets, all_markets, tag, min_volume, ends_after, ends_before)
    if universe is None and top is not None:
        raise typer.BadParameter("--top picks among every market: it needs --all")
    venue = VenueOptions(ws_url, rest_url, gamma_url, local)
    if universe is None:
        job = _watch(venue, targets or [], state, console, seconds, depth, timeout)
        run_command("watch", with_metrics(job, metrics_port, metrics_host))
    else:
        cache = gamma_cache(no_cache)
        watching = _watch_all(venue, universe, cache, state, console, seconds, depth, timeout, top)
        run_command("watch", with_metrics(watching, metrics_port, metrics_host))
    if state.books:
        console.print(summary(state), soft_wrap=True)


async def _watch(
    options: VenueOptions,
    targets: list[str],
    state: WatchState,
    console: Console,
    seconds: float | None,
    depth: int | None,
    timeout_s: float,
) -> None:
    async with open_venue(options) as venue:
        token_ids, infos = await resolve_for_console(console, venue.gamma_url, targets, timeout_s)
        labels = {token: BookLabel(infos[token].market_slug, infos[token].outcome) for token in infos}
        await show_books(
            venue, token_ids, labels, state, console, seconds=seconds, depth=depth, timeout_s=timeout_s
        )


async def show_books(
    venue: Venue,
    token_ids: list[str],
    labels: dict[str, BookLabel],
    state: WatchState,
    console: Console,
    *,
    seconds: float | None = None,
    depth: int | None = None,
    timeout_s: float = 30.0,
    tend: Callable[[MarketStream], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Follow ``token_ids`` and draw them on ``console`` until ``seconds`` pass (``None`` or 0: until
    cancelled); ``state`` counts the events and keeps the books for the summary.

    ``tend(stream)``, if given, runs while the screen is drawn (and is cancelled when it ends): it may
    subscribe and unsubscribe, and change ``token_ids`` and ``labels`` in place, which each frame reads.

    Raises:
        CommandError: no answer from the venue's REST API, or no market data, within ``timeout_s``.
    """
    stream = MarketStream(
        token_ids,
        venue=venue,
        on_event=state.on_event,
        max_queue=0,
        config=SessionConfig(custom_feature_enabled=True),  # market_resolved closes a book at once
    )

    def choose(_now_ns: int, _width: int, _height: int | None) -> _Chosen:
        return token_ids, labels, None

    source = _Source.of(venue, stream)
    await _show(stream, source, state, console, choose, seconds, depth, timeout_s, tend)


_Chosen = tuple[Sequence[str], Mapping[str, BookLabel], UniverseCounts | None]
_AnyMarketStream = MarketStream | NatsMarketStream


@dataclass(frozen=True)
class _Source:
    """Where a watched stream's books come from, as the spinner and the failures name it."""

    opening: str
    """Where the spinner says it connects to."""
    who: str
    """What did not answer when entering the stream takes too long."""
    no_data: str
    """The failure when no data comes: where from, and why that may be."""

    @classmethod
    def of(cls, venue: Venue, stream: MarketStream) -> _Source:
        who = venue.rest_url
        if stream.universe is not None and venue.gamma_url != venue.rest_url:
            who = f"{venue.gamma_url} (Gamma) or {venue.rest_url}"
        return cls(
            venue.market_url,
            who,
            f"no market data from {venue.market_url} within {{timeout_s:g}} s: the venue knows none of "
            "these tokens, or sends nothing yet (--timeout 0 waits for ever)",
        )


async def _show(
    stream: _AnyMarketStream,
    source: _Source,
    state: WatchState,
    console: Console,
    choose: Callable[[int, int, int | None], _Chosen],
    seconds: float | None,
    depth: int | None,
    timeout_s: float,
    tend: Callable[[MarketStream], Coroutine[Any, Any, None]] | None = None,
    doing: str = "",
) -> None:
    """Enter ``stream`` and draw, each frame, the books ``choose(now_ns, width, height)`` picks (with
    their labels, and the universe's counts for ``--all``) for a screen of that size."""
    log = ScreenLog(lambda token: _label_text(stream, choose, token))
    follow(stream)
    async with contextlib.AsyncExitStack() as stack:
        with spinner(console, f"{doing}connecting to {source.opening}"):
            try:
                async with asyncio.timeout(timeout_s or None):
                    await stack.enter_async_context(stream)
            except TimeoutError:
                raise CommandError(f"{source.who} did not answer within {timeout_s:g} s") from None
        state.books = stream.books
        state.rate(time.monotonic_ns())  # a first sample: a plain frame, two seconds on, has a rate
        loop = asyncio.get_running_loop()
        started = loop.time()

        tender = None
        if tend is not None:
            assert isinstance(stream, MarketStream), "only a venue's stream is tended"
            tender = asyncio.create_task(tend(stream))

        def frame() -> RenderableType:
            if tender is not None and tender.done() and not tender.cancelled():
                tender.result()  # its failure ends the command
            if stream.error is not None:  # the venue refused the WebSocket (a 404, say): say so now
                raise stream.error
            if not state.messages and timeout_s and loop.time() - started > timeout_s:
                raise CommandError(source.no_data.format(timeout_s=timeout_s))
            now_ns = time.monotonic_ns()
            terminal = console.is_terminal
            height = console.height - 1 - log.rows if terminal else None
            width = console.width
            order, labels, universe = choose(now_ns, width, height)
            return render_screen(
                stream.books,
                order,
                labels,
                state,
                width=width,
                height=height,
                depth=depth,
                now_ns=now_ns,
                rate=state.rate(now_ns),
                interactive=terminal,
                universe=universe,
            )

        try:
            await draw(console, frame, seconds=seconds, log=log)
        finally:
            if tender is not None:
                tender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tender


def _label_text(
    stream: _AnyMarketStream, choose: Callable[[int, int, int | None], _Chosen], token: str
) -> str | None:
    """How a log line on the screen names a book: its market and outcome, when known."""
    if isinstance(stream, NatsMarketStream) or stream.universe is not None:
        label = stream.labels.get(token)
        return BookLabel(*label).text if label is not None else None
    labels = choose(0, 0, None)[1]
    return labels[token].text if token in labels else None


async def _watch_all(
    options: VenueOptions,
    universe: MarketFilter,
    cache: GammaCache | None,
    state: WatchState,
    console: Console,
    seconds: float | None,
    depth: int | None,
    timeout_s: float,
    top: int | None,
) -> None:
    state.activity = Activity()
    async with open_venue(options) as venue:
        stream = MarketStream.all_markets(
            universe, venue=venue, gamma_cache=cache, on_event=state.on_event, max_queue=0
        )
        busiest = BusiestBooks(stream, state, top=top, depth=depth)
        doing = "listing every open market on Gamma, "
        source = _Source.of(venue, stream)
        await _show(stream, source, state, console, busiest.choose, seconds, depth, timeout_s, doing=doing)


async def _watch_nats(
    nats_url: str,
    jetstream: str,
    token_ids: list[str] | None,
    state: WatchState,
    console: Console,
    seconds: float | None,
    depth: int | None,
    timeout_s: float,
    top: int | None,
) -> None:
    """``watch --nats``: the books of a fan-out (``token_ids``; ``None``: every book published, the
    busiest drawn)."""
    where = nats_where(nats_url, jetstream)
    with spinner(console, f"connecting to {where}"):
        await check_nats(nats_url, timeout_s)
    stream = NatsMarketStream(nats_url, token_ids, stream=jetstream, on_event=state.on_event, max_queue=0)
    source = _Source(
        where,
        where,
        f"no data from {where} within {{timeout_s:g}} s: no collector publishes these tokens, or none "
        "runs (polyfeed publish ... --nats URL; --timeout 0 waits for ever)",
    )
    tokens = token_ids or []

    def given(_now_ns: int, _width: int, _height: int | None) -> _Chosen:
        # the names the collectors published with the books' snapshots, as they come
        named = stream.labels
        return tokens, {a: BookLabel(*named[a]) for a in tokens if a in named}, None

    choose: Callable[[int, int, int | None], _Chosen] = given
    if token_ids is None:
        state.activity = Activity()
        choose = BusiestBooks(stream, state, top=top, depth=depth).choose
    await _show(stream, source, state, console, choose, seconds, depth, timeout_s)


class BusiestBooks:
    """``watch --all``'s choice of books: the ``top`` busiest by updates in ``state.activity``'s window
    (``None``: as many as the screen holds, 20 on a plain frame), picked again at most once a second,
    with the universe's books counted by status at the same time. Between two picks a frame costs
    nothing more than drawing the books chosen.
    """

    def __init__(
        self,
        stream: _AnyMarketStream,
        state: WatchState,
        *,
        top: int | None,
        depth: int | None,
        rank_every_ns: int = _RANK_EVERY_NS,
    ) -> None:
        assert state.activity is not None, "the state must count activity"
        self.stream = stream
        self.state = state
        self.activity = state.activity
        self.top = top
        self.depth = depth
        self.rank_every_ns = rank_every_ns
        self.order: list[str] = []
        self.labels: dict[str, BookLabel] = {}
        self.counts = UniverseCounts({}, self.activity.window_s)
        self._ranked_ns: int | None = None
        self._screen: tuple[int, int | None] | None = None

    def wanted(self, width: int, height: int | None) -> int:
        """How many books to pick for a screen of ``width`` x ``height`` (``None``: a plain frame)."""
        if self.top is not None:
            return self.top
        if height is None:
            return _PLAIN_TOP
        return panels_that_fit(width, height, self.depth, header_rows=2)

    def choose(self, now_ns: int, width: int, height: int | None) -> _Chosen:
        """The books to draw on a screen of ``width`` x ``height`` (a frame's call)."""
        due = self._ranked_ns is None or now_ns - self._ranked_ns >= self.rank_every_ns
        if due or (width, height) != self._screen:  # a resized window asks for more or fewer at once
            self.rank(now_ns, self.wanted(width, height))
            self._ranked_ns, self._screen = now_ns, (width, height)
        return self.order, self.labels, self.counts

    def rank(self, now_ns: int, wanted: int) -> None:
        """Pick the ``wanted`` busiest books (made up with quiet ones when fewer were updated in the
        window, so that a quiet universe still shows books) and count the universe by status."""
        books = self.stream.books
        order = [asset for asset, _ in self.activity.busiest(wanted, now_ns) if asset in books]
        if len(order) < wanted:
            chosen = set(order)
            for asset in books:
                if len(order) >= wanted:
                    break
                if asset not in chosen:
                    order.append(asset)
        self.order = order
        named = self.stream.labels
        self.labels = {a: BookLabel(*named[a]) for a in order if a in named}
        self.counts = UniverseCounts(Counter(b.status for b in books.values()), self.activity.window_s)


async def draw(
    console: Console,
    frame: Callable[[], RenderableType],
    *,
    seconds: float | None,
    stop: asyncio.Event | None = None,
    log: ScreenLog | None = None,
) -> None:
    """Draw ``frame()`` until ``seconds`` pass or ``stop`` is set (neither: until cancelled): a live
    view redrawn four times a second on a terminal, a plain frame every two seconds otherwise; the
    last frame is drawn when it ends (not when it is cancelled).

    On a terminal the view takes the alternate screen and is drawn whole at each refresh (a resized
    window gets a clean frame); when it ends, or is cancelled, its last frame is printed on the normal
    screen. Meanwhile stderr, if a terminal, goes to ``log``, whose last lines are drawn below the frame:
    a frame that leaves ``log.rows`` rows free shows them.

    Anything that keeps books can be watched this way (a replay, say): ``frame`` renders them with
    :func:`polyfeed.cli.view.render_screen`.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds if seconds else float("inf")
    stop = stop or asyncio.Event()

    async def pause(longest_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(longest_s, max(0.0, end - loop.time())))

    if console.is_terminal:
        log = log or ScreenLog()
        last: RenderableType | None = None
        try:
            with (
                stderr_to(log),
                Live(console=console, screen=True, auto_refresh=False, redirect_stderr=False) as live,
            ):

                def show() -> RenderableType:
                    shown = frame()
                    live.update(Group(shown, log.strip()), refresh=True)
                    return shown

                while loop.time() < end and not stop.is_set():
                    last = show()
                    await pause(_REFRESH_S)
                last = show()
        finally:
            if last is not None:  # the alternate screen is gone: the last frame stays on the normal one
                console.print(last)
    else:
        while True:
            await pause(_PLAIN_EVERY_S)
            console.print(frame())
            if loop.time() >= end or stop.is_set():
                break


def summary(state: WatchState) -> str:
    """Two lines (each under 80 columns) on what was watched: messages and gaps, then the checks."""
    books = state.books.values()
    passed = sum(b.checks.total_passed for b in books)
    failed = sum(b.checks.total_failed for b in books)
    up_s = (time.monotonic_ns() - state.started_ns) / 1e9
    return (
        f"{len(state.books)} books for {up_s:.1f} s: {state.messages:,} messages, "
        f"{state.reconnects} reconnects, {state.resyncs} resyncs\n"
        f"checks: {passed:,} passed, {failed} failed"
    )
