"""The ``watch`` screen, one frame at a time: legible at 80 columns, the right numbers in the right place."""

from __future__ import annotations

import re
import time

from rich.cells import cell_len
from rich.console import Console

from polyfeed.book import BookStatus, OrderBook
from polyfeed.cli.terminal import abbreviate
from polyfeed.cli.view import (
    STATUS_STYLE,
    Activity,
    BookLabel,
    UniverseCounts,
    WatchState,
    panels_that_fit,
    render_screen,
)
from polyfeed.session import BookUpdated, Disconnected, MessageReceived, Reconnected, Resynced, StatusChanged
from polyfeed.sim.engine import Exchange
from polyfeed.wire import LastTradePrice, MarketResolved

NOW_NS = 10**12
LADDER_LINE = re.compile(r"\d\.\d+ │ \d\.\d+")


def snapshot_books(count: int) -> tuple[dict[str, OrderBook], list[str]]:
    """Books of the local exchange's engine (no I/O), each from its snapshot: live."""
    exchange = Exchange(count, seed=3)
    order = [m.yes for m in exchange.markets]
    books = {}
    for asset in order:
        book = OrderBook(asset)
        book.apply(exchange.book(asset, initial=True))
        books[asset] = book
    return books, order


def frame_text(
    width: int, height: int | None, count: int = 4, **kwargs: object
) -> tuple[str, dict[str, OrderBook]]:
    books, order = snapshot_books(count)
    state = WatchState(started_ns=NOW_NS - 12 * 10**9)
    labels = {order[0]: BookLabel("fed-decision-in-december", "Yes")}
    for asset in order[:2]:
        state.on_event(BookUpdated(recv_ns=0, seq=1, connection_id=1, asset_id=asset))
    console = Console(width=width, record=True, color_system=None)
    screen = render_screen(
        books,
        order,
        labels,
        state,
        width=width,
        height=height,
        now_ns=NOW_NS,
        **kwargs,  # type: ignore[arg-type]
    )
    console.print(screen)
    return console.export_text(), books


def test_at_80_columns_two_books_sit_side_by_side_and_every_line_fits() -> None:
    text, _ = frame_text(80, 24)
    lines = text.splitlines()
    assert all(cell_len(line) <= 80 for line in lines)
    assert len(lines) <= 24
    assert sum(line.count("╭") for line in lines) == 4, "all four books are drawn"
    assert any(line.count("╭") == 2 for line in lines), "two a row"


def test_the_ladder_shows_both_sides_top_levels_best_first() -> None:
    text, books = frame_text(80, None, count=1, depth=5)
    (book,) = books.values()
    ladder = [line for line in text.splitlines() if LADDER_LINE.search(line)]
    assert len(ladder) == 5
    for line, bid, ask in zip(ladder, book.bids(5), book.asks(5), strict=True):
        left, right = line.split(" │ ")
        assert left.split()[-1] == f"{bid.price:.2f}" and right.split()[0] == f"{ask.price:.2f}"
        assert left.split()[-2] == f"{bid.size:,.2f}"
    assert f"spread {book.spread:.2f}" in text
    assert "LIVE" in text


def test_long_token_ids_are_abbreviated_and_labels_name_the_market() -> None:
    text, books = frame_text(80, 24)
    order = list(books)
    assert "fed-decision-in-december · Yes" in text
    assert abbreviate(order[1]) in text
    assert not any(asset in text for asset in order), "no 77-digit id on the screen"


