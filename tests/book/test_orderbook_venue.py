"""OrderBook against what real captures settle about the venue's hash (spec 7.3): the last trade price
is hashed with at least 3 decimals whatever text the print carried, both tokens hash the same text, and
the tick size, which the hash covers, may have to come from REST.

The venue's hashes here come from :func:`venue_hash`, a plain ``json.dumps`` of spec 7.1's field order,
never from the book under test.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from polyfeed.book import BookStatus, CheckKind, HashVariant, OrderBook
from polyfeed.book.prices import trade_price_text
from polyfeed.errors import InvalidLevelError
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceChangeEntry, PriceLevel

YES = "1111"
NO = "2222"
MARKET = "0xfeed"

Levels = list[tuple[str, str]]


def venue_hash(
    asset: str, ts: str, bids: Levels, asks: Levels, last_trade_price: str, *, tick: str = "0.01"
) -> str:
    """Spec 7.1, written out: bids ascending, asks descending, compact JSON, SHA-1."""
    obj = {
        "market": MARKET,
        "asset_id": asset,
        "timestamp": ts,
        "hash": "",
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
        "min_order_size": "5",
        "tick_size": tick,
        "neg_risk": False,
        "last_trade_price": last_trade_price,
    }
    return hashlib.sha1(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()


def initial(
    asset: str, bids: Levels, asks: Levels, last_trade_price: str, *, tick: str | None = "0.01"
) -> Book:
    """An initial-dump ``book`` as the venue sends it, its hash over the text it carries."""
    return Book(
        market=MARKET,
        asset_id=asset,
        timestamp="1000",
        hash=venue_hash(asset, "1000", bids, asks, last_trade_price, tick=tick or "0.01"),
        bids=[PriceLevel(p, s) for p, s in bids],
        asks=[PriceLevel(p, s) for p, s in asks],
        tick_size=tick,
        last_trade_price=last_trade_price,
    )


def entry(asset: str, price: str, size: str, side: str, hash_: str, bid: str, ask: str) -> PriceChangeEntry:
    return PriceChangeEntry(
        asset_id=asset, price=price, size=size, side=side, hash=hash_, best_bid=bid, best_ask=ask
    )


def print_(asset: str, price: str, ts: str) -> LastTradePrice:
    return LastTradePrice(asset_id=asset, market=MARKET, price=price, size="10", side="BUY", timestamp=ts)


@pytest.mark.parametrize(
    ("text", "hashed"),
    [
        ("0.49", "0.490"),
        ("0.5", "0.500"),
        ("0.585", "0.585"),
        ("0.4905", "0.4905"),
        ("0.49000", "0.490"),
        ("1", "1.000"),
        ("", ""),
    ],
)
def test_trade_price_is_hashed_with_at_least_three_decimals(text: str, hashed: str) -> None:
    assert trade_price_text(text) == hashed


@pytest.mark.parametrize("text", ["abc", "-0.5", "1.5", "0.49.1", "0.00001", "NaN"])
def test_a_trade_price_that_is_not_a_price_is_refused(text: str) -> None:
    with pytest.raises(InvalidLevelError):
        trade_price_text(text)


def real_shaped_stream(trade_text_in_hashes: str) -> list[object]:
    """An initial book at ``"0.500"``, a trade at 0.49 (the print says ``"0.49"``), then ordinary
    changes hashed by the venue with ``trade_text_in_hashes`` (``"0.490"`` on the real venue)."""
    bids: Levels = [("0.47", "100"), ("0.48", "50")]
    asks: Levels = [("0.51", "80"), ("0.49", "30")]
    messages: list[object] = [initial(YES, bids, asks, "0.500")]
    # A buyer takes the 0.49 ask: the burst removes it, the post-trade book and the print follow.
    asks = [("0.51", "80")]
    h = venue_hash(YES, "2000", bids, asks, trade_text_in_hashes)
    messages.append(
        PriceChange(
            market=MARKET,
            timestamp="2000",
            price_changes=[entry(YES, "0.49", "0", "SELL", h, "0.48", "0.51")],
        )
    )
    messages.append(
        Book(
            market=MARKET,
            asset_id=YES,
            timestamp="2000",
            hash=h,
            bids=[PriceLevel(p, s) for p, s in bids],
            asks=[PriceLevel(p, s) for p, s in asks],
        )
    )
    messages.append(print_(YES, "0.49", "2000"))
    for n, (price, size) in enumerate([("0.50", "20"), ("0.49", "15"), ("0.50", "0")]):
        ts = str(3000 + n)
        asks = sorted({**dict(asks), price: size}.items(), key=lambda kv: -float(kv[0]))
        asks = [(p, s) for p, s in asks if s != "0"]
        h = venue_hash(YES, ts, bids, asks, trade_text_in_hashes)
        messages.append(
            PriceChange(
                market=MARKET,
                timestamp=ts,
                price_changes=[entry(YES, price, size, "SELL", h, bids[-1][0], asks[-1][0])],
            )
        )
    return messages


def test_after_a_print_at_two_decimals_the_venues_hashes_verify_and_the_book_stays_live() -> None:
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    for message in real_shaped_stream("0.490"):
        book.apply(message)
        assert book.status is BookStatus.LIVE, book.status_reason
    book.settle(final=True)
    assert book.checks.total_failed == 0
    assert book.checks.passed[CheckKind.HASH] == 5, "the snapshot, the burst, the post-trade book, 3 changes"
    assert book.last_trade_price == "0.490"


def test_hashing_the_prints_own_text_is_the_bug_the_check_would_catch() -> None:
    """Were the venue to hash ``"0.49"`` (it does not), a book hashing ``"0.490"`` fails: the check tells
    the two texts apart, so the test above passes for the right reason."""
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    for message in real_shaped_stream("0.49"):
        book.apply(message)
    book.settle(final=True)
    assert book.checks.failed[CheckKind.HASH] >= 3
    assert book.status is BookStatus.SUSPECT


def test_the_complement_token_hashes_the_same_three_decimal_text_from_a_print_naming_the_other() -> None:
    """The print names YES; the NO book's next hashes use ``"0.490"`` too (spec 7.3, 36 of 36 real
    complement entries)."""
    bids: Levels = [("0.49", "10")]
    asks: Levels = [("0.53", "30")]
    book = OrderBook(NO, market=MARKET, hash_variant=HashVariant.CURRENT)
    book.apply(initial(NO, bids, asks, "0.500"))
    book.apply(print_(YES, "0.49", "2000"))
    bids = [("0.48", "5"), ("0.49", "10")]
    h = venue_hash(NO, "3000", bids, asks, "0.490")
    book.apply(
        PriceChange(
            market=MARKET, timestamp="3000", price_changes=[entry(NO, "0.48", "5", "BUY", h, "0.49", "0.53")]
        )
    )
    book.settle(final=True)
    assert book.checks.total_failed == 0 and book.checks.passed[CheckKind.HASH] == 2
    assert book.last_trade_price == "0.490"


def test_a_book_that_never_traded_hashes_an_empty_trade_price() -> None:
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    book.apply(initial(YES, [("0.40", "5")], [("0.60", "5")], ""))
    assert book.checks.passed[CheckKind.HASH] == 1 and book.checks.total_failed == 0


def test_a_print_whose_price_is_not_a_number_is_counted_and_the_book_is_suspect() -> None:
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    book.apply(initial(YES, [("0.40", "5")], [("0.60", "5")], "0.500"))
    with pytest.raises(InvalidLevelError):
        book.apply(print_(YES, "forty-nine", "2000"))
    assert book.checks.failed[CheckKind.MALFORMED] == 1
    assert book.status is BookStatus.SUSPECT and "trade print" in book.status_reason
    assert book.last_trade_price == "0.500", "the hash keeps the last price it could read"


def test_a_snapshot_without_tick_size_verifies_with_the_tick_from_rest() -> None:
    """December 2025's initial books had no ``tick_size``; REST ``/books`` always has it (spec 7.3)."""
    bids: Levels = [("0.40", "5")]
    asks: Levels = [("0.60", "5")]
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    book.set_metadata(min_order_size="5", tick_size="0.01", neg_risk=False)
    book.apply(initial(YES, bids, asks, "0.500", tick=None))
    assert book.tick_size == "0.01"
    assert book.checks.passed[CheckKind.HASH] == 1 and book.checks.total_failed == 0


def test_a_snapshot_without_tick_size_and_no_rest_answer_fails_its_hash_and_says_why() -> None:
    book = OrderBook(YES, hash_variant=HashVariant.CURRENT)
    book.apply(initial(YES, [("0.40", "5")], [("0.60", "5")], "0.500", tick=None))
    book.settle(final=True)
    assert book.checks.failed[CheckKind.HASH] == 1 and book.status is BookStatus.SUSPECT
    assert book.last_failure is not None and "tick size unknown" in book.last_failure.detail


def test_set_metadata_refuses_a_tick_that_is_not_a_price() -> None:
    book = OrderBook(YES)
    with pytest.raises(InvalidLevelError):
        book.set_metadata(tick_size="a cent")
    assert book.tick_size is None
