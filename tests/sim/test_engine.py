"""The exchange engine: deterministic, mirrored, its own witness of the venue (its hashes from
polyfeed.sim.bookhash, never polyfeed.book), and every hash it sends verifies in a polyfeed book."""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.sim import Exchange
from polyfeed.sim.bookhash import book_hash, book_trade_price
from polyfeed.sim.engine import SCALE, Outbound, SimMarket, price_text
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
    market = exchange.markets[0]
    assert (trade.price, trade.side) == (market.last_trade_price, market.last_trade_side)
    for snapshot in snapshots:  # hashed with the new trade price, in the book's 3-decimal text
        assert snapshot.hash == venue_hash(snapshot, market.book_trade_price, market.tick)


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


def venue_hash(book: Book, trade_text: str, tick: str) -> str:
    """spec 7.1 over a snapshot's own levels."""
    return book_hash(
        market=book.market,
        asset_id=book.asset_id,
        timestamp=book.timestamp,
        bids=[(lv.price, lv.size) for lv in book.bids],
        asks=[(lv.price, lv.size) for lv in book.asks],
        min_order_size="5",
        tick_size=tick,
        neg_risk=False,
        last_trade_price=trade_text,
    )


def test_prints_are_trimmed_and_every_later_hash_of_both_tokens_uses_3_decimals() -> None:
    """spec 7.3, 12: the print says "0.49", books and hashes say "0.490" from then on, on both tokens."""
    exchange = Exchange(markets=2, seed=3)
    prints: list[LastTradePrice] = []
    checked = 0
    for _ in range(3_000):
        outs = exchange.step()
        prints += [o.message for o in outs if isinstance(o.message, LastTradePrice)]
        for market in exchange.markets:
            if not market.last_trade_price or market.tick != "0.01":
                continue
            for asset in (market.yes, market.no):
                book = exchange.book(asset)
                assert book.last_trade_price == book_trade_price(market.last_trade_price)
                assert book.hash == venue_hash(book, book.last_trade_price, market.tick)
                if book.last_trade_price != market.last_trade_price:
                    assert book.hash != venue_hash(book, market.last_trade_price, market.tick)
                    checked += 1
    assert checked > 0
    two_decimals = [p for p in prints if re.fullmatch(r"0\.\d\d?", p.price)]
    assert len(two_decimals) > len(prints) // 2, "on 0.01 ticks most prints have 2 decimals or fewer"
    assert all(p.side in ("BUY", "SELL") for p in prints)


def test_same_timestamp_groups_without_a_trade_carry_the_group_s_final_hash_and_top() -> None:
    """spec 7.4: two or three price changes at one timestamp, no trade, each with the final state."""
    exchange = Exchange(markets=3, seed=7)
    groups = 0
    for _ in range(4_000):
        outs = exchange.step()
        changes = [o.message for o in outs if isinstance(o.message, PriceChange)]
        if len(changes) < 2 or any(isinstance(o.message, (Book, LastTradePrice)) for o in outs):
            continue
        groups += 1
        assert len({c.timestamp for c in changes}) == 1
        market = exchange.by_asset[changes[0].price_changes[0].asset_id]
        for asset in (market.yes, market.no):
            claims = {
                (e.hash, e.best_bid, e.best_ask)
                for c in changes
                for e in c.price_changes
                if e.asset_id == asset
            }
            book = exchange.book(asset)
            top = (book.bids[-1].price if book.bids else "0", book.asks[-1].price if book.asks else "1")
            assert claims == {(market.plain_hash(asset, changes[0].timestamp), *top)}
    assert groups >= 10


def test_initial_markets_mostly_traded_before_and_new_markets_never() -> None:
    """A book that never traded hashes "last_trade_price":"" (spec 7.3); a traded one "0.xx0"."""
    exchange = Exchange(markets=6, seed=1)
    first, *others = exchange.markets
    assert (first.last_trade_price, first.last_trade_side) == ("", "")
    assert exchange.book(first.yes).last_trade_price == ""
    for market in others[:4]:
        assert market.last_trade_side in ("BUY", "SELL")
        assert re.fullmatch(r"0\.\d\d\d", exchange.book(market.no, initial=True).last_trade_price or "")
    exchange.add_market()
    new = exchange.markets[-1]
    assert (new.last_trade_price, new.last_trade_side) == ("", "")
    book = exchange.book(new.yes)
    assert book.hash == venue_hash(book, "", new.tick)


def test_rest_and_initial_shapes() -> None:
    exchange = Exchange(markets=2, seed=5)
    market = exchange.markets[1]
    rest, initial = exchange.book(market.yes), exchange.book(market.yes, initial=True)
    assert (rest.min_order_size, rest.neg_risk, rest.tick_size) == ("5", False, "0.01")
    assert (initial.min_order_size, initial.neg_risk) == (None, None)
    assert initial.tick_size == "0.01" and initial.last_trade_price == rest.last_trade_price
    assert initial.hash == rest.hash == venue_hash(rest, book_trade_price(market.last_trade_price), "0.01")


