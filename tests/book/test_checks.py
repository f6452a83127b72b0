"""BookChecks: the checks at a burst's end, the hash and its alternates, snapshots against the book,
tick changes, and the status they set (through OrderBook, whose base class it is)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from polyfeed.book import BookStatus, CheckKind, HashVariant, Level, OrderBook
from polyfeed.errors import InvalidLevelError
from polyfeed.wire import LastTradePrice, PriceChange, TickSizeChange
from tests.book.builders import ASSET, MARKET, change, live_book, snapshot, tick_change

# -- checks and status ---------------------------------------------------------------------------------


def test_status_goes_syncing_live_suspect_live_stale() -> None:
    book = OrderBook(ASSET, verify_hash=False)
    assert book.status is BookStatus.SYNCING
    assert book.apply(change("0.45", "7", "BUY")) is False
    assert book.skipped_before_snapshot == 1, "a change before any snapshot is counted, not applied"
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")], ts="1000"))
    assert book.status is BookStatus.LIVE and book.status_since_ms == 1000
    book.apply(change("0.45", "7", "BUY", ts="2000", best_bid="0.44", best_ask="0.6"))
    book.apply(change("0.46", "1", "BUY", ts="2001", best_bid="0.46", best_ask="0.6"))
    assert book.status is BookStatus.SUSPECT
    assert "top_of_book" in book.status_reason and book.status_since_ms == 2000
    assert book.last_failure is not None and book.last_failure.kind is CheckKind.TOP_OF_BOOK
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")], ts="3000"))
    assert book.status is BookStatus.LIVE
    book.mark_stale("connection lost", at_ms=4000)
    assert (book.status, book.status_reason, book.status_since_ms) == (
        BookStatus.STALE,
        "connection lost",
        4000,
    )


def test_top_of_book_mismatch_inside_a_burst_is_not_a_failure() -> None:
    """Inside a same-timestamp burst the venue sends the burst's final top of book on every message."""
    book = live_book()
    book.apply(change("0.45", "7", "BUY", ts="2000", best_bid="0.5", best_ask="0.6"))
    book.apply(change("0.50", "3", "BUY", ts="2000", best_bid="0.5", best_ask="0.6"))
    book.settle()
    assert book.checks.failed[CheckKind.TOP_OF_BOOK] == 0
    assert book.checks.passed[CheckKind.TOP_OF_BOOK] == 1


def test_empty_side_is_reported_as_zero_and_one() -> None:
    book = OrderBook(ASSET, verify_hash=False)
    book.apply(snapshot([("0.40", "50")], []))
    book.apply(change("0.40", "0", "BUY", ts="2000", best_bid="0", best_ask="1"))
    book.settle()
    assert book.checks.passed[CheckKind.TOP_OF_BOOK] == 1 and book.status is BookStatus.LIVE


def test_crossed_at_burst_end_fails_but_transient_crossing_does_not() -> None:
    book = live_book()
    book.apply(change("0.65", "5", "BUY", ts="2000"))  # crosses the 0.60 ask...
    book.apply(change("0.60", "0", "SELL", ts="2000"))  # ...which the same burst consumes
    book.apply(change("0.65", "0", "BUY", ts="2000"))
    book.settle()
    assert book.checks.failed[CheckKind.CROSSED] == 0
    book.apply(change("0.70", "5", "BUY", ts="2001"))  # locked against the 0.70 ask and left so
    book.settle()
    assert book.checks.failed[CheckKind.CROSSED] == 1 and book.status is BookStatus.SUSPECT


def test_hash_mismatch_outside_a_burst_makes_the_book_suspect_and_a_verified_hash_heals_it() -> None:
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")]))
    healed = book.compute_hash("2002")  # the hash of this same state at 2002, once 0.41 is gone again
    book.apply(change("0.40", "50", "BUY", ts="2000", hash="0" * 40))
    book.apply(change("0.41", "1", "BUY", ts="2001"))
    assert book.status is BookStatus.SUSPECT and book.last_failure is not None
    assert book.last_failure.kind is CheckKind.HASH
    book.apply(change("0.41", "0", "BUY", ts="2002", hash=healed))
    book.settle()
    assert book.status is BookStatus.LIVE and book.status_reason == "hash verified"


