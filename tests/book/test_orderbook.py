"""OrderBook: exact application, the venue's hashes on real captures, checks, status and bad input."""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path

import pytest

from polyfeed.book import BookStatus, CheckKind, HashVariant, Level, OrderBook
from polyfeed.errors import AssetMismatchError, InvalidLevelError
from polyfeed.wire import (
    Book,
    LastTradePrice,
    PriceChange,
    PriceChangeEntry,
    PriceLevel,
    TickSizeChange,
    decode_market,
)

ASSET = "100"
OTHER = "200"
MARKET = "0xaabbcc"


def snapshot(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], *, ts: str = "1000", **extra: object
) -> Book:
    """A ``book`` message; bids and asks given in wire order (bids ascending, asks descending)."""
    return Book(
        market=MARKET,
        asset_id=ASSET,
        timestamp=ts,
        bids=[PriceLevel(p, s) for p, s in bids],
        asks=[PriceLevel(p, s) for p, s in asks],
        **extra,  # type: ignore[arg-type]
    )


def change(
    price: str, size: str, side: str, *, ts: str = "2000", asset: str = ASSET, **extra: str
) -> PriceChange:
    return PriceChange(
        market=MARKET,
        timestamp=ts,
        price_changes=[PriceChangeEntry(asset_id=asset, price=price, size=size, side=side, **extra)],
    )


def live_book(**kwargs: object) -> OrderBook:
    book = OrderBook(ASSET, tick_size="0.01", verify_hash=False, **kwargs)  # type: ignore[arg-type]
    book.apply(snapshot([("0.30", "100"), ("0.40", "50")], [("0.70", "10"), ("0.60", "20")]))
    return book


# -- real captures ---------------------------------------------------------------------------------


@pytest.fixture
def crossing_burst(polymarket_fixtures: Path) -> list[object]:
    return list(
        decode_market((polymarket_fixtures / "ws/market/price_change_crossing_burst.json").read_bytes())
    )


def test_crossing_burst_reproduces_every_hash_outside_the_final_burst(crossing_burst: list[object]) -> None:
    """Each entry's hash is the book hash after that entry, at the message timestamp (spec 7.4), except
    inside the final same-timestamp burst, where every message carries the hash of the burst's end."""
    initial = crossing_burst[0]
    closing = crossing_burst[-1]
    assert isinstance(initial, Book) and isinstance(closing, Book)
    book = OrderBook(initial.asset_id, hash_variant=HashVariant.CURRENT)
    book.apply(initial)
    assert book.compute_hash(initial.timestamp) == initial.hash
    changes = [m for m in crossing_burst[1:-1] if isinstance(m, PriceChange)]
    burst_ts = changes[-1].timestamp
    outside = [m for m in changes if m.timestamp != burst_ts]
    assert len(outside) == 46 and len(changes) == 49  # the capture's shape, as SOURCES.md describes it
    for message in changes:
        book.apply(message)
        (entry,) = [e for e in message.price_changes if e.asset_id == initial.asset_id]
        if message.timestamp != burst_ts:
            assert book.compute_hash(message.timestamp) == entry.hash
        else:
            assert entry.hash == closing.hash, "inside the burst every message carries the final hash"


def test_crossing_burst_closing_snapshot_equals_the_book_built_from_updates(
    crossing_burst: list[object],
) -> None:
    initial = crossing_burst[0]
    closing = crossing_burst[-1]
    assert isinstance(initial, Book) and isinstance(closing, Book)
    book = OrderBook(initial.asset_id)
    for message in crossing_burst[:-1]:
        book.apply(message)
    assert book.wire_levels() == (closing.bids, closing.asks)
    book.apply(closing)
    assert book.checks.failed[CheckKind.SNAPSHOT] == 0
    assert book.checks.passed[CheckKind.SNAPSHOT] == 1


