"""A realistic, correct market stream for benchmarks: one binary market, two mirrored tokens.

Frames look like the venue's (77-digit token ids, ``0x`` + 64-hex market, key order and spacing as
observed, spec section 3) and are *correct*: each ``price_change`` entry carries the true top of book and
book hash after it, so the benchmarks measure the passing path of every check. The mix is 95%
``price_change`` (two mirrored entries each), 4% ``last_trade_price`` and 1% ``book``.
"""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec

from polyfeed.book import OrderBook
from polyfeed.sim.frames import book_frame
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceChangeEntry, PriceLevel

YES = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
NO = "54179564009642723353355316176091991063553046330768303687769988635499280029688"
MARKET = "0x285746de0e4f751fd4dc8f9dc2cecd0101ba9ad0096a43145ed9643b09514f01"
_encode = msgspec.json.encode


def price_text(key: int) -> str:
    """Ladder key (units of 0.001) to the venue's trimmed text."""
    return str((Decimal(key) / 1000).normalize()) if key % 1000 else str(key // 1000)


def ladder(levels_per_side: int, rng: random.Random) -> tuple[list[PriceLevel], list[PriceLevel]]:
    """Bids ascending below 0.5, asks descending above it, on a 0.001 tick."""
    bids = [
        PriceLevel(price_text(k), str(rng.randrange(5, 50_000))) for k in range(499 - levels_per_side, 499)
    ]
    asks = [
        PriceLevel(price_text(k), str(rng.randrange(5, 50_000)))
        for k in range(501 + levels_per_side - 1, 500, -1)
    ]
    return bids, asks


def mirror(levels: list[PriceLevel]) -> list[PriceLevel]:
    return [PriceLevel(price_text(1000 - int(Decimal(lv.price) * 1000)), lv.size) for lv in reversed(levels)]


def market_stream(
    n_messages: int, *, levels_per_side: int = 60, seed: int = 7, mixed: bool = True
) -> list[bytes]:
    """``n_messages`` frames; the first two are the tokens' initial books (as one-element arrays).

    With ``mixed`` false, every later frame is a ``price_change``.
    """
    rng = random.Random(seed)
    bids, asks = ladder(levels_per_side, rng)
    ts = 1_790_658_661_234
    yes_book = Book(
        market=MARKET,
        asset_id=YES,
        timestamp=str(ts),
        bids=bids,
        asks=asks,
        tick_size="0.001",
        last_trade_price="0.500",
    )
    no_book = Book(
        market=MARKET,
        asset_id=NO,
        timestamp=str(ts),
        bids=mirror(asks),
        asks=mirror(bids),
        tick_size="0.001",
        last_trade_price="0.500",
    )
    books = {YES: OrderBook(YES, verify_hash=False), NO: OrderBook(NO, verify_hash=False)}
    frames = []
    for book_msg in (yes_book, no_book):
        books[book_msg.asset_id].apply(book_msg)
        snap = books[book_msg.asset_id].to_snapshot(timestamp=str(ts))
        frames.append(_encode([book_frame(snap, initial=True)]))
    while len(frames) < n_messages:
        ts += rng.randrange(1, 400)
        roll = rng.random() if mixed else 1.0
        if roll < 0.01:
            asset = rng.choice((YES, NO))
            frames.append(_encode(book_frame(books[asset].to_snapshot(timestamp=str(ts)), initial=False)))
        elif roll < 0.05:
            price = price_text(rng.randrange(480, 520))
            # Only the YES book hears the print, as a consumer's books would from this frame alone.
            books[YES].apply(
                LastTradePrice(
                    asset_id=YES, market=MARKET, price=price, size="1", side="BUY", timestamp=str(ts)
                )
            )
            frames.append(
                _encode(
                    {
                        "asset_id": YES,
                        "event_type": "last_trade_price",
                        "fee_rate_bps": "0",
                        "market": MARKET,
                        "price": price,
                        "side": rng.choice(("BUY", "SELL")),
                        "size": f"{rng.randrange(1, 5000)}.{rng.randrange(100):02d}",
                        "timestamp": str(ts),
                        "transaction_hash": "0x" + "ab" * 32,
                    }
                )
            )
        else:
            frames.append(_encode(_price_change(books, rng, ts, levels_per_side)))
    return frames


def _price_change(books: dict[str, OrderBook], rng: random.Random, ts: int, levels: int) -> dict[str, object]:
    buy = rng.random() < 0.5
    key = rng.randrange(499 - levels, 499) if buy else rng.randrange(501, 501 + levels)
    size = "0" if rng.random() < 0.25 else str(rng.randrange(5, 50_000))
    legs = (
        (YES, price_text(key), "BUY" if buy else "SELL"),
        (NO, price_text(1000 - key), "SELL" if buy else "BUY"),
    )
    entries = []
    for asset, price, side in legs:
        book = books[asset]
        book.apply(
            PriceChange(
                market=MARKET,
                timestamp=str(ts),
                price_changes=[PriceChangeEntry(asset_id=asset, price=price, size=size, side=side)],
            )
        )
        best_bid, best_ask = book.best_bid, book.best_ask
        entries.append(
            {
                "asset_id": asset,
                "price": price,
                "size": size,
                "side": side,
                "hash": book.compute_hash(str(ts)),
                "best_bid": str(best_bid.price) if best_bid else "0",
                "best_ask": str(best_ask.price) if best_ask else "1",
            }
        )
    return {"market": MARKET, "price_changes": entries, "timestamp": str(ts), "event_type": "price_change"}