def test_status_age_and_counters() -> None:
    books, order = snapshot_books(2)
    state = WatchState(started_ns=NOW_NS - 75 * 10**9)
    state.on_event(BookUpdated(recv_ns=0, seq=1, connection_id=1, asset_id=order[0]))
    state.updated_ns[order[0]] = NOW_NS - 2_500_000_000
    for seq in (2, 3):
        state.on_event(Disconnected(recv_ns=0, seq=seq, connection_id=1, reason="reset", assets=tuple(order)))
    state.on_event(Reconnected(recv_ns=0, seq=2, connection_id=1, gap_ns=10**9, assets=tuple(order)))
    state.on_event(Resynced(recv_ns=0, seq=3, connection_id=1, asset_id=order[1], replayed=0))
    trade = LastTradePrice(
        asset_id=order[0], market="0x", price="0.3", size="45.83", side="SELL", timestamp="1"
    )
    state.on_event(MessageReceived(recv_ns=0, seq=4, connection_id=1, message=trade))
    console = Console(width=80, record=True, color_system=None)
    console.print(render_screen(books, order, {}, state, width=80, height=None, now_ns=NOW_NS, rate=1234.4))
    text = console.export_text()
    header = text.splitlines()[0]
    assert "2 books" in header and "1,234 msg/s" in header
    assert "drops 2" in header and "reconnects 1" in header and "resyncs 1" in header
    assert "up 1m15s" in header
    assert "LIVE 2.5s ago" in text
    assert "no data yet" in text, "the second book never had an update event"
    assert "0.30 S 45.83" in text, "the trade, its price on the book's tick"


def test_a_book_without_data_is_syncing() -> None:
    state = WatchState(started_ns=NOW_NS)
    console = Console(width=80, record=True, color_system=None)
    console.print(render_screen({}, ["1" * 77], {}, state, width=80, height=24, now_ns=NOW_NS))
    text = console.export_text()
    assert "SYNCING" in text and "spread -" in text


def test_wide_screens_take_three_books_a_row_narrow_ones_one() -> None:
    wide, _ = frame_text(120, None, count=3)
    assert any(line.count("╭") == 3 for line in wide.splitlines())
    narrow, _ = frame_text(60, None, count=3)
    assert all(line.count("╭") <= 1 for line in narrow.splitlines())
    assert all(cell_len(line) <= 60 for line in narrow.splitlines())


def test_only_the_books_that_fit_the_height_are_drawn_and_the_header_says_so() -> None:
    text, _ = frame_text(80, 24, count=9)
    lines = text.splitlines()
    assert len(lines) <= 24
    assert "4 of 9 books" in lines[0]
    assert sum(line.count("╭") for line in lines) == 4


def test_the_message_rate_is_over_the_last_two_seconds() -> None:
    state = WatchState()
    assert state.rate(0) == 0.0
    state.messages = 1000
    assert state.rate(1_000_000_000) == 1000.0
    state.messages = 1500
    assert state.rate(2_000_000_000) == 750.0
    state.messages = 1600
    assert state.rate(3_000_000_000) == 300.0, "the sample at 0 s has left the window"


def test_fewer_books_get_deeper_ladders_and_a_depth_asked_for_is_kept() -> None:
    one, _ = frame_text(80, 24, count=1)
    assert len([line for line in one.splitlines() if LADDER_LINE.search(line)]) == 10
    asked, _ = frame_text(80, 24, count=4, depth=8)
    lines = asked.splitlines()
    assert sum(line.count("╭") for line in lines) == 2, "one row of two books at depth 8 fits 24 lines"
    assert len([line for line in lines if LADDER_LINE.search(line)]) == 8


def test_a_live_book_kept_open_past_its_usual_deadline_says_since_when_it_is_unconfirmed() -> None:
    books, order = snapshot_books(1)
    books[order[0]].unconfirmed_since_ns = NOW_NS - 20 * 10**9
    state = WatchState(started_ns=NOW_NS - 75 * 10**9)
    console = Console(width=80, record=True, color_system=None)
    console.print(render_screen(books, order, {}, state, width=80, height=None, now_ns=NOW_NS))
    text = console.export_text()
    assert "LIVE" in text and "unconfirmed 20s" in text