def test_crossing_burst_final_hash_verifies_once_the_trade_print_arrives(
    crossing_burst: list[object],
) -> None:
    """The venue hashes the new trade price (0.301) before it sends the print (spec 7.3): the check waits
    for the print instead of failing, and every check of the whole capture then passes."""
    initial = crossing_burst[0]
    assert isinstance(initial, Book)
    book = OrderBook(initial.asset_id)
    for message in crossing_burst:
        book.apply(message)
    assert book.status is BookStatus.LIVE
    assert book.checks.total_failed == 0
    book.apply(
        LastTradePrice(
            asset_id=initial.asset_id,
            market=initial.market,
            price="0.301",
            size="45.83",
            side="SELL",
            timestamp="1790658827000",
        )
    )
    assert book.checks.total_failed == 0
    assert book.checks.passed[CheckKind.HASH] == 47 + 1  # 46 entries and the initial snapshot, then the burst
    assert book.checks.passed[CheckKind.TOP_OF_BOOK] == 47
    assert book.status is BookStatus.LIVE


def test_crossing_burst_without_the_print_fails_when_final(crossing_burst: list[object]) -> None:
    initial = crossing_burst[0]
    assert isinstance(initial, Book)
    book = OrderBook(initial.asset_id)
    for message in crossing_burst:
        book.apply(message)
    book.settle(final=True)
    assert book.status is BookStatus.SUSPECT
    assert book.last_failure is not None and book.last_failure.kind is CheckKind.HASH
    assert book.last_failure.timestamp_ms == 1790658827000


def test_complement_token_mirrors_the_book_with_the_same_trade_price_text(
    crossing_burst: list[object],
) -> None:
    """The capture has no snapshot of the complement token; mirroring the first token's book (p -> 1-p,
    bids <-> asks) and hashing with the *same* last_trade_price text reproduces its entries' hashes."""
    initial = crossing_burst[0]
    assert isinstance(initial, Book)
    complement = next(
        e.asset_id
        for m in crossing_burst
        if isinstance(m, PriceChange)
        for e in m.price_changes
        if e.asset_id != initial.asset_id
    )

    def mirror(levels: list[PriceLevel]) -> list[PriceLevel]:
        return [PriceLevel(str(Decimal(1) - Decimal(lv.price)), lv.size) for lv in reversed(levels)]

    mirrored = Book(
        market=initial.market,
        asset_id=complement,
        timestamp=initial.timestamp,
        bids=mirror(initial.asks),
        asks=mirror(initial.bids),
        tick_size=initial.tick_size,
        last_trade_price=initial.last_trade_price,
    )
    book = OrderBook(complement)
    book.apply(mirrored)
    for message in crossing_burst[1:-1]:
        book.apply(message)
    book.apply(
        LastTradePrice(
            asset_id=initial.asset_id,
            market=initial.market,
            price="0.301",
            size="45.83",
            side="SELL",
            timestamp="1790658827000",
        )
    )
    book.settle()  # a print leaves the burst open (it may precede the burst's last messages)
    assert book.checks.total_failed == 0
    assert book.checks.passed[CheckKind.HASH] == 47  # 46 entries and the burst, via the other token's print
    assert book.last_trade_price == "0.301", "the other token's print, confirmed by the hash, is adopted"


def test_captured_snapshot_reproduces_its_own_hash(polymarket_fixtures: Path) -> None:
    (message,) = decode_market((polymarket_fixtures / "ws/market/book_snapshot_captured.json").read_bytes())
    assert isinstance(message, Book)
    book = OrderBook(message.asset_id)
    book.apply(message)
    assert book.compute_hash(message.timestamp) == message.hash == "ed47eb91f3c7985fac1cb18cb7c19535eddd3c0a"
    assert book.hash_variant is HashVariant.CURRENT
    assert book.checks.passed[CheckKind.HASH] == 1


def test_2024_snapshot_verifies_with_the_2024_field_set(polymarket_fixtures: Path) -> None:
    (message,) = decode_market((polymarket_fixtures / "ws/market/book_polypy_yes.json").read_bytes())
    assert isinstance(message, Book)
    book = OrderBook(message.asset_id)
    book.apply(message)
    assert book.hash_variant is HashVariant.V2024, "detected from the first hash that verifies"
    assert book.status is BookStatus.LIVE


