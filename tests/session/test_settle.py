"""BurstClock: bursts closed in the venue's time, per asset, and hashes that wait for their print."""

from __future__ import annotations

import msgspec

from polyfeed.book import BookStatus, CheckKind, HashVariant, OrderBook
from polyfeed.session.settle import BurstClock
from polyfeed.wire import Book, PriceChange, decode_market


def book_message(asset: str) -> Book:
    snapshot = {
        "event_type": "book",
        "market": "0xm",
        "asset_id": asset,
        "timestamp": "1000",
        "bids": [{"price": "0.40", "size": "10"}],
        "asks": [{"price": "0.60", "size": "10"}],
        "tick_size": "0.01",
    }
    (message,) = decode_market(msgspec.json.encode(snapshot))
    assert isinstance(message, Book)
    return message


def book(asset: str) -> OrderBook:
    ob = OrderBook(asset)
    ob.apply(book_message(asset))
    return ob


def change(asset: str, ts: str, best_bid: str) -> PriceChange:
    (message,) = decode_market(
        msgspec.json.encode(
            {
                "event_type": "price_change",
                "market": "0xm",
                "timestamp": ts,
                "price_changes": [
                    {
                        "asset_id": asset,
                        "price": "0.41",
                        "size": "1",
                        "side": "BUY",
                        "best_bid": best_bid,
                        "best_ask": "0.6",
                    }
                ],
            }
        )
    )
    assert isinstance(message, PriceChange)
    return message


def test_a_burst_is_judged_once_the_venue_clock_has_moved_past_it_not_before() -> None:
    books = {"a": book("a")}
    books["a"].apply_price_change(change("a", "2000", best_bid="0.30"))  # a top the book cannot match
    clock = BurstClock(settle_after_s=0.25, final_settle_after_s=3.0)
    clock.opened["a"] = 2000
    changed: list[tuple[str, BookStatus]] = []
    clock.venue_ms = 2200
    assert clock.sweep_due()
    clock.sweep(books, {"a"}, lambda asset, old: changed.append((asset, old)))
    assert changed == [] and books["a"].status is BookStatus.LIVE, "200 ms later: the burst may go on"
    clock.venue_ms = 2250
    assert not clock.sweep_due(), "a sweep every quarter of settle_after_s"
    clock.venue_ms = 2300
    assert clock.sweep_due()
    clock.sweep(books, {"a"}, lambda asset, old: changed.append((asset, old)))
    assert changed == [("a", BookStatus.LIVE)] and books["a"].status is BookStatus.SUSPECT
    assert clock.opened == {}


def test_a_book_of_another_connection_or_none_is_left_alone() -> None:
    books = {"a": book("a")}
    books["a"].apply_price_change(change("a", "2000", best_bid="0.30"))
    clock = BurstClock(0.25, 3.0)
    clock.opened.update({"a": 2000, "gone": 2000})
    clock.venue_ms = 9000
    clock.sweep(books, set(), lambda asset, old: None)
    assert books["a"].status is BookStatus.LIVE and clock.opened == {}


def test_clear_drops_open_bursts() -> None:
    clock = BurstClock(0.25, 3.0)
    clock.opened["a"] = 1
    clock.clear()
    assert clock.opened == {} and not clock.sweep_due()


def test_a_claim_left_unchecked_is_checked_by_the_sweep_once_its_interval_has_passed() -> None:
    book = OrderBook("a", tick_size="0.01", hash_variant=HashVariant.CURRENT, hash_every_ms=1000)
    twin = OrderBook("a", tick_size="0.01", hash_variant=HashVariant.CURRENT, verify_hash=False)
    base = book_message("a")
    book.apply(base)
    twin.apply(base)
    clock = BurstClock(0.25, 3.0)
    for ts in ("2000", "2400"):
        message = change("a", ts, best_bid="0.41")
        twin.apply_price_change(message)
        twin.settle()
        claim = msgspec.structs.replace(
            message,
            price_changes=[msgspec.structs.replace(message.price_changes[0], hash=twin.compute_hash(ts))],
        )
        book.apply_price_change(claim)
        clock.opened["a"] = int(ts)
        clock.venue_ms = int(ts) + 300
        assert clock.sweep_due()
        clock.sweep({"a": book}, {"a"}, lambda asset, old: None)
    assert book.checks.passed[CheckKind.HASH] == 1 and book.unverified_claim == "2400", "deferred"
    clock.venue_ms = 2999
    clock.sweep({"a": book}, {"a"}, lambda asset, old: None)
    assert book.unverified_claim == "2400", "not due before the interval"
    clock.venue_ms = 3000
    assert clock.sweep_due()
    clock.sweep({"a": book}, {"a"}, lambda asset, old: None)
    assert book.unverified_claim is None and book.checks.passed[CheckKind.HASH] == 2
    assert book.status is BookStatus.LIVE