def closed_frame(winner: str | None, *, color: bool = False) -> str:
    books, order = snapshot_books(1)
    (asset,) = order
    state = WatchState(started_ns=NOW_NS - 75 * 10**9)
    state.on_event(BookUpdated(recv_ns=0, seq=1, connection_id=1, asset_id=asset))
    if winner is not None:
        resolved = MarketResolved(
            market="0x1",
            timestamp="1",
            id="1",
            assets_ids=[asset, "2"],
            winning_asset_id=asset,
            winning_outcome=winner,
        )
        state.on_event(MessageReceived(recv_ns=0, seq=2, connection_id=1, message=resolved))
    reason = f"market resolved (winner {winner})" if winner else "the venue has no book for this token"
    books[asset].mark_closed(reason, 0)
    state.on_event(
        StatusChanged(
            recv_ns=0,
            seq=3,
            connection_id=1,
            asset_id=asset,
            old=BookStatus.LIVE,
            new=BookStatus.CLOSED,
            reason=reason,
        )
    )
    state.closed_ns[asset] = NOW_NS - 12 * 10**9
    state.updated_ns[asset] = NOW_NS - 52 * 10**9
    console = Console(width=80, record=True, color_system="standard" if color else None, force_terminal=color)
    console.print(render_screen(books, order, {}, state, width=80, height=None, now_ns=NOW_NS))
    return console.export_text(styles=color)


def test_a_resolved_market_says_so_with_its_winner_and_since_when_not_an_age() -> None:
    text = closed_frame("No")
    assert "RESOLVED 12s ago  No won  checks" in text
    assert "LIVE" not in text and "52s ago" not in text, "not a live book whose feed seems to hang"
    coloured = closed_frame("No", color=True)
    resolved_style = coloured[: coloured.index("RESOLVED")].rsplit("\x1b[", 1)[1]
    assert resolved_style == "1;34m", f"bold blue: {resolved_style!r}"
    assert len(set(STATUS_STYLE.values())) == len(STATUS_STYLE), "a colour of its own, as every status"


def test_a_book_closed_without_a_resolution_says_closed_and_why() -> None:
    text = closed_frame(None)
    assert "CLOSED 12s ago  checks" in text and "(the venue has no book for this token)" in text
    assert "RESOLVED" not in text and "won" not in text


def test_the_state_notes_when_a_book_closed_and_which_outcome_won() -> None:
    state = WatchState()
    state.on_event(
        StatusChanged(
            recv_ns=0,
            seq=1,
            connection_id=1,
            asset_id="a",
            old=BookStatus.LIVE,
            new=BookStatus.STALE,
            reason="x",
        )
    )
    assert state.closed_ns == {}
    before = time.monotonic_ns()
    state.on_event(
        StatusChanged(
            recv_ns=0,
            seq=2,
            connection_id=1,
            asset_id="a",
            old=BookStatus.STALE,
            new=BookStatus.CLOSED,
            reason="x",
        )
    )
    assert state.closed_ns["a"] >= before
    message = MarketResolved(
        market="0x1", timestamp="1", id="1", assets_ids=["a", "b"], winning_asset_id="b", winning_outcome="No"
    )
    state.on_event(MessageReceived(recv_ns=0, seq=3, connection_id=1, message=message))
    assert state.winners == {"a": "No", "b": "No"}


def test_a_label_s_text_names_the_market_and_outcome() -> None:
    assert BookLabel("fed-decision-in-december", "Yes").text == "fed-decision-in-december · Yes"
    assert BookLabel("7667…1111").text == "7667…1111"


# -- watch --all: the busiest books of a large universe -----------------------------------------------


def updated(state: WatchState, asset: str, times: int = 1) -> None:
    for _ in range(times):
        state.on_event(BookUpdated(recv_ns=0, seq=1, connection_id=1, asset_id=asset))