def test_hash_computed_with_the_previous_trade_price_is_accepted() -> None:
    """A print can reach us before the changes the venue still hashed with the older price."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")], last_trade_price="0.5"))
    book.apply(change("0.41", "1", "BUY", ts="2000"))
    expected = book.compute_hash("2000")  # still with 0.5
    book.apply(
        LastTradePrice(asset_id=ASSET, market=MARKET, price="0.52", size="1", side="BUY", timestamp="2000")
    )
    book.apply(change("0.41", "1", "BUY", ts="2000", hash=expected))
    book.settle(final=True)
    assert book.checks.failed[CheckKind.HASH] == 0 and book.checks.passed[CheckKind.HASH] == 1


def test_a_snapshot_ahead_of_the_book_replaces_it_without_a_comparison() -> None:
    """``OrderBook.replace``: a relaying source's snapshot taken ahead of the messages it relays (a fan-out
    collector that joined while another lagged): the book is behind it, not wrong, and no check fails."""
    book = live_book()
    book.apply(change("0.41", "1", "BUY", ts="2000"))
    book.replace(snapshot([("0.30", "100"), ("0.40", "51")], [("0.70", "10")], ts="5000"))
    assert sum(book.checks.failed.values()) == 0
    assert book.status is BookStatus.LIVE and book.timestamp == "5000"
    assert book.best_bid == Level(Decimal("0.4"), Decimal(51))
    book.apply(snapshot([("0.30", "100"), ("0.40", "52")], [("0.70", "10")], ts="5000"))
    assert book.checks.failed[CheckKind.SNAPSHOT] == 1, "apply still compares"


def test_snapshot_that_differs_from_the_local_book_is_reported_and_wins() -> None:
    book = live_book()
    book.apply(snapshot([("0.30", "100"), ("0.40", "51")], [("0.70", "10")], ts="5000"))
    assert book.checks.failed[CheckKind.SNAPSHOT] == 1
    assert book.last_failure is not None and book.last_failure.detail == "2 levels differ"
    assert book.status is BookStatus.LIVE and "differed" in book.status_reason
    assert book.best_bid == Level(Decimal("0.4"), Decimal(51))


def test_same_levels_compares_a_snapshot_without_touching_the_book() -> None:
    book = live_book()
    checks = book.checks.total_passed, book.checks.total_failed
    levels = book.wire_levels()
    assert book.same_levels(snapshot([("0.30", "100"), ("0.40", "50")], [("0.70", "10"), ("0.60", "20")]))
    assert book.same_levels(
        snapshot([("0.40", "50"), ("0.30", "100")], [("0.60", "20"), ("0.70", "10")], ts="9000")
    ), "another timestamp and level order: the same book"
    assert not book.same_levels(snapshot([("0.30", "100"), ("0.40", "51")], [("0.70", "10"), ("0.60", "20")]))
    assert not book.same_levels(snapshot([("0.30", "100"), ("0.40", "50")], [("0.70", "10")]))
    with pytest.raises(InvalidLevelError):
        book.same_levels(snapshot([("0.30", "-1")], []))
    assert (book.checks.total_passed, book.checks.total_failed) == checks, "no check counted"
    assert book.wire_levels() == levels and book.status is BookStatus.LIVE


def test_tick_size_change_starts_an_epoch_and_enters_the_hash() -> None:
    book = live_book()
    before = book.compute_hash("9")
    book.apply(
        TickSizeChange(
            asset_id=ASSET, market=MARKET, old_tick_size="0.01", new_tick_size="0.001", timestamp="3000"
        )
    )
    assert book.tick_size == "0.001" and book.tick_epoch == 2
    assert book.compute_hash("9") != before
    book.apply(change("0.405", "5", "BUY", ts="3001"))
    book.settle()
    assert book.checks.failed[CheckKind.TICK] == 0


def test_a_tick_change_inside_its_burst_does_not_reach_back_into_the_burst_hash() -> None:
    """The local exchange sends a tick change with the timestamp of the change that crossed 0.04; the
    burst's hash was computed under the old tick, so the burst closes before the tick changes."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.03", "50"), ("0.04", "5")], [("0.60", "20")]))
    book.apply(change("0.04", "0", "BUY", ts="2000"))
    under_old_tick = book.compute_hash("2000")
    book.apply(change("0.04", "0", "BUY", ts="2000", hash=under_old_tick))
    book.apply(
        TickSizeChange(
            asset_id=ASSET, market=MARKET, old_tick_size="0.01", new_tick_size="0.001", timestamp="2000"
        )
    )
    book.apply(change("0.035", "7", "BUY", ts="2001"))
    book.settle(final=True)
    assert book.checks.failed[CheckKind.HASH] == 0 and book.checks.passed[CheckKind.HASH] == 1
    assert book.status is BookStatus.LIVE


def test_tick_size_change_from_a_tick_the_book_did_not_have_is_a_failure() -> None:
    book = live_book()
    book.apply(
        TickSizeChange(
            asset_id=ASSET, market=MARKET, old_tick_size="0.001", new_tick_size="0.01", timestamp="3000"
        )
    )
    assert book.checks.failed[CheckKind.TICK] == 1 and book.status is BookStatus.SUSPECT


