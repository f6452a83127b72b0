"""What ``record``, ``replay`` and ``export`` share: times on the command line, the books' names kept in
a recording, and the table of books with the digest that shows two runs built the same books.

Times (``--from``, ``--until``) are written as

- ``+90s``, ``+5m``, ``+1.5h``, ``+90`` (seconds): that long after the recording's first record;
- ``2026-11-30T14:05:00Z``, ``2026-11-30 14:05``: an ISO 8601 time (UTC unless it names a zone);
- ``1764511500`` or ``1764511500.25``: Unix seconds; 16 digits or more: Unix nanoseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from polyfeed.book import BookStatus, OrderBook
from polyfeed.cli.errors import EXIT_USAGE, fail
from polyfeed.cli.terminal import abbreviate
from polyfeed.cli.view import STATUS_STYLE, BookLabel
from polyfeed.record import RecordingInfo

__all__ = [
    "LABELS_META",
    "FromTime",
    "RecordingDir",
    "TimeSpec",
    "UntilTime",
    "book_digest",
    "book_order",
    "books_table",
    "labels_from_meta",
    "labels_to_meta",
    "parse_time",
    "resolve_window",
]

LABELS_META = "labels"
"""Where ``polyfeed record`` keeps the books' names in ``meta.json``'s ``meta``: ``{token: [market,
outcome]}``."""
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_RELATIVE = re.compile(r"\+(\d+(?:\.\d*)?|\.\d+)([smh]?)")
_NS = 1_000_000_000


@dataclass(frozen=True)
class TimeSpec:
    """A time as given on the command line: absolute (ns since the epoch) or after the recording's start."""

    text: str
    absolute_ns: int | None = None
    after_start_ns: int | None = None

    def resolve(self, first_ns: int | None) -> int:
        """The time in ns since the epoch, ``first_ns`` being the recording's first receive time."""
        if self.absolute_ns is not None:
            return self.absolute_ns
        assert self.after_start_ns is not None
        return (first_ns or 0) + self.after_start_ns


def parse_time(text: str) -> TimeSpec:
    """``text`` as a :class:`TimeSpec` (the forms are in this module's docstring).

    Raises:
        typer.BadParameter: none of the forms.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        return TimeSpec(text, after_start_ns=round(float(relative[1]) * _UNITS[relative[2]] * _NS))
    if re.fullmatch(r"\d{16,}", value):
        return TimeSpec(text, absolute_ns=int(value))
    if re.fullmatch(r"\d+(?:\.\d*)?", value):
        return TimeSpec(text, absolute_ns=round(Decimal(value) * _NS))
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: give +90s / +5m / +1h after the start, an ISO 8601 time "
            "(2026-11-30T14:05:00Z) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    delta = moment - epoch
    return TimeSpec(text, absolute_ns=(delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000)


def _time_option(value: str | None) -> TimeSpec | None:
    return None if value is None else parse_time(value)


RecordingDir = Annotated[
    Path,
    typer.Argument(
        metavar="DIR",
        help="A recording's directory (written by `polyfeed record`).",
        exists=True,
        file_okay=False,
        dir_okay=True,
        readable=True,
        show_default=False,
    ),
]
FromTime = Annotated[
    TimeSpec | None,
    typer.Option(
        "--from",
        metavar="T",
        parser=_time_option,
        help="Start here: +90s, +5m after the recording's start, an ISO time (UTC), or Unix seconds. "
        "Books are still built from the start.",
        show_default=False,
    ),
]
UntilTime = Annotated[
    TimeSpec | None,
    typer.Option(
        "--until",
        metavar="T",
        parser=_time_option,
        help="Stop after this time (the same forms as --from).",
        show_default=False,
    ),
]


def resolve_window(
    command: str, info: RecordingInfo, from_time: TimeSpec | None, until_time: TimeSpec | None
) -> tuple[int | None, int | None]:
    """``--from`` and ``--until`` as ns since the epoch, for a recording described by ``info``.

    Raises:
        typer.Exit: ``--from`` after ``--until`` (one line on stderr, exit 2).
    """
    first = info.first_ns
    from_ns = from_time.resolve(first) if from_time is not None else None
    until_ns = until_time.resolve(first) if until_time is not None else None
    if (
        from_time is not None
        and until_time is not None
        and from_time.resolve(first) > until_time.resolve(first)
    ):
        raise fail(command, f"--from {from_time.text} is after --until {until_time.text}", EXIT_USAGE)
    return from_ns, until_ns


def labels_to_meta(labels: Mapping[str, BookLabel]) -> dict[str, list[str]]:
    """Books' names as ``meta.json`` keeps them."""
    return {token: [label.name, label.outcome] for token, label in labels.items()}


def labels_from_meta(meta: Mapping[str, Any]) -> dict[str, BookLabel]:
    """Books' names from a recording's ``meta`` (none for a recording made without them; a malformed
    entry is left out, as a reader of an unknown writer's file must)."""
    found = meta.get(LABELS_META)
    labels: dict[str, BookLabel] = {}
    if not isinstance(found, dict):
        return labels
    for token, value in found.items():
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            labels[str(token)] = BookLabel(value[0], value[1])
    return labels


def book_digest(book: OrderBook) -> str:
    """12 hex digits of SHA-1 over the book's levels as wire text (both sides, every level): equal
    digests, equal books. Shown by ``record`` and ``replay`` so that a person can see a replay rebuilt
    the recorded books."""
    bids, asks = book.wire_levels()
    return hashlib.sha1(msgspec.json.encode([bids, asks]), usedforsecurity=False).hexdigest()[:12]


def books_table(
    books: Mapping[str, OrderBook],
    order: Iterable[str],
    labels: Mapping[str, BookLabel],
    statuses: Mapping[str, BookStatus] | None = None,
) -> Table:
    """One row a book: name, status, best bid and ask, levels a side, failed checks and the digest;
    ``statuses`` overrides the books' own (a recorder shows them as they were when it stopped)."""
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("book", no_wrap=True, overflow="ellipsis", max_width=34)
    table.add_column("status", no_wrap=True)
    table.add_column("bid", justify="right", no_wrap=True)
    table.add_column("ask", justify="right", no_wrap=True)
    table.add_column("levels", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("digest", no_wrap=True)
    for token in order:
        book = books.get(token)
        if book is None:
            continue
        label = labels.get(token)
        name = f"{label.name} · {label.outcome}" if label and label.outcome else abbreviate(token)
        bid, ask = book.best_bid, book.best_ask
        bids, asks = book.depth
        failed = book.checks.total_failed
        status = statuses.get(token, book.status) if statuses is not None else book.status
        table.add_row(
            name,
            f"[{STATUS_STYLE[status]}]{status.value}[/]",
            str(bid.price) if bid else "-",
            str(ask.price) if ask else "-",
            f"{bids}/{asks}",
            f"[bold red]{failed}[/]" if failed else "0",
            book_digest(book),
        )
    return table


def book_order(books: Mapping[str, OrderBook], labels: Mapping[str, BookLabel]) -> list[str]:
    """Books in their names' order (as recorded), then any unnamed ones by token id."""
    named = [token for token in labels if token in books]
    return named + sorted(token for token in books if token not in labels)
