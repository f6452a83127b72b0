"""The ``watch`` screen: what it counts from a stream's events, and how it draws one frame.

Drawing is a pure function of the books, the counters and the screen size, so that a test renders a
frame to a console of any width and reads it. Each book is a panel: its two sides' top levels as a
ladder (bid size, bid | ask, ask size), its status and age (time since its last update), the checks it
passed and failed, spread, mid and the last trades. Panels sit side by side when the screen is wide
enough (two at 80 columns), and only as many as fit the screen's height are drawn. A book whose market
resolved says so (``RESOLVED``, the winning outcome and since when) in a colour of its own, instead of
an age that grows as if the feed had hung.

``watch --all`` follows tens of thousands of books and draws only the busiest: :class:`Activity` counts
each book's updates (one dict increment an update, in two buckets that make a recent window) and ranks
them only when asked, with :func:`heapq.nlargest`; a second header line (:class:`UniverseCounts`)
counts every book of the universe by status.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from polyfeed.book import BookStatus, OrderBook
from polyfeed.cli.terminal import abbreviate, format_size
from polyfeed.session import (
    BookUpdated,
    DecodeFailed,
    Disconnected,
    Event,
    MessageReceived,
    Reconnected,
    Resynced,
    StatusChanged,
)
from polyfeed.wire import LastTradePrice, MarketResolved

__all__ = [
    "PANEL_WIDTH",
    "STATUS_STYLE",
    "Activity",
    "BookLabel",
    "UniverseCounts",
    "WatchState",
    "panels_that_fit",
    "render_screen",
]

PANEL_WIDTH = 40
"""Columns a book's panel needs: two panels side by side at 80 columns."""
_PANEL_CHROME = 6  # rows of a panel besides its levels: 2 borders, column heads, 3 lines of facts
_MAX_DEPTH = 10
_TRADES_KEPT = 3
_RATE_WINDOW_NS = 2_000_000_000
STATUS_STYLE = {  # the watch screen's and the books tables' colours
    BookStatus.LIVE: "bold green",
    BookStatus.SYNCING: "yellow",
    BookStatus.SUSPECT: "bold red",
    BookStatus.STALE: "magenta",
    BookStatus.CLOSED: "bold blue",
}

_UNIVERSE_ORDER = (
    BookStatus.LIVE,
    BookStatus.SYNCING,
    BookStatus.SUSPECT,
    BookStatus.STALE,
    BookStatus.CLOSED,
)


@dataclass(frozen=True)
class BookLabel:
    """How a book is named on screen: its market and outcome (an abbreviated token id otherwise)."""

    name: str
    outcome: str = ""

    @property
    def text(self) -> str:
        """``slug · outcome`` (the name alone without an outcome), as a log line on the screen names it."""
        return f"{self.name} · {self.outcome}" if self.outcome else self.name


@dataclass
class Activity:
    """Book updates per asset over a recent window, for picking the busiest books among many.

    Counting is one dict increment an update (:meth:`WatchState.on_event`); the window is two buckets
    of ``bucket_ns`` each, the older dropped when a new one starts, so a book's count covers the last
    one to two buckets. Ranking (:meth:`busiest`) costs a pass over the books updated in the window,
    and is meant to run about once a second, never per update.
    """

    bucket_ns: int = 5_000_000_000
    current: dict[str, int] = field(default_factory=dict)
    previous: dict[str, int] = field(default_factory=dict)
    bucket_start_ns: int = field(default_factory=time.monotonic_ns)

    @property
    def window_s(self) -> float:
        """The longest span a count covers."""
        return 2 * self.bucket_ns / 1e9

    def rotate(self, now_ns: int) -> None:
        """Start a new bucket if the current one is full (and forget both if two have passed)."""
        elapsed_ns = now_ns - self.bucket_start_ns
        if elapsed_ns < self.bucket_ns:
            return
        self.previous = self.current if elapsed_ns < 2 * self.bucket_ns else {}
        self.current = {}
        self.bucket_start_ns = now_ns

    def count(self, asset_id: str) -> int:
        """Updates of one book in the window."""
        return self.current.get(asset_id, 0) + self.previous.get(asset_id, 0)

    def busiest(self, n: int, now_ns: int) -> list[tuple[str, int]]:
        """The ``n`` books updated most in the window, most first, with their counts (books with no
        update in the window are not among them)."""
        self.rotate(now_ns)
        merged = self.previous.copy()
        for asset, count in self.current.items():
            merged[asset] = merged.get(asset, 0) + count
        return heapq.nlargest(n, merged.items(), key=itemgetter(1))


