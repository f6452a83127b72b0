"""OrderBook: exact application, the venue's hashes on real captures, reading, and bad input."""

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
    PriceLevel,
    TickSizeChange,
    decode_market,
)
from tests.book.builders import ASSET, MARKET, OTHER, change, live_book, snapshot

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
