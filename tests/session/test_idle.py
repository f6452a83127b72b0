"""QuietOrZombie on its own: which books a verdict compares, and what ends it without a growth."""

from __future__ import annotations

from polyfeed.book import BookStatus, OrderBook
from polyfeed.session.idle import QuietOrZombie
from polyfeed.wire import Book, PriceChange, PriceChangeEntry, PriceLevel

MARKET = "0xaabbcc"


def snapshot(asset: str, bid_size: str = "100", ts: str = "1000") -> Book:
    return Book(
        market=MARKET,
        asset_id=asset,
        timestamp=ts,
        bids=[PriceLevel("0.30", bid_size), PriceLevel("0.40", "50")],
        asks=[PriceLevel("0.70", "10"), PriceLevel("0.60", "20")],
    )


def live(asset: str) -> OrderBook:
    book = OrderBook(asset, tick_size="0.01", verify_hash=False)
    book.apply(snapshot(asset))
    assert book.status is BookStatus.LIVE
    return book


def suspect(asset: str) -> OrderBook:
    book = live(asset)
    entry = PriceChangeEntry(
        asset_id=asset, price="0.45", size="5", side="BUY", best_bid="0.40", best_ask="0.60"
    )
    book.apply(PriceChange(market=MARKET, timestamp="2000", price_changes=[entry]))
    book.settle(final=True)
    assert book.status is BookStatus.SUSPECT, "the venue's top of book says 0.40, the book has 0.45"
    return book


def test_only_books_live_at_the_close_and_not_resolved_are_awaited() -> None:
    judge = QuietOrZombie(1, 600.0)
    judge.resolved({"r"})
    books = [live("a"), suspect("s"), OrderBook("y"), live("r")]
    judge.connection_lost(15.0, books)
    assert judge.verdict is not None and judge.verdict.awaiting == {"a"}
    judge.snapshot(books[1], snapshot("s", bid_size="1"))  # differs, but the book was suspect anyway
    assert judge.zombies_detected == 0
    judge.snapshot(books[0], snapshot("a", ts="99000"))
    assert (judge.quiet_confirmed, judge.quiet_idle_s) == (1, 30.0)


def test_a_close_for_another_reason_judges_nothing_and_drops_an_open_verdict() -> None:
    judge = QuietOrZombie(1, 600.0)
    books = [live("a"), live("b")]
    judge.connection_lost(15.0, books)
    judge.snapshot(books[0], snapshot("a"))
    judge.connection_lost(None, books)  # the server closed it before b's snapshot came
    assert judge.verdict is None
    judge.snapshot(books[1], snapshot("b", bid_size="1"))
    assert (judge.quiet_confirmed, judge.zombies_detected) == (0, 0)


def test_changes_on_the_new_connection_mean_no_growth_even_when_the_snapshots_match() -> None:
    judge = QuietOrZombie(1, 600.0)
    book = live("a")
    judge.connection_lost(15.0, [book])
    judge.traded()
    judge.snapshot(book, snapshot("a"))
    assert (judge.quiet_confirmed, judge.quiet_idle_s, judge.verdict) == (0, None, None)


def test_a_malformed_snapshot_proves_nothing_and_a_book_from_rest_drops_out() -> None:
    judge = QuietOrZombie(1, 600.0)
    a, b = live("a"), live("b")
    judge.connection_lost(20.0, [a, b])
    judge.snapshot(a, snapshot("a", bid_size="-3"))
    assert judge.verdict is not None and judge.verdict.compared == 0 and judge.zombies_detected == 0
    judge.forget(["b"])  # b was replaced from REST: its next snapshot compares with nothing held at the close
    assert judge.verdict is None and judge.quiet_confirmed == 0, "nothing was compared: no verdict"


def test_the_deadline_is_the_adaptive_one_unless_grown_or_everything_resolved() -> None:
    judge = QuietOrZombie(1, 600.0)
    assert judge.deadline_s(15.0, {"a", "b"}) == 15.0
    judge.quiet_idle_s = 120.0
    assert judge.deadline_s(15.0, {"a", "b"}) == 120.0
    assert judge.deadline_s(150.0, {"a", "b"}) == 150.0, "never below the adaptive deadline"
    judge.resolved({"a"})
    assert judge.deadline_s(15.0, {"a", "b"}) == 120.0
    judge.resolved({"b"})
    assert judge.deadline_s(15.0, {"a", "b"}) == 600.0
    off = QuietOrZombie(1, 60.0)  # max_quiet_idle_s = max_idle_s: growth off
    off.connection_lost(60.0, [book := live("a")])
    off.snapshot(book, snapshot("a"))
    assert off.quiet_confirmed == 1 and off.deadline_s(60.0, {"a"}) == 60.0
