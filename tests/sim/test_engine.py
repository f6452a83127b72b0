"""The exchange engine: deterministic, mirrored, and every hash it sends verifies in a polyfeed book."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.sim import Exchange
from polyfeed.sim.engine import SCALE, price_text
from polyfeed.wire import Book, LastTradePrice, MarketResolved, NewMarket, PriceChange, TickSizeChange


def client_books(exchange: Exchange) -> dict[str, OrderBook]:
    books = {}
    for asset in exchange.asset_ids():
        book = OrderBook(asset, min_order_size=exchange.by_asset[asset].min_order_size)
        book.apply(exchange.book(asset, initial=True))
        books[asset] = book
    return books


def test_same_seed_same_stream_and_another_seed_another() -> None:
    def stream(seed: int) -> list[bytes]:
        exchange = Exchange(markets=3, seed=seed)
        return [msgspec.json.encode(out.message) for out in exchange.run(500)]

    assert stream(5) == stream(5)
    assert stream(5) != stream(6)


def test_every_hash_and_top_of_book_verifies_and_books_equal_the_exchange() -> None:
    """The client side of the contract: books built from the stream pass every check and equal the
    exchange's own books at the end."""
    exchange = Exchange(markets=4, seed=11)
    books = client_books(exchange)
    kinds: set[type] = set()
    for out in exchange.run(8_000):
        kinds.add(type(out.message))
        for asset in out.assets:
            if asset in books:  # a market opened during the run is not followed
                books[asset].apply(out.message)
    assert {PriceChange, Book, LastTradePrice} <= kinds
    for asset, book in books.items():
        if asset not in exchange.by_asset:
            continue  # resolved during the run: its book stopped
        book.settle(final=True)
        assert book.checks.total_failed == 0, book.last_failure
        assert book.status is BookStatus.LIVE
        assert book.checks.passed[CheckKind.HASH] > 0
        rest = exchange.book(asset)
        assert book.wire_levels() == (rest.bids, rest.asks)


def test_no_token_mirrors_yes() -> None:
    exchange = Exchange(markets=2, seed=2)
    list(exchange.run(1_000))
    for market in exchange.markets:
        yes, no = exchange.book(market.yes), exchange.book(market.no)
        assert [(SCALE - int(Decimal(lv.price) * SCALE), lv.size) for lv in yes.asks] == [
            (int(Decimal(lv.price) * SCALE), lv.size) for lv in no.bids
        ]


def test_trade_burst_shape() -> None:
    """Several price changes with one timestamp carrying the final hash, then a post-trade book per
    token (without tick_size / last_trade_price), then the print (spec 4.8)."""
    exchange = Exchange(markets=1, seed=4)
    for _ in range(2_000):
        outs = exchange.step()
        if any(isinstance(o.message, LastTradePrice) for o in outs):
            break
    else:
        pytest.fail("no trade in 2,000 steps")
    changes = [o.message for o in outs if isinstance(o.message, PriceChange)]
    snapshots = [o.message for o in outs if isinstance(o.message, Book)]
    (trade,) = [o.message for o in outs if isinstance(o.message, LastTradePrice)]
    assert len(changes) >= 3
    assert len({c.timestamp for c in changes} | {s.timestamp for s in snapshots}) == 1
    yes = exchange.markets[0].yes
    yes_hashes = {e.hash for c in changes for e in c.price_changes if e.asset_id == yes}
    (yes_snapshot,) = [s for s in snapshots if s.asset_id == yes]
    assert yes_hashes == {yes_snapshot.hash}
    assert yes_snapshot.tick_size is None and yes_snapshot.last_trade_price is None
    assert trade.price == exchange.markets[0].last_trade_price


def test_tick_size_changes_near_the_extremes() -> None:
    exchange = Exchange(markets=1, seed=9)
    market = exchange.markets[0]
    market.fair_key = 9_850
    books = client_books(exchange)
    changes = []
    for _ in range(6_000):
        market.fair_key = max(market.fair_key, 9_700)
        for out in exchange.step():
            if isinstance(out.message, TickSizeChange):
                changes.append(out.message)
            for asset in out.assets:
                if asset in books:
                    books[asset].apply(out.message)
    assert changes and changes[0].old_tick_size == "0.01" and changes[0].new_tick_size == "0.001"
    for book in books.values():
        book.settle(final=True)
        assert book.checks.total_failed == 0, book.last_failure


@pytest.mark.parametrize(("key", "text"), [(3000, "0.3"), (3010, "0.301"), (25, "0.0025"), (10000, "1")])
def test_price_text_is_the_venue_s_trimmed_form(key: int, text: str) -> None:
    assert price_text(key) == text


def test_unknown_token_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        Exchange(markets=1).book("123")


def test_markets_open_and_resolve_with_broadcasts() -> None:
    exchange = Exchange(markets=3, seed=12)
    opened = exchange.add_market()
    (new,) = [o.message for o in opened]
    assert isinstance(new, NewMarket) and len(exchange.markets) == 4
    assert new.assets_ids == [exchange.markets[-1].yes, exchange.markets[-1].no]
    target = exchange.markets[0]
    outs = exchange.resolve_market(target)
    resolved = outs[-1].message
    assert isinstance(resolved, MarketResolved) and outs[-1].channel == "broadcast"
    assert resolved.winning_asset_id in (target.yes, target.no)
    assert target not in exchange.markets
    with pytest.raises(KeyError):
        exchange.book(target.yes)
    for out in exchange.run(3_000):
        assert target.condition_id not in (getattr(out.message, "market", None),) or out.channel != "market"