def test_oct_2025_books_verify_with_nine_fields(polymarket_fixtures: Path) -> None:
    """polypy's Oct-2025 capture: a WS book, and REST books taken at the timestamps of two price changes."""
    lines = (polymarket_fixtures / "streams/polypy_messages_hash.txt").read_text().splitlines()
    frames = [json.loads(line) for line in lines if line.startswith("{")]
    first = decode_market(json.dumps(frames[0]))[0]
    assert isinstance(first, Book)
    book = OrderBook(first.asset_id, tick_size="0.01", hash_variant=HashVariant.V2025_10)
    book.apply(first)
    assert book.checks.passed[CheckKind.HASH] == 1
    rest_books = [decode_market(json.dumps(f))[0] for f in frames[1:] if "bids" in f]
    changes = [decode_market(json.dumps(f))[0] for f in frames[1:] if "price_changes" in f]
    assert len(rest_books) == 2 and len(changes) == 2
    for rest in rest_books:
        assert isinstance(rest, Book)
        checker = OrderBook(rest.asset_id, hash_variant=HashVariant.V2025_10)
        checker.apply(rest)  # REST books carry tick_size, min_order_size and neg_risk themselves
        assert checker.checks.passed[CheckKind.HASH] == 1, rest.timestamp


def test_polypy_stream_books_verify_with_its_recomputed_parameters(polymarket_fixtures: Path) -> None:
    """polypy re-hashed its edited stream with min_order_size 5, tick 0.001 and neg_risk true (SOURCES.md);
    every price change there chain-verifies."""
    lines = (polymarket_fixtures / "streams/polypy_server_multi_book.txt").read_text().splitlines()
    frames = [ast.literal_eval(line) for line in lines if line.strip()]
    books: dict[str, OrderBook] = {}
    for frame in frames:
        for message in decode_market(json.dumps(frame)):
            asset = getattr(message, "asset_id", None)
            if isinstance(message, Book) and asset not in books:
                books[message.asset_id] = OrderBook(
                    message.asset_id, tick_size="0.001", neg_risk=True, hash_variant=HashVariant.V2025_10
                )
            for book in books.values():
                if not isinstance(message, Book) or message.asset_id == book.asset_id:
                    book.apply(message)
    for book in books.values():
        book.settle(final=True)
        assert book.checks.failed[CheckKind.HASH] == 0, book.last_failure
        assert book.checks.passed[CheckKind.HASH] >= 2


# -- applying ----------------------------------------------------------------------------------------


def test_snapshot_replaces_and_orders_levels_best_first() -> None:
    book = live_book()
    assert book.best_bid == Level(Decimal("0.4"), Decimal(50))
    assert book.best_ask == Level(Decimal("0.6"), Decimal(20))
    assert [lv.price for lv in book.bids()] == [Decimal("0.4"), Decimal("0.3")]
    assert [lv.price for lv in book.asks(depth=1)] == [Decimal("0.6")]
    assert book.mid == Decimal("0.5")
    assert book.spread == Decimal("0.2")
    assert book.depth == (2, 2)


def test_price_change_sets_replaces_and_removes_levels() -> None:
    book = live_book()
    book.apply(change("0.45", "7", "BUY", ts="2001"))
    book.apply(change("0.30", "999", "BUY", ts="2002"))
    book.apply(change("0.60", "0", "SELL", ts="2003"))
    assert book.bids() == [
        Level(Decimal("0.45"), Decimal(7)),
        Level(Decimal("0.4"), Decimal(50)),
        Level(Decimal("0.3"), Decimal(999)),
    ]
    assert book.asks() == [Level(Decimal("0.7"), Decimal(10))]
    bids, asks = book.wire_levels()
    assert [lv.price for lv in bids] == ["0.30", "0.40", "0.45"], "wire order and wire text are kept"
    assert [lv.price for lv in asks] == ["0.70"]


