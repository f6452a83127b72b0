"""What record, replay and export share: times as written on the command line, the books' names in a
recording's meta, and the digest that tells two books apart."""

from __future__ import annotations

import datetime as dt

import pytest
import typer
from rich.console import Console

from polyfeed.book import OrderBook
from polyfeed.cli.recording import (
    book_digest,
    book_order,
    books_table,
    labels_from_meta,
    labels_to_meta,
    parse_time,
)
from polyfeed.cli.view import BookLabel
from polyfeed.sim.engine import Exchange
from polyfeed.wire import PriceChange, PriceChangeEntry

S = 1_000_000_000
START_NS = 1_764_500_000 * S + 123


@pytest.mark.parametrize(
    ("text", "after_start_s"),
    [("+90s", 90), ("+90", 90), ("+5m", 300), ("+1.5h", 5400), ("+0", 0), ("+.5s", 0.5)],
)
def test_a_plus_time_counts_from_the_recordings_first_record(text: str, after_start_s: float) -> None:
    assert parse_time(text).resolve(START_NS) == START_NS + round(after_start_s * S)


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2026-11-30T14:05:00Z", int(dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC).timestamp()) * S),
        ("2026-11-30 14:05", int(dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC).timestamp()) * S),
        (
            "2026-11-30T15:05:00.25+01:00",
            int(dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC).timestamp()) * S + S // 4,
        ),
        ("1764511500", 1_764_511_500 * S),
        ("1764511500.000000001", 1_764_511_500 * S + 1),
        ("1764511500123456789", 1_764_511_500_123_456_789),
    ],
)
def test_absolute_times_are_iso_utc_unix_seconds_or_nanoseconds(text: str, expected_ns: int) -> None:
    assert parse_time(text).resolve(START_NS) == expected_ns
    assert parse_time(text).resolve(None) == expected_ns


@pytest.mark.parametrize("text", ["", "soon", "+", "+5d", "-5s", "+5 m", "2026-13-01", "1e9"])
def test_anything_else_is_a_bad_parameter_that_says_which_forms_work(text: str) -> None:
    with pytest.raises(typer.BadParameter, match=r"is not a time: give \+90s"):
        parse_time(text)


def test_labels_survive_the_meta_and_malformed_entries_are_left_out() -> None:
    labels = {"1": BookLabel("fed-cut", "Yes"), "2": BookLabel("fed-cut", "No")}
    assert labels_from_meta({"labels": labels_to_meta(labels)}) == labels
    meta = {"labels": {"1": ["fed-cut", "Yes"], "2": "fed-cut", "3": ["a", 1], "4": ["a", "b", "c"]}}
    assert labels_from_meta(meta) == {"1": BookLabel("fed-cut", "Yes")}
    assert labels_from_meta({"labels": ["1"]}) == {} and labels_from_meta({}) == {}


def _books() -> tuple[Exchange, dict[str, OrderBook]]:
    exchange = Exchange(2, seed=5)
    books = {}
    for market in exchange.markets:
        for asset in (market.yes, market.no):
            book = books[asset] = OrderBook(asset)
            book.apply(exchange.book(asset, initial=True))
    return exchange, books


def test_the_digest_is_equal_for_equal_books_and_changes_with_any_level() -> None:
    exchange, books = _books()
    yes = exchange.markets[0].yes
    again = OrderBook(yes)
    again.apply(exchange.book(yes, initial=True))
    assert book_digest(again) == book_digest(books[yes])
    assert len({book_digest(b) for b in books.values()}) == len(books)
    best = books[yes].best_bid
    assert best is not None
    change = PriceChange(
        market=exchange.markets[0].condition_id,
        price_changes=[
            PriceChangeEntry(asset_id=yes, price=str(best.price), size=str(best.size + 1), side="BUY")
        ],
        timestamp=str(int(books[yes].timestamp or "0") + 1),
    )
    assert again.apply(change)
    assert book_digest(again) != book_digest(books[yes])


def test_the_table_lists_named_books_first_with_status_top_and_digest() -> None:
    exchange, books = _books()
    named = exchange.markets[1]
    labels = {named.no: BookLabel(named.slug, "No")}
    order = book_order(books, labels)
    assert order[0] == named.no and sorted(order[1:]) == sorted(a for a in books if a != named.no)
    console = Console(width=100, record=True, color_system=None)
    console.print(books_table(books, order, labels))
    lines = console.export_text().splitlines()
    assert lines[0].split() == ["book", "status", "bid", "ask", "levels", "failed", "digest"]
    first = lines[1].split()
    assert first[:4] == [named.slug, "·", "No", "live"]
    assert first[-1] == book_digest(books[named.no]) and first[-2] == "0"
    assert len(lines) == 1 + len(books)
