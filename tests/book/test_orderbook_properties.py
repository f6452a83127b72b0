"""Property tests: the book against a plain reference model over random snapshots and changes."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from polyfeed.book import CheckKind, HashVariant, Level, OrderBook
from polyfeed.wire import Book, PriceChange, PriceChangeEntry, PriceLevel

ASSET = "42"
MARKET = "0xabc"

price_texts = st.integers(min_value=1, max_value=999).map(lambda k: str(Decimal(k) / 1000))
size_texts = st.one_of(
    st.integers(min_value=1, max_value=10**7).map(str),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2).map(str),
)
levels = st.dictionaries(price_texts, size_texts, max_size=30)
changes = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), price_texts, st.one_of(st.just("0"), size_texts)),
    max_size=60,
)


class ReferenceBook:
    """The obvious model: a dict per side, sorted on every read."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def snapshot(self, bids: dict[str, str], asks: dict[str, str]) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)

    def change(self, side: str, price: str, size: str) -> None:
        levels = self.bids if side == "BUY" else self.asks
        existing = next((p for p in levels if Decimal(p) == Decimal(price)), None)
        if existing is not None:
            del levels[existing]
        if Decimal(size) != 0:
            levels[price] = size

    def sorted_side(self, side: str) -> list[tuple[str, str]]:
        """Wire order: bids ascending, asks descending."""
        levels = self.bids if side == "BUY" else self.asks
        return sorted(levels.items(), key=lambda kv: Decimal(kv[0]), reverse=side == "SELL")

    def hash(self, timestamp: str, last_trade_price: str) -> str:
        obj = {
            "market": MARKET,
            "asset_id": ASSET,
            "timestamp": timestamp,
            "hash": "",
            "bids": [{"price": p, "size": s} for p, s in self.sorted_side("BUY")],
            "asks": [{"price": p, "size": s} for p, s in self.sorted_side("SELL")],
            "min_order_size": "5",
            "tick_size": "0.001",
            "neg_risk": False,
            "last_trade_price": last_trade_price,
        }
        return hashlib.sha1(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()


def to_book(bids: dict[str, str], asks: dict[str, str], ts: str) -> Book:
    return Book(
        market=MARKET,
        asset_id=ASSET,
        timestamp=ts,
        bids=[PriceLevel(p, s) for p, s in sorted(bids.items(), key=lambda kv: Decimal(kv[0]))],
        asks=[PriceLevel(p, s) for p, s in sorted(asks.items(), key=lambda kv: -Decimal(kv[0]))],
        tick_size="0.001",
        last_trade_price="0.5",  # trimmed here on purpose: the venue hashes "0.500" (spec 7.3)
    )


@settings(max_examples=300, deadline=None)
@given(bids=levels, asks=levels, ops=changes)
def test_book_matches_reference_model(
    bids: dict[str, str], asks: dict[str, str], ops: list[tuple[str, str, str]]
) -> None:
    book = OrderBook(ASSET, hash_variant=HashVariant.CURRENT, verify_hash=False)
    reference = ReferenceBook()
    book.apply(to_book(bids, asks, "1"))
    reference.snapshot(bids, asks)
    for n, (side, price, size) in enumerate(ops):
        book.apply(
            PriceChange(
                market=MARKET,
                timestamp=str(2 + n),
                price_changes=[PriceChangeEntry(asset_id=ASSET, price=price, size=size, side=side)],
            )
        )
        reference.change(side, price, size)
    for side, read in (("BUY", book.bids), ("SELL", book.asks)):
        expected = [Level(Decimal(p), Decimal(s)) for p, s in reference.sorted_side(side)]
        assert read() == list(reversed(expected)), "best first"
        assert read(depth=3) == list(reversed(expected))[:3]
    assert book.compute_hash("99") == reference.hash("99", "0.500")


@settings(max_examples=200, deadline=None)
@given(bids=levels, asks=levels, ops=changes)
def test_hashes_from_the_reference_verify_and_keep_the_book_live(
    bids: dict[str, str], asks: dict[str, str], ops: list[tuple[str, str, str]]
) -> None:
    """A stream whose hashes and top of book come from the reference model never fails a check that
    concerns the venue's own data (hash, top of book); crossings are the model's and are allowed."""
    book = OrderBook(ASSET, hash_variant=HashVariant.CURRENT)
    reference = ReferenceBook()
    first = to_book(bids, asks, "1")
    reference.snapshot(bids, asks)
    fields = {f: getattr(first, f) for f in first.__struct_fields__}
    book.apply(Book(**{**fields, "hash": reference.hash("1", "0.500")}))
    for n, (side, price, size) in enumerate(ops):
        reference.change(side, price, size)
        top_bid = reference.sorted_side("BUY")[-1][0] if reference.bids else "0"
        top_ask = reference.sorted_side("SELL")[-1][0] if reference.asks else "1"
        ts = str(2 + n)
        entry = PriceChangeEntry(
            asset_id=ASSET,
            price=price,
            size=size,
            side=side,
            hash=reference.hash(ts, "0.500"),
            best_bid=top_bid,
            best_ask=top_ask,
        )
        book.apply(PriceChange(market=MARKET, timestamp=ts, price_changes=[entry]))
    book.settle(final=True)
    assert book.checks.failed[CheckKind.HASH] == 0
    assert book.checks.failed[CheckKind.TOP_OF_BOOK] == 0
    assert book.checks.passed[CheckKind.HASH] == len(ops) + 1