# -- gaps, hashless snapshots, ticks and prints inside a burst ---------------------------------------


def test_a_gap_is_not_a_failed_check_even_with_a_burst_open_when_the_connection_went() -> None:
    """The market moves while the connection is down: the reconnect's snapshot differs from the stale
    book, which is a resynchronisation, not a failure. A burst still open at the gap must not let a
    hash from before it turn the stale book live first (issue 12, item 8)."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")]))
    book.apply(change("0.41", "5", "BUY", ts="2000"))
    book.apply(change("0.41", "5", "BUY", ts="2000", hash=book.compute_hash("2000")))  # the burst stays open
    book.mark_stale("connection lost: closed by the server", 2001)
    assert book.status is BookStatus.STALE
    book.apply(snapshot([("0.39", "7")], [("0.58", "3")], ts="9000"))  # the market moved meanwhile
    assert book.checks.total_failed == 0
    assert book.status is BookStatus.LIVE and book.status_reason.startswith("snapshot")
    assert book.best_bid == Level(Decimal("0.39"), Decimal(7))


@pytest.mark.parametrize(
    ("bids", "asks", "kind"),
    [
        ([("0", "5"), ("0.40", "5")], [("0.60", "5")], CheckKind.TICK),
        ([("0.40", "5")], [("1", "5"), ("0.60", "5")], CheckKind.TICK),
        ([("0.405", "5")], [("0.60", "5")], CheckKind.TICK),
        ([("0.40", "0")], [("0.60", "5")], CheckKind.MALFORMED),
    ],
)
def test_a_snapshot_without_a_hash_gets_the_level_checks_and_is_not_live(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], kind: CheckKind
) -> None:
    """Nothing vouches for a snapshot that carries no hash (issue 12, item 9)."""
    book = OrderBook(ASSET, tick_size="0.01")
    book.apply(snapshot(bids, asks))
    assert book.checks.failed[kind] == 1 and book.status is BookStatus.SUSPECT


def test_a_sound_snapshot_without_a_hash_is_live_and_says_it_was_not_verified() -> None:
    book = OrderBook(ASSET, tick_size="0.01")
    book.apply(snapshot([("0.40", "5")], [("0.60", "5")]))
    assert book.status is BookStatus.LIVE and book.checks.total_failed == 0
    assert "not verified" in book.status_reason


def test_a_duplicated_tick_size_change_is_not_a_failure() -> None:
    book = live_book()
    book.apply(tick_change("0.01", "0.001", "3000"))
    book.apply(tick_change("0.01", "0.001", "3000"))
    assert book.checks.failed[CheckKind.TICK] == 0 and book.status is BookStatus.LIVE
    assert book.tick_size == "0.001" and book.tick_epoch == 2


@pytest.mark.parametrize("hashed_under", ["0.01", "0.001"])
def test_a_tick_change_inside_a_burst_leaves_the_burst_open_and_either_tick_verifies(
    hashed_under: str,
) -> None:
    """The venue's order of a tick change and the burst that caused it is undocumented: a tick change
    that arrives before the burst's last message must not close it half-applied (issue 12, item 10)."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.03", "50"), ("0.04", "5")], [("0.60", "20")]))
    final = OrderBook(ASSET, tick_size=hashed_under, hash_variant=HashVariant.CURRENT)
    final.apply(snapshot([("0.03", "50")], [("0.60", "20"), ("0.50", "9")]))
    claims = {"hash": final.compute_hash("2000"), "best_bid": "0.03", "best_ask": "0.5"}
    book.apply(change("0.04", "0", "BUY", ts="2000", **claims))
    book.apply(tick_change("0.01", "0.001", "2000"))
    book.apply(change("0.50", "9", "SELL", ts="2000", **claims))
    book.settle(final=True)
    assert book.checks.total_failed == 0 and book.checks.passed[CheckKind.HASH] == 1, "the burst's"
    assert book.status is BookStatus.LIVE and book.tick_size == "0.001"


