"""Like with like, for bench_stream.py and bench_replay.py: the stream a subscribed connection gets, and
the minimal client that does polyfeed's book work on it.

The stream is what the venue sends one connection subscribed to every token of a local exchange whose
markets never resolve (``median_lifetime_s=None``): the initial books, then each market-channel
message that names a subscribed token (the venue's routing: a message goes to a connection subscribed
to any of its assets, spec 11.10). :func:`concerning` checks it by decoding every frame, so every frame
concerns the subscribed books, and the benchmarks print the share.

:class:`MinimalBooks` is the minimal client's book work, the same as polyfeed's ``MarketSession`` does
(``_price_change`` and ``_route`` in ``polyfeed.session.market``): decode with
``polyfeed.wire.decode_market``; each ``price_change`` goes to the book of each asset its entries name,
once per message (a dict lookup by ``asset_id``; a message of more than two entries is grouped by asset,
each book given its own); a ``book`` replaces its asset's book; a ``last_trade_price`` goes to the books
of its market (learned from their snapshots); a ``tick_size_change`` to its asset's book. The books run
the same checks on both sides: top of book and crossed at every burst end, and the hash with
``verify_hash``, at every burst end or on polyfeed's schedule (``hash_every_ms``), as ``OrderBook`` does
when a burst closes. What the minimal client leaves out is the session: events, sequence numbers, statuses,
deadlines, resyncs. :func:`book_work` counts the apply calls of both, on the same frames, untimed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

import msgspec

from polyfeed.book import OrderBook
from polyfeed.session import MarketSession
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceChangeEntry, TickSizeChange, decode_market


def subscribed_stream(n_frames: int, *, markets: int = 4, seed: int = 1) -> tuple[list[bytes], list[str]]:
    """``n_frames`` frames one connection subscribed to every token of ``markets`` markets receives, and
    those tokens: each token's initial book (a one-element array), then the flow. One message a frame."""
    exchange = Exchange(markets=markets, seed=seed, median_lifetime_s=None)
    assets = exchange.asset_ids()
    subscribed = set(assets)
    frames = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    while len(frames) < n_frames:
        frames.extend(
            encode_outbound(out).encode()
            for out in exchange.step()
            if out.channel == "market" and subscribed.intersection(out.assets)
        )
    return frames[:n_frames], assets


def named_assets(message: object) -> set[str]:
    """The token ids a decoded market message names (none for broadcasts and notices)."""
    if isinstance(message, PriceChange):
        return {e.asset_id for e in message.price_changes}
    asset = getattr(message, "asset_id", None)
    return {asset} if isinstance(asset, str) else set()


def concerning(frames: Sequence[bytes | str], assets: Collection[str]) -> tuple[int, int]:
    """(frames whose every message concerns the books of ``assets``, messages in all), by decoding each
    frame. A message concerns them if it names one of them, or if it is a trade print of their market
    (both tokens' books take it: their hash carries the trade price); their market is learnt from their
    snapshots, as a client learns it."""
    subscribed = set(assets)
    markets: set[str] = set()
    frames_in, messages = 0, 0
    for frame in frames:
        decoded = decode_market(frame)
        messages += len(decoded)
        ours = True
        for message in decoded:
            if isinstance(message, Book) and message.asset_id in subscribed:
                markets.add(message.market)
            if not (
                named_assets(message) & subscribed
                or (isinstance(message, LastTradePrice) and message.market in markets)
            ):
                ours = False
        frames_in += bool(decoded) and ours
    return frames_in, messages


