"""Messages and books the tests of polyfeed.book build: one asset, one market, wire-order levels."""

from __future__ import annotations

from polyfeed.book import OrderBook
from polyfeed.wire import Book, PriceChange, PriceChangeEntry, PriceLevel, TickSizeChange

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


def tick_change(old: str, new: str, ts: str) -> TickSizeChange:
    return TickSizeChange(asset_id=ASSET, market=MARKET, old_tick_size=old, new_tick_size=new, timestamp=ts)
