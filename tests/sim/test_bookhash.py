"""The local exchange's book hash: the spec's vectors, and the same hashes as :mod:`polyfeed.book` for
the same wire messages (two implementations written apart, spec 7.1 the judge)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from polyfeed.book import CheckKind, OrderBook
from polyfeed.sim.bookhash import _dumps as dumps
from polyfeed.sim.bookhash import book_hash, book_payload, book_trade_price, level_text, spliced_hash
from polyfeed.sim.market import SimMarket
from polyfeed.sim.numbers import SCALE, price_text, size_text
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceChangeEntry, TickSizeChange

VECTOR = {
    "market": "0xaabbcc",
    "asset_id": "100",
    "min_order_size": "100",
    "tick_size": "0.01",
    "neg_risk": False,
    "last_trade_price": "0.5",
}


def test_the_spec_s_first_vector_and_its_serialisation() -> None:
    levels = {"bids": [("0.3", "100"), ("0.4", "100")], "asks": [("0.6", "100"), ("0.7", "100")]}
    assert dumps(book_payload(timestamp="123456789", **levels, **VECTOR)) == (  # type: ignore[arg-type]
        '{"market":"0xaabbcc","asset_id":"100","timestamp":"123456789","hash":"",'
        '"bids":[{"price":"0.3","size":"100"},{"price":"0.4","size":"100"}],'
        '"asks":[{"price":"0.6","size":"100"},{"price":"0.7","size":"100"}],'
        '"min_order_size":"100","tick_size":"0.01","neg_risk":false,"last_trade_price":"0.5"}'
    )
    expected = "0458ea5755c9f73d64a14636fa5c36ed460ec394"
    assert book_hash(timestamp="123456789", **levels, **VECTOR) == expected  # type: ignore[arg-type]


def test_the_spec_s_second_vector_empty_book_no_timestamp() -> None:
    expected = "74c6a7c81c1d572f1c877b7d3e25b80c336d8a6e"
    assert book_hash(timestamp="", bids=[], asks=[], **VECTOR) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "book"),
    [
        ("0.49", "0.490"),
        ("0.5", "0.500"),
        ("0.585", "0.585"),
        ("0.4905", "0.4905"),
        ("0.004", "0.004"),
        ("", ""),
    ],
)
def test_the_book_s_text_of_the_last_trade_price_has_at_least_3_decimals(event: str, book: str) -> None:
    assert book_trade_price(event) == book


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
level_lists = st.lists(st.tuples(texts, texts), max_size=6)


@given(
    market=texts, asset=texts, bids=level_lists, asks=level_lists, tick=texts, price=texts, neg=st.booleans()
)
def test_the_spliced_hash_is_the_plain_hash(
    market: str,
    asset: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    tick: str,
    price: str,
    neg: bool,
) -> None:
    """Whatever the texts (quotes, backslashes, non-ASCII, the marker itself inside a value)."""
    common: dict[str, object] = {
        "market": market,
        "asset_id": asset,
        "timestamp": "17",
        "min_order_size": "5",
    }
    common |= {"tick_size": tick + '"bids":[],"asks":[]', "neg_risk": neg, "last_trade_price": price}
    spliced = spliced_hash(
        bid_texts=[level_text(p, s) for p, s in bids],
        ask_texts=[level_text(p, s) for p, s in asks],
        **common,  # type: ignore[arg-type]
    )
    assert spliced == book_hash(bids=bids, asks=asks, **common)  # type: ignore[arg-type]
    assert spliced == hashlib.sha1(dumps(book_payload(bids=bids, asks=asks, **common)).encode()).hexdigest()  # type: ignore[arg-type]


# -- the sim against polyfeed.book ----------------------------------------------------------------------

YES, NO = "1" * 77, "2" * 77
sizes = st.one_of(st.integers(1, 10**7).map(lambda n: Decimal(n) / 100), st.integers(1, 10**5).map(Decimal))
operations = st.lists(
    st.one_of(
        # a level of the unified book: (is a bid, grid index, size or 0 to remove)
        st.tuples(st.just("set"), st.booleans(), st.integers(1, 999), st.one_of(st.just(Decimal(0)), sizes)),
        # a trade at a grid price: 2 decimals on a 0.01 tick ("0.49", hashed "0.490")
        st.tuples(st.just("trade"), st.booleans(), st.integers(1, 999), st.just(Decimal(0))),
        st.tuples(st.just("tick"), st.just(False), st.just(0), st.just(Decimal(0))),
    ),
    max_size=40,
)


def on_grid(market: SimMarket, index: int, *, up: bool = False) -> int:
    """The grid price nearest ``index / 1000`` below it (or above it, ``up``), inside ``[tick, 1 - tick]``."""
    tick = market.tick_key
    key = -(-index * 10 // tick) * tick if up else index * 10 // tick * tick
    return min(SCALE - tick, max(tick, key))


class Witness:
    """A sim market, and two client books fed the wire messages the sim's state gives."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.now = 1_790_000_000_000
        self.clients = {a: OrderBook(a, min_order_size="5") for a in (YES, NO)}
        self.since_trade = 2
        """Messages since the last print. polyfeed.book takes a print naming the complement only once a
        later hash confirms its price, when that message's burst ends (the next message); the NO book's
        own state is compared from then on (its checks, meanwhile, must all pass)."""

    def ts(self) -> str:
        self.now += 1
        return str(self.now)

    def send(self, message: object) -> None:
        for client in self.clients.values():
            client.apply(message)
        self.since_trade += 1

    def entry(self, asset: str, buy: bool, key: int, size: Decimal, ts: str) -> PriceChangeEntry:
        bid, ask = self.market.top(asset)
        return PriceChangeEntry(
            asset_id=asset,
            price=price_text(key),
            size=size_text(size),
            side="BUY" if buy else "SELL",
            hash=self.market.hash(asset, ts),
            best_bid=bid,
            best_ask=ask,
        )

    def initial(self) -> None:
        ts = self.ts()
        m = self.market
        for asset in (YES, NO):
            bids, asks = m.wire_levels(asset)
            self.clients[asset].apply(
                Book(
                    market=m.condition_id,
                    asset_id=asset,
                    timestamp=ts,
                    hash=m.plain_hash(asset, ts),
                    bids=bids,
                    asks=asks,
                    tick_size=m.tick,
                    last_trade_price=m.book_trade_price,
                )
            )
        self.since_trade = 2
        self.agree(ts)

    def set_level(self, buy: bool, key: int, size: Decimal) -> None:
        m = self.market
        if size and (key >= m.best_ask_key if buy else key <= m.best_bid_key):
            return  # never crossed outside a trade burst
        m.set(buy, key, size)
        ts = self.ts()
        entries = [self.entry(YES, buy, key, size, ts), self.entry(NO, not buy, SCALE - key, size, ts)]
        self.send(PriceChange(market=m.condition_id, timestamp=ts, price_changes=entries))
        self.agree(ts)

    def trade(self, buy: bool, key: int) -> None:
        """A print at a grid price: the post-trade books hashed with it, then the trimmed print."""
        m = self.market
        m.last_trade_price, m.last_trade_side = price_text(key), "BUY" if buy else "SELL"
        ts = self.ts()
        for asset in (YES, NO):
            bids, asks = m.wire_levels(asset)
            snapshot = Book(
                market=m.condition_id,
                asset_id=asset,
                timestamp=ts,
                hash=m.hash(asset, ts),
                bids=bids,
                asks=asks,
            )
            self.clients[asset].apply(snapshot)
        self.send(
            LastTradePrice(
                asset_id=YES,
                market=m.condition_id,
                price=m.last_trade_price,
                size="10",
                side=m.last_trade_side,
                timestamp=ts,
            )
        )
        self.since_trade = 0
        self.agree(ts)

    def finer_tick(self) -> None:
        m = self.market
        if m.tick == "0.001":
            return
        m.tick = "0.001"
        ts = self.ts()
        for asset in (YES, NO):
            self.clients[asset].apply(
                TickSizeChange(
                    asset_id=asset,
                    market=m.condition_id,
                    old_tick_size="0.01",
                    new_tick_size="0.001",
                    timestamp=ts,
                )
            )
        self.agree(ts)

    def agree(self, ts: str) -> None:
        for asset, client in self.clients.items():
            sim = self.market.hash(asset, ts)
            assert sim == self.market.plain_hash(asset, ts)
            assert client.wire_levels() == self.market.wire_levels(asset)
            if asset == YES or self.since_trade >= 2:
                assert client.compute_hash(ts) == sim, f"{asset[:1]}: client and sim hash differently at {ts}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tick=st.sampled_from(["0.01", "0.001"]),
    bids=st.lists(st.tuples(st.integers(1, 499), sizes), max_size=12),
    asks=st.lists(st.tuples(st.integers(501, 999), sizes), max_size=12),
    traded=st.one_of(st.none(), st.integers(1, 99)),
    history=operations,
)
def test_the_sim_and_polyfeed_book_hash_every_state_alike(
    tick: str,
    bids: list[tuple[int, Decimal]],
    asks: list[tuple[int, Decimal]],
    traded: int | None,
    history: list[tuple[str, bool, int, Decimal]],
) -> None:
    """Random books (empty sides included) and histories of changes, trades at 2-decimal prices and
    tick changes: after each message both tokens' hashes agree, and the client's checks all pass."""
    market = SimMarket(0, "0x" + "ab" * 32, YES, NO, "q", "s", 5000, tick=tick)
    for index, size in bids:
        market.set(True, on_grid(market, index), size)
    for index, size in asks:
        market.set(False, on_grid(market, index, up=True), size)
    if traded is not None:
        market.last_trade_price = price_text(traded * 100)  # "0.49", "0.5": never 3 decimals as printed
    witness = Witness(market)
    witness.initial()
    for kind, buy, index, size in history:
        if kind == "set":
            witness.set_level(buy, on_grid(market, index, up=not buy), size)
        elif kind == "trade":
            witness.trade(buy, on_grid(market, index))
        else:
            witness.finer_tick()
    witness.agree(witness.ts())
    for client in witness.clients.values():
        client.settle(final=True)
        assert client.checks.total_failed == 0, client.last_failure
        assert client.checks.passed[CheckKind.HASH] > 0