def test_the_busiest_books_are_those_updated_most_in_the_window() -> None:
    state = WatchState(activity=Activity(bucket_ns=5 * 10**9, bucket_start_ns=0))
    activity = state.activity
    assert activity is not None
    for asset, times in (("a", 3), ("b", 7), ("c", 1), ("d", 5)):
        updated(state, asset, times)
    assert activity.busiest(2, now_ns=10**9) == [("b", 7), ("d", 5)]
    activity.rotate(6 * 10**9)  # a new bucket: the last one's counts still count
    updated(state, "c", 9)
    assert activity.busiest(3, now_ns=7 * 10**9) == [("c", 10), ("b", 7), ("d", 5)]
    assert activity.busiest(10, now_ns=12 * 10**9) == [("c", 9)], "the first bucket left the window"
    assert activity.busiest(10, now_ns=30 * 10**9) == [], "nothing updated for two buckets"


def test_without_activity_the_state_counts_no_books() -> None:
    state = WatchState()
    updated(state, "a")
    assert state.activity is None and "a" in state.updated_ns


def universe_frame(width: int, height: int | None, count: int = 9) -> tuple[str, list[str]]:
    books, order = snapshot_books(count)
    state = WatchState(started_ns=NOW_NS - 12 * 10**9, activity=Activity(bucket_start_ns=NOW_NS))
    for n, asset in enumerate(order):
        updated(state, asset, 100 - n)
        state.updated_ns[asset] = NOW_NS - 10**8
    counts = UniverseCounts(
        {BookStatus.LIVE: 45_210, BookStatus.SYNCING: 300, BookStatus.STALE: 89, BookStatus.CLOSED: 1}
    )
    labels = {a: BookLabel(f"market-{n // 2}", "Yes" if n % 2 == 0 else "No") for n, a in enumerate(order)}
    console = Console(width=width, record=True, color_system=None)
    console.print(
        render_screen(
            books, order, labels, state, width=width, height=height, now_ns=NOW_NS, rate=3979, universe=counts
        )
    )
    return console.export_text(), order


def test_with_a_universe_the_header_counts_every_book_by_status_and_each_panel_its_updates() -> None:
    text, order = universe_frame(80, 24, count=4)
    lines = text.splitlines()
    assert all(cell_len(line) <= 80 for line in lines) and len(lines) <= 24
    assert lines[0] == "polyfeed top 4  3,979 msg/s  drops 0  reconnects 0  resyncs 0  up 12s  ^C quits"
    assert lines[1] == "all 45,600 books: 45,210 live 300 syncing 0 suspect 89 stale 1 closed"
    assert "market-0 · Yes" in lines[2] and "market-0 · No" in lines[2]
    subtitles = [line for line in lines if line.startswith("╰")]
    assert "100 upd/10s · " in subtitles[0] and "99 upd/10s · " in subtitles[0]
    assert "97 upd/10s · " in subtitles[1] and abbreviate(order[0]) in subtitles[0]
    assert "LIVE 0.1s ago" in text


def test_the_books_that_fit_are_as_many_as_the_screen_draws() -> None:
    for width, height in ((80, 24), (120, 40), (60, 30), (160, 50)):
        fit = panels_that_fit(width, height, header_rows=2)
        text, _ = universe_frame(width, height, count=fit + 3)
        lines = text.splitlines()
        assert sum(line.count("╭") for line in lines) == fit, (width, height)
        assert len(lines) <= height
    assert panels_that_fit(80, 24) == 4 and panels_that_fit(80, 24, 8) == 2


def test_each_book_keeps_its_last_three_trades_newest_first() -> None:
    state = WatchState()
    for n in range(4):
        trade = LastTradePrice(
            asset_id="a", market="0x", price=f"0.{n + 1}", size="1", side="BUY", timestamp="1"
        )
        state.on_event(MessageReceived(recv_ns=0, seq=n, connection_id=1, message=trade))
    assert [t.price for t in state.trades["a"]] == ["0.4", "0.3", "0.2"]