@dataclass(frozen=True)
class UniverseCounts:
    """Every book of the universe by status, for the header of ``watch --all`` (counted about once a
    second, not per frame), and the window its busiest books are ranked over."""

    statuses: Mapping[BookStatus, int]
    window_s: float = 10.0

    @property
    def books(self) -> int:
        return sum(self.statuses.values())


@dataclass
class WatchState:
    """What the screen shows besides the books, counted from the stream's events (``on_event``)."""

    started_ns: int = field(default_factory=time.monotonic_ns)
    messages: int = 0
    reconnects: int = 0
    disconnects: int = 0
    resyncs: int = 0
    decode_failures: int = 0
    updated_ns: dict[str, int] = field(default_factory=dict)
    """Monotonic time of each book's last update (what its age counts from)."""
    trades: dict[str, tuple[LastTradePrice, ...]] = field(default_factory=dict)
    """The last few trades of each book, newest first (a tuple: 64 bytes a book where a deque took 760,
    26 MiB over the 45,600 books of ``watch --all``)."""
    closed_ns: dict[str, int] = field(default_factory=dict)
    """Monotonic time each book was closed (its market resolved, or the venue has no book for it)."""
    winners: dict[str, str] = field(default_factory=dict)
    """The winning outcome of each token whose ``market_resolved`` arrived, by token id."""
    books: dict[str, OrderBook] = field(default_factory=dict)
    """The stream's books (kept here so that a summary can be printed after the stream closed)."""
    activity: Activity | None = None
    """Updates per book over a recent window, counted when set (``watch --all`` ranks books by it)."""
    _samples: deque[tuple[int, int]] = field(default_factory=deque)

    def on_event(self, event: Event) -> None:
        """Count one event (the stream calls this for every event, in order).

        ``type(x) is C`` rather than ``isinstance`` or ``match``: mypy narrows both alike, and a failed
        ``isinstance`` against a msgspec struct costs about 200 ns, three times this whole method."""
        if type(event) is MessageReceived:
            self.messages += 1
            message = event.message
            if type(message) is LastTradePrice:
                kept = self.trades.get(message.asset_id, ())
                self.trades[message.asset_id] = (message, *kept[: _TRADES_KEPT - 1])
            elif type(message) is MarketResolved:
                for asset in message.assets_ids:
                    self.winners[asset] = message.winning_outcome
        elif type(event) is BookUpdated:
            asset = event.asset_id
            self.updated_ns[asset] = time.monotonic_ns()
            if self.activity is not None:
                counts = self.activity.current
                counts[asset] = counts.get(asset, 0) + 1
        elif type(event) is Reconnected:
            self.reconnects += 1
        elif type(event) is Disconnected:
            self.disconnects += 1
        elif type(event) is Resynced:
            self.resyncs += 1
        elif type(event) is DecodeFailed:
            self.decode_failures += 1
        elif type(event) is StatusChanged and event.new is BookStatus.CLOSED:
            self.closed_ns[event.asset_id] = time.monotonic_ns()

    def rate(self, now_ns: int) -> float:
        """Messages a second over the last two seconds (call once a frame; it keeps the samples)."""
        samples = self._samples
        samples.append((now_ns, self.messages))
        while len(samples) > 2 and now_ns - samples[1][0] >= _RATE_WINDOW_NS:
            samples.popleft()
        then_ns, then_count = samples[0]
        return (self.messages - then_count) * 1e9 / (now_ns - then_ns) if now_ns > then_ns else 0.0