def test_the_sim_imports_no_client_layer() -> None:
    """design 2: the sim is an independent witness; it may import polyfeed.wire, never book/net/stream."""
    forbidden = ("polyfeed.book", "polyfeed.net", "polyfeed.stream", "polyfeed.session")
    for path in Path(__file__).resolve().parents[2].joinpath("src/polyfeed/sim").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


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
    resolved, replacement = (o.message for o in outs[-2:])
    assert all(o.channel == "broadcast" for o in outs[-2:])
    assert isinstance(resolved, MarketResolved) and resolved.winning_asset_id in (target.yes, target.no)
    assert isinstance(replacement, NewMarket) and replacement.slug == "sim-market-4"
    assert target not in exchange.markets and len(exchange.markets) == 4, "a new market in its place"
    with pytest.raises(ValueError, match="not open"):
        exchange.resolve_market(target)
    with pytest.raises(KeyError):
        exchange.book(target.yes)
    for out in exchange.run(3_000):
        assert target.condition_id not in (getattr(out.message, "market", None),) or out.channel != "market"


# -- at the venue's scale -------------------------------------------------------------------------------


class Unwalkable(list[Any]):
    """A list that may be indexed, grown and cut, never walked: what the flow may do with markets."""

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("walked every item")

    def __contains__(self, item: object) -> bool:
        raise AssertionError("searched every item")

    def __reversed__(self) -> Iterator[Any]:
        raise AssertionError("walked every item")

    def index(self, *args: Any) -> int:
        raise AssertionError("searched every item")

    def remove(self, item: Any) -> None:
        raise AssertionError("searched every item")


class UnwalkableDict(dict[str, Any]):
    """A dict that may be read and written by key, never walked."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("walked every key")

    def values(self) -> Any:
        raise AssertionError("walked every value")

    def items(self) -> Any:
        raise AssertionError("walked every item")


def test_an_event_never_walks_the_markets_nor_every_order_the_account_placed() -> None:
    """What an event costs does not grow with the markets or with time: the flow draws its market in
    O(log n) (polyfeed.sim.weights), resolves a market and opens its replacement by bisection and by
    slot, and finds the account's orders by market, never by a walk of everything."""
    exchange = Exchange(markets=200, seed=6, median_lifetime_s=30.0, long_dated=0)
    exchange.markets = Unwalkable(exchange.markets)
    exchange._slots = Unwalkable(exchange._slots)
    account = exchange.account
    account.orders = UnwalkableDict(account.orders)
    account._live = Unwalkable(account._live)
    kinds = Counter(type(out.message).__name__ for out in exchange.run(10_000, elapsed_ms=40))  # 400 s
    assert len(exchange.resolved) > 100, "some 13 median lifetimes: markets resolved and were replaced"
    assert kinds["Order"] > 100 and kinds["Trade"] > 0, "the account placed, cancelled and traded"
    assert len(exchange.markets) == 200 and len(exchange.by_asset) == 400
    indexes = [m.index for m in list.__iter__(exchange.markets)]
    assert indexes == sorted(indexes), "the open markets stay in the order they opened"


def test_books_are_drawn_when_first_read_the_same_whatever_the_order() -> None:
    """An exchange of the venue's size builds in seconds because no book is drawn until something
    reads it; each market draws from a seed of its own, so the order of first readings changes no
    book and no later message."""
    first, second = Exchange(markets=40, seed=9), Exchange(markets=40, seed=9)
    tops = [(m.best_bid_key, m.best_ask_key) for m in first.markets]
    assert not any(m.book_drawn for m in first.markets), "the top of book is known without a book"
    for market in reversed(second.markets):
        second.book(market.no)
    for market in first.markets:
        first.book(market.yes)
    for one, other, top in zip(first.markets, second.markets, tops, strict=True):
        assert one.book_drawn and other.book_drawn
        assert one.wire_levels(one.yes) == other.wire_levels(other.yes)
        assert (one.best_bid_key, one.best_ask_key) == top, "the drawn book opens at the known top"
    encode = msgspec.json.encode
    assert [encode(o.message) for o in first.run(3_000)] == [encode(o.message) for o in second.run(3_000)]


def test_the_flow_draws_only_the_books_it_touches_and_resolution_lets_them_go() -> None:
    exchange = Exchange(markets=500, seed=2)
    touched = {
        m.condition_id for _ in range(50) for out in exchange.step() if (m := _market_of(exchange, out))
    }
    drawn = {m.condition_id for m in exchange.markets if m.book_drawn}
    assert drawn == touched and 0 < len(drawn) <= 50
    market = next(m for m in exchange.markets if m.book_drawn)
    exchange.resolve_market(market)
    assert market.resolved_at_ms == exchange.now_ms and not market.bids and not market.asks


def _market_of(exchange: Exchange, out: Outbound) -> SimMarket | None:
    condition_id = getattr(out.message, "market", None)
    return exchange.by_condition.get(condition_id) if isinstance(condition_id, str) else None