def test_removing_an_absent_level_and_zero_written_differently() -> None:
    book = live_book()
    book.apply(change("0.55", "0", "SELL", ts="2001"))
    book.apply(change("0.40", "0.00", "BUY", ts="2002"))
    assert book.depth == (1, 2)


def test_entries_of_other_assets_are_ignored() -> None:
    book = live_book()
    assert book.apply(change("0.45", "7", "BUY", asset=OTHER)) is False
    assert book.depth == (2, 2)


def test_unsorted_snapshot_is_sorted_into_wire_order() -> None:
    book = OrderBook(ASSET, verify_hash=False)
    book.apply(snapshot([("0.40", "50"), ("0.30", "100")], [("0.60", "20"), ("0.70", "10")]))
    bids, asks = book.wire_levels()
    assert [lv.price for lv in bids] == ["0.30", "0.40"]
    assert [lv.price for lv in asks] == ["0.70", "0.60"]


def test_to_snapshot_round_trips_and_carries_a_verifiable_hash() -> None:
    book = live_book()
    book.apply(change("0.45", "7", "BUY", ts="2001"))
    copy = OrderBook(ASSET)
    copy.apply(book.to_snapshot())
    assert copy.wire_levels() == book.wire_levels()
    assert copy.checks.passed[CheckKind.HASH] == 1


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


# -- bad input -----------------------------------------------------------------------------------------


def test_off_tick_price_is_applied_and_reported() -> None:
    book = live_book()
    book.apply(change("0.455", "5", "BUY", ts="2000"))
    assert book.best_bid == Level(Decimal("0.455"), Decimal(5)), "the venue's word is kept..."
    assert book.status is BookStatus.SUSPECT, "...and the book says it may be wrong"
    assert book.checks.failed[CheckKind.TICK] == 1


@pytest.mark.parametrize(
    ("price", "size", "side"),
    [
        ("0.4", "-5", "BUY"),
        ("0.4", "1e3", "BUY"),
        ("0.4", "", "BUY"),
        ("abc", "5", "BUY"),
        ("1.5", "5", "SELL"),
        ("0.00001", "5", "SELL"),
        ("-0.4", "5", "SELL"),
        ("0.4", "5", "buy"),
    ],
)
def test_invalid_level_raises_and_marks_the_book_suspect(price: str, size: str, side: str) -> None:
    book = live_book()
    with pytest.raises(InvalidLevelError):
        book.apply(change(price, size, side))
    assert book.status is BookStatus.SUSPECT
    assert book.last_failure is not None and book.last_failure.kind is CheckKind.MALFORMED


def test_invalid_snapshot_raises_and_leaves_the_book_as_it_was() -> None:
    book = live_book()
    before = book.wire_levels()
    with pytest.raises(InvalidLevelError, match="size"):
        book.apply(snapshot([("0.40", "-1")], []))
    assert book.wire_levels() == before


def test_snapshot_with_an_invalid_tick_size_changes_nothing() -> None:
    book = live_book()
    before = book.wire_levels()
    with pytest.raises(InvalidLevelError):
        book.apply(snapshot([("0.40", "5")], [], tick_size="0.0x"))
    assert book.wire_levels() == before
    assert book.tick_size == "0.01"


def test_snapshot_of_another_asset_is_refused() -> None:
    book = live_book()
    with pytest.raises(AssetMismatchError):
        book.apply(Book(market=MARKET, asset_id=OTHER, timestamp="1"))


def test_messages_the_book_does_not_use_are_ignored() -> None:
    book = live_book()
    assert book.apply("PONG") is False
    assert (
        book.apply(
            TickSizeChange(
                asset_id=OTHER, market=MARKET, old_tick_size="0.01", new_tick_size="0.001", timestamp="1"
            )
        )
        is False
    )
    assert book.tick_size == "0.01"


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


def tick_change(old: str, new: str, ts: str) -> TickSizeChange:
    return TickSizeChange(asset_id=ASSET, market=MARKET, old_tick_size=old, new_tick_size=new, timestamp=ts)


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