def panels_that_fit(width: int, height: int, depth: int | None = None, *, header_rows: int = 1) -> int:
    """How many books' panels a screen of ``width`` x ``height`` shows at ``depth`` levels a side (3 at
    least when ``None``), below ``header_rows`` lines of counters."""
    columns = max(1, width // PANEL_WIDTH)
    rows = max(1, (height - header_rows) // ((depth or 3) + _PANEL_CHROME))
    return rows * columns


def render_screen(
    books: Mapping[str, OrderBook],
    order: Sequence[str],
    labels: Mapping[str, BookLabel],
    state: WatchState,
    *,
    width: int,
    height: int | None,
    depth: int | None = None,
    now_ns: int | None = None,
    rate: float | None = None,
    interactive: bool = True,
    universe: UniverseCounts | None = None,
) -> RenderableType:
    """One frame: a line of counters, then the books in ``order`` (``height`` ``None``: all of them).

    ``depth`` levels a side (``None``: as many as the height allows, 3 to 10, or 5 without a height);
    ``interactive`` adds the hint that Ctrl-C quits (the first thing cut when the line is too long).
    With ``universe``, ``order`` is the busiest of a larger universe: the counters say so, a second
    line counts the universe's books by status, and each panel its updates in the window
    (``state.activity``).
    """
    now_ns = time.monotonic_ns() if now_ns is None else now_ns
    header_rows = 1 if universe is None else 2
    columns = max(1, min(len(order), width // PANEL_WIDTH))
    shown = len(order)
    if height is None:
        depth = depth or 5
    else:  # as many rows of panels as fit at the depth asked (3 at least), then the depth they allow
        room = height - header_rows
        rows = max(1, min(math.ceil(len(order) / columns), room // ((depth or 3) + _PANEL_CHROME)))
        depth = depth or max(3, min(_MAX_DEPTH, room // rows - _PANEL_CHROME))
        shown = min(shown, rows * columns)
    hint_width = width if interactive else 0
    lines: list[RenderableType] = [_header(state, len(order), shown, now_ns, rate, hint_width, universe)]
    if universe is not None:
        lines.append(_universe_line(universe))
    grid = Table.grid(expand=True)
    for _ in range(columns):
        grid.add_column(ratio=1)
    activity = state.activity if universe is not None else None
    panels = [_panel(books.get(a), a, labels.get(a), state, depth, now_ns, activity) for a in order[:shown]]
    for start in range(0, len(panels), columns):
        row = panels[start : start + columns]
        grid.add_row(*row, *([""] * (columns - len(row))))
    return Group(*lines, grid)


def _universe_line(universe: UniverseCounts) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"all {universe.books:,} books:", "bold")
    for status in _UNIVERSE_ORDER:
        count = universe.statuses.get(status, 0)
        text.append(f" {count:,} {status.value}", STATUS_STYLE[status] if count else "dim")
    return text


def _header(
    state: WatchState,
    books: int,
    shown: int,
    now_ns: int,
    rate: float | None,
    hint_width: int,
    universe: UniverseCounts | None = None,
) -> Text:
    up_s = (now_ns - state.started_ns) / 1e9
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("polyfeed ", "bold")
    if universe is not None:
        text.append(f"top {shown}")
    else:
        text.append(f"{books} books" if shown == books else f"{shown} of {books} books")
    if rate is not None:
        text.append(f"  {rate:,.0f} msg/s")
    # a drop without its reconnect is data still missing (a reconnect comes with the first data again)
    text.append(f"  drops {state.disconnects}", "bold red" if state.disconnects > state.reconnects else "")
    text.append(f"  reconnects {state.reconnects}", "bold yellow" if state.reconnects else "")
    text.append(f"  resyncs {state.resyncs}", "bold yellow" if state.resyncs else "")
    if state.decode_failures:
        text.append(f"  bad frames {state.decode_failures}", "bold red")
    text.append(f"  up {_duration(up_s)}")
    if hint_width >= 80:
        text.append("  ^C quits", "dim")
    return text


def _panel(
    book: OrderBook | None,
    asset_id: str,
    label: BookLabel | None,
    state: WatchState,
    depth: int,
    now_ns: int,
    activity: Activity | None = None,
) -> Panel:
    short_id = abbreviate(asset_id)
    label = label or BookLabel(short_id)
    title = Text(label.name, style="bold", no_wrap=True, overflow="ellipsis")
    if label.outcome:
        title.append(f" · {label.outcome}", "cyan")
    body = Table.grid(expand=True, padding=(0, 1, 0, 0))
    body.add_column(justify="right", ratio=1)  # bid size
    body.add_column(justify="right", style="green")  # bid
    body.add_column(width=1)
    body.add_column(justify="left", style="red")  # ask
    body.add_column(justify="right", ratio=1)  # ask size
    body.add_row(Text("size", "dim"), Text("bid", "dim"), "│", Text("ask", "dim"), Text("size", "dim"))
    bids = book.bids(depth) if book is not None else []
    asks = book.asks(depth) if book is not None else []
    tick = book.tick_size if book is not None else None
    for n in range(depth):
        bid = bids[n] if n < len(bids) else None
        ask = asks[n] if n < len(asks) else None
        body.add_row(
            format_size(bid.size) if bid else "",
            _price(bid.price, tick) if bid else "",
            "│",
            _price(ask.price, tick) if ask else "",
            format_size(ask.size) if ask else "",
        )
    facts = Table.grid(expand=True)
    facts.add_column(no_wrap=True, overflow="ellipsis")
    facts.add_row(
        _closed_line(book, state.closed_ns.get(asset_id), state.winners.get(asset_id), now_ns)
        if book is not None and book.status is BookStatus.CLOSED
        else _status_line(book, state.updated_ns.get(asset_id), now_ns)
    )
    facts.add_row(_price_line(book))
    facts.add_row(_trades_line(state.trades.get(asset_id, ()), tick))
    subtitle = Text(short_id, "dim") if label.name != short_id else Text()
    if activity is not None:  # why this book is among the busiest
        subtitle = Text.assemble(
            (f"{activity.count(asset_id):,} upd/{activity.window_s:g}s", "cyan"),
            " · " if subtitle else "",
            subtitle,
        )
    return Panel(
        Group(body, facts),
        title=title,
        title_align="left",
        subtitle=subtitle or None,
        subtitle_align="right",
        padding=(0, 1),
    )


def _status_line(book: OrderBook | None, updated_ns: int | None, now_ns: int) -> Text:
    status = book.status if book is not None else BookStatus.SYNCING
    line = Text(status.value.upper(), STATUS_STYLE[status])
    age = "-" if updated_ns is None else _duration((now_ns - updated_ns) / 1e9)
    line.append(f" {age} ago" if updated_ns is not None else " no data yet", "dim")
    if book is not None:
        failed = book.checks.total_failed
        line.append(f"  checks {book.checks.total_passed}✓ ")
        line.append(f"{failed}✗", "bold red" if failed else "")
        if status is not BookStatus.LIVE and book.status_reason:
            line.append(f" ({book.status_reason})", "dim")
        elif book.unconfirmed_since_ns is not None:  # quiet, or a zombie: the grown deadline will tell
            line.append(f" (unconfirmed {_duration((now_ns - book.unconfirmed_since_ns) / 1e9)})", "yellow")
    return line


def _closed_line(book: OrderBook, closed_ns: int | None, winner: str | None, now_ns: int) -> Text:
    """A closed book: ``RESOLVED`` and the winner when its ``market_resolved`` came, else ``CLOSED`` and
    why; since when; its checks. Its levels stay as they were when it closed."""
    style = STATUS_STYLE[BookStatus.CLOSED]
    line = Text("RESOLVED" if winner is not None else "CLOSED", style)
    if closed_ns is not None:
        line.append(f" {_duration((now_ns - closed_ns) / 1e9)} ago", "dim")
    if winner is not None:
        line.append(f"  {winner} won", style)
    line.append(f"  checks {book.checks.total_passed}✓ ")
    failed = book.checks.total_failed
    line.append(f"{failed}✗", "bold red" if failed else "")
    if winner is None and book.status_reason:
        line.append(f" ({book.status_reason})", "dim")
    return line


def _price_line(book: OrderBook | None) -> Text:
    line = Text()
    spread = book.spread if book is not None else None
    mid = book.mid if book is not None else None
    line.append("spread ", "dim")
    tick = book.tick_size if book is not None else None
    line.append(_price(spread, tick) if spread is not None else "-")
    line.append("  mid ", "dim")
    line.append(_price(mid, tick) if mid is not None else "-")
    if book is not None and book.tick_size:
        line.append("  tick ", "dim")
        line.append(book.tick_size)
    return line


def _trades_line(trades: tuple[LastTradePrice, ...], tick: str | None) -> Text:
    line = Text("trades ", "dim")
    if not trades:
        line.append("-")
    for n, trade in enumerate(trades):
        if n:
            line.append(" · ", "dim")
        style = "green" if trade.side.upper() == "BUY" else "red"
        line.append(f"{_price_text(trade.price, tick)} ", style)
        line.append(f"{trade.side[:1].upper()} {_size_text(trade.size)}")
    return line


def _price(value: Decimal, tick: str | None = None) -> str:
    """A price with at least as many decimals as the tick has (``0.20`` on a 0.01 tick), so that a
    column of prices lines up; the value is exact either way."""
    if tick:
        places = Decimal(tick).normalize().as_tuple().exponent
        exponent = value.as_tuple().exponent
        if isinstance(places, int) and isinstance(exponent, int) and exponent > places:
            value = value.quantize(Decimal(1).scaleb(places))
    return str(value)


def _price_text(price: str, tick: str | None) -> str:
    try:
        return _price(Decimal(price), tick)
    except ArithmeticError:  # decimal.InvalidOperation: the venue's text, shown as sent
        return price


def _size_text(size: str) -> str:
    try:
        return format_size(Decimal(size))
    except ArithmeticError:  # decimal.InvalidOperation: the venue's text, shown as sent
        return size


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"