class MinimalBooks:
    """The books of ``assets`` and polyfeed's routing of messages to them, without the session.

    ``hash_every_ms`` as ``OrderBook`` takes it (polyfeed's session sets it from
    ``SessionConfig.hash_interval_s``): a live book's hash at most this often in the venue's time, a claim
    left unchecked being checked at a later burst's end or before a snapshot, print or tick change (the
    session's sweep also checks it once due; the checks counted show how close the two come)."""

    def __init__(
        self,
        assets: list[str],
        *,
        verify_hash: bool,
        hash_every_ms: int = 0,
        book: type[OrderBook] = OrderBook,
    ) -> None:
        self.books = {a: book(a, verify_hash=verify_hash, hash_every_ms=hash_every_ms) for a in assets}
        self.by_market: dict[str, list[str]] = {}  # condition id -> tokens with a book, from snapshots

    def frame(self, data: bytes | str) -> int:
        """Decode one frame and apply it; returns how many messages it held."""
        books = self.books
        messages = decode_market(data)
        for message in messages:
            cls = message.__class__
            if cls is PriceChange:
                entries = message.price_changes  # type: ignore[union-attr]
                if len(entries) <= 2:  # usually: this token and its complement
                    done = None
                    for entry in entries:
                        asset = entry.asset_id
                        if asset != done:
                            book = books.get(asset)
                            if book is not None:
                                done = asset
                                book.apply_price_change(message)  # type: ignore[arg-type]
                else:  # each book takes its own entries, once, as polyfeed's session gives them
                    groups: dict[str, list[PriceChangeEntry]] = {}
                    for entry in entries:
                        groups.setdefault(entry.asset_id, []).append(entry)
                    for asset, own in groups.items():
                        book = books.get(asset)
                        if book is not None:
                            book.apply_price_change(msgspec.structs.replace(message, price_changes=own))
            elif cls is Book:
                asset = message.asset_id  # type: ignore[union-attr]
                book = books.get(asset)
                if book is not None:
                    book.apply(message)
                    tokens = self.by_market.setdefault(message.market, [])  # type: ignore[union-attr]
                    if asset not in tokens:
                        tokens.append(asset)
            elif cls is LastTradePrice:
                targets = self.by_market.get(message.market, ())  # type: ignore[union-attr]
                own_asset = message.asset_id  # type: ignore[union-attr]
                if own_asset not in targets and own_asset in books:
                    books[own_asset].apply(message)
                for asset in targets:
                    books[asset].apply(message)
            elif cls is TickSizeChange:
                book = books.get(message.asset_id)  # type: ignore[union-attr]
                if book is not None:
                    book.apply(message)
        return len(messages)

    def checks(self) -> tuple[int, int]:
        return checks(self.books)


def checks(books: dict[str, OrderBook]) -> tuple[int, int]:
    """(checks passed, checks failed) over the books."""
    passed = sum(b.checks.total_passed for b in books.values())
    return passed, sum(b.checks.total_failed for b in books.values())


CALLS: Counter[str] = Counter()
"""Apply calls of :class:`CountingBook` books, by message type."""


class CountingBook(OrderBook):
    """An order book that counts its apply calls in :data:`CALLS` (for the untimed pass only)."""

    def apply(self, message: object) -> bool:
        if message.__class__ is not PriceChange:  # apply() hands a price_change to apply_price_change
            CALLS[message.__class__.__name__] += 1
        return super().apply(message)

    def apply_price_change(self, message: PriceChange) -> bool:
        CALLS["PriceChange"] += 1
        return super().apply_price_change(message)


def book_work(frames: list[bytes], assets: list[str]) -> tuple[Counter[str], Counter[str]]:
    """The apply calls, by message type, of polyfeed's ``MarketSession`` and of :class:`MinimalBooks` on
    the same frames (untimed; no hash checks: they change no call)."""
    CALLS.clear()
    books: dict[str, OrderBook] = {a: CountingBook(a, verify_hash=False) for a in assets}
    session = MarketSession(1, assets, books)
    now_ns = 1_790_000_000_000_000_000
    session.connection_made(now_ns)
    session.data_to_send()
    for frame in frames:
        now_ns += 50_000
        session.receive_data(frame, now_ns)
        session.events_received()
        session.requests_received()
    polyfeed = Counter(CALLS)
    CALLS.clear()
    minimal = MinimalBooks(assets, verify_hash=False, book=CountingBook)
    for frame in frames:
        minimal.frame(frame)
    return polyfeed, Counter(CALLS)


_WIRE_NAMES = {
    "PriceChange": "price_change",
    "Book": "book",
    "LastTradePrice": "last_trade_price",
    "TickSizeChange": "tick_size_change",
}


def calls_text(calls: Counter[str]) -> str:
    """``189,162 apply calls: 167,506 price_change, ...``"""
    parts = [f"{calls[k]:,} {name}" for k, name in _WIRE_NAMES.items()]
    parts += [f"{n:,} {k}" for k, n in calls.items() if k not in _WIRE_NAMES]
    return f"{calls.total():,} apply calls: {', '.join(parts)}"