def test_a_print_naming_a_stray_token_of_the_market_mid_burst_is_not_a_failure() -> None:
    """Only a hash confirms a print that names another token of the market (issue 12, item 10)."""
    book = OrderBook(ASSET, market=MARKET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0.40", "50")], [("0.60", "20")], last_trade_price="0.500"))
    book.apply(change("0.41", "5", "BUY", ts="2000"))
    claims = {"hash": book.compute_hash("2000"), "best_bid": "0.41", "best_ask": "0.6"}
    book.apply(change("0.41", "0", "BUY", ts="2000"))
    stray = LastTradePrice(
        asset_id="999", market=MARKET, price="0.77", size="1", side="BUY", timestamp="2000"
    )
    book.apply(stray)
    book.apply(change("0.41", "5", "BUY", ts="2000", **claims))
    book.settle(final=True)
    assert book.checks.total_failed == 0 and book.status is BookStatus.LIVE
    assert book.last_trade_price == "0.500"


def test_a_hashed_snapshot_awaiting_its_print_gets_the_level_checks_meanwhile() -> None:
    """Its hash may verify only once the trade print comes (spec 7.3); a level no venue sends (price 0)
    turns it suspect at once instead of LIVE until then (the fuzz of 10^6 frames found one)."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT)
    book.apply(snapshot([("0", "5"), ("0.40", "5")], [("0.60", "5")], hash="f" * 40))
    assert book.checks.failed[CheckKind.TICK] == 1 and book.status is BookStatus.SUSPECT


# -- the hash schedule (hash_every_ms) -----------------------------------------------------------------


def scheduled_book() -> tuple[OrderBook, OrderBook]:
    """A book checking its hash at most every second, and a twin that gives the venue's claims."""
    book = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT, hash_every_ms=1000)
    twin = OrderBook(ASSET, tick_size="0.01", hash_variant=HashVariant.CURRENT, verify_hash=False)
    for b in (book, twin):
        b.apply(snapshot([("0.40", "50")], [("0.60", "20")]))
    return book, twin


def claimed(twin: OrderBook, price: str, size: str, ts: str) -> PriceChange:
    """The change, with the hash of the twin's book after it (what the venue would claim)."""
    twin.apply(change(price, size, "BUY", ts=ts))
    twin.settle()
    return change(price, size, "BUY", ts=ts, hash=twin.compute_hash(ts))


def test_a_live_books_hash_is_checked_at_most_once_an_interval_the_newest_claim_each_time() -> None:
    book, twin = scheduled_book()
    for ts in ("2000", "2300", "2600", "2900"):  # four bursts within a second of the venue's time
        book.apply(claimed(twin, "0.3" + ts[1], "5", ts))
        book.settle()
    assert book.checks.passed[CheckKind.HASH] == 1, "the first, then none within the interval"
    assert book.checks.passed[CheckKind.CROSSED] == 4, "the cheap checks at every burst end"
    assert book.unverified_claim == "2900" and book.hash_due_ms == 3000
    book.verify_deferred()
    assert book.checks.passed[CheckKind.HASH] == 2 and book.unverified_claim is None
    book.apply(claimed(twin, "0.35", "5", "3900"))  # an interval after the check of 2900
    book.settle()
    assert book.checks.passed[CheckKind.HASH] == 3, "an interval after the last check: checked at once"


def test_a_wrong_level_under_a_deferred_claim_is_caught_when_it_is_checked() -> None:
    book, twin = scheduled_book()
    book.apply(claimed(twin, "0.31", "5", "2000"))
    book.settle()
    good = claimed(twin, "0.32", "5", "2100")
    book.apply(change("0.32", "6", "BUY", ts="2100", hash=good.price_changes[0].hash or ""))  # a wrong size
    book.settle()
    assert book.status is BookStatus.LIVE and book.unverified_claim == "2100", "not checked yet"
    book.settle(final=True)  # the stream gives up waiting (or the interval passes and a print never comes)
    assert book.status is BookStatus.SUSPECT and book.last_failure is not None
    assert book.last_failure.kind is CheckKind.HASH


def test_a_deferred_claim_is_checked_before_a_snapshot_a_print_or_a_tick_change_moves_its_inputs() -> None:
    book, twin = scheduled_book()
    book.apply(claimed(twin, "0.31", "5", "2000"))
    book.apply(claimed(twin, "0.32", "5", "2100"))
    book.settle()
    assert book.unverified_claim == "2100"
    book.apply(
        LastTradePrice(asset_id=ASSET, market=MARKET, price="0.5", side="BUY", size="1", timestamp="2200")
    )
    assert book.unverified_claim is None and book.checks.passed[CheckKind.HASH] == 2


def test_a_book_not_live_is_checked_at_every_burst_so_that_it_heals_at_once() -> None:
    book, twin = scheduled_book()
    book.mark_stale("connection lost", 1500)
    for ts in ("2000", "2100", "2200"):
        book.apply(claimed(twin, "0.3" + ts[2], "5", ts))
        book.settle()
        assert book.status is BookStatus.LIVE  # healed by the first, then live
    assert book.checks.passed[CheckKind.HASH] == 1, "live from the first verified hash on: deferred after"
