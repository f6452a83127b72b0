"""One asset's order book: exact, fast, and aware of when it may be wrong.

Layout. Each side keeps two lists in *wire order* (the order the venue hashes): integer ladder keys
ascending, and the levels as alternating shared price heads and the venue's size texts
(:class:`polyfeed.book.ladder.Side`, about 80 bytes a level). Bids are keyed by price key, asks by its
negation, so both sides ascend and both keep their best level last: top of book is ``[-1]``, a change is
one ``bisect`` plus a list store or insert (memmove of at most a few hundred pointers), and the hash is
one join of the parts.

This module applies messages and reads the book. What the book checks about itself (the checks at a
burst's end, the hash with its alternate attempts, a snapshot against the book it replaces, the status
transitions) is its base class, :class:`polyfeed.book.checks.BookChecks`; the one check on the hot
path, new levels on the tick grid, stays inline in :meth:`OrderBook.apply_price_change`.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal

from polyfeed.book.checks import BookChecks
from polyfeed.book.hashing import HashVariant, json_string
from polyfeed.book.ladder import Level, Side
from polyfeed.book.prices import (
    LEVEL_HEADS,
    PRICE_SCALE,
    level_head,
    price_key,
    text_to_decimal,
    trade_price_text,
)
from polyfeed.book.status import BookStatus, CheckCounts, CheckFailure, CheckKind
from polyfeed.errors import AssetMismatchError, InvalidLevelError
from polyfeed.wire.market import (
    Book,
    LastTradePrice,
    PriceChange,
    PriceChangeEntry,
    PriceLevel,
    TickSizeChange,
)

__all__ = ["Level", "OrderBook"]

_SYNCING = BookStatus.SYNCING
_LIVE = BookStatus.LIVE


class OrderBook(BookChecks):
    """One asset's order book, kept from ``book`` snapshots and ``price_change`` entries.

    Args:
        asset_id: the token id this book follows; entries for other assets are ignored.
        market: the condition id, if known (learned from the first snapshot otherwise).
        tick_size: the tick text (``"0.01"``) if known; snapshots and ``tick_size_change`` update it.
        min_order_size: as REST ``/book`` or Gamma give it; the hash needs it (the WebSocket never sends it).
        neg_risk: whether the market is neg-risk; the hash needs it too.
        hash_variant: the venue's hash field set, or ``None`` to detect it from the first hash that
            verifies (useful for recordings of unknown date).
        verify_hash: run the hash check at the end of each burst (about 5 µs for 60 levels a side).
        hash_every_ms: check the hash of a live book at most this often in the venue's time, the newest
            claim each time (``0``: at every burst end). A claim not checked at its burst's end waits in
            :attr:`unverified_claim` for :meth:`verify_deferred`, which the stream calls within the
            interval (:mod:`polyfeed.session.settle`); snapshots, prints and tick changes check it first.

    Prices and sizes are exact: ``Decimal`` in the public API, the venue's text inside.
    """

    __slots__ = ()  # the state's slots are declared with it, in BookChecks

    def __init__(
        self,
        asset_id: str,
        *,
        market: str = "",
        tick_size: str | None = None,
        min_order_size: str = "5",
        neg_risk: bool = False,
        hash_variant: HashVariant | None = None,
        verify_hash: bool = True,
        hash_every_ms: int = 0,
    ) -> None:
        self.asset_id = asset_id
        self.hash_every_ms = hash_every_ms
        self._hash_checked_ms = 0  # the venue time of the last hash checked
        self._unverified: tuple[str, str] | None = None  # (timestamp, hash) of the newest unchecked claim
        self.market = market
        self.min_order_size = min_order_size
        self.neg_risk = neg_risk
        self.hash_variant = hash_variant
        self.verify_hash = verify_hash
        self.tick_size: str | None = None
        self._tick_units = 0
        self.tick_epoch = 0
        """Increments at every tick-size change."""
        if tick_size is not None:
            self._set_tick(tick_size)
        self.last_trade_price: str | None = None
        """The last trade price text the venue hashes: at least 3 decimals (``"0.490"``, spec 7.3)."""
        self._previous_trade_price: str | None = None
        self._candidate_price: str | None = None  # the price of a print naming another token of the market
        self.timestamp: str | None = None
        """Timestamp text (ms) of the last message applied."""
        self._bids = Side(1)
        self._asks = Side(-1)
        self._head = ""
        self._refresh_head()
        self._tail_key: tuple[object, ...] = ()
        self._tail = ""
        self._burst_ts: str | None = None
        self._burst_entry: PriceChangeEntry | None = None
        self._awaiting: tuple[str, str] | None = None  # (timestamp, expected hash) awaiting a trade print
        self._burst_old_tick: str | None = None  # the tick before a tick change inside the open burst
        self._last_tick_change: tuple[str, str, str] | None = None
        self._status = _SYNCING
        self.status_reason = "no snapshot yet"
        self.status_since_ms: int | None = None
        """Venue timestamp (ms) of the message that set the status, or the time given to mark_stale."""
        self.last_failure: CheckFailure | None = None
        self.checks = CheckCounts()
        self.skipped_before_snapshot = 0
        self.unconfirmed_since_ns: int | None = None
        """Set (receive clock, ns) while the book's connection has been silent past its usual deadline
        but is kept open because its markets looked quiet: every check so far passed, yet a zombie
        connection could hide behind the silence until the grown deadline. ``None`` otherwise."""
        """``price_change`` messages for this asset that arrived before any snapshot and were dropped."""

    # -- applying messages ---------------------------------------------------------------------------

    def apply(self, message: object) -> bool:
        """Apply one decoded market message; returns whether it changed anything in this book.

        ``book`` replaces the book (after comparing it with the local one), ``price_change`` applies the
        entries for this asset, ``tick_size_change`` starts a new tick epoch, ``last_trade_price`` is
        remembered for the hash. Other messages, and other assets' entries, are ignored.

        Raises:
            AssetMismatchError: a ``book`` snapshot of another asset.
            InvalidLevelError: a price or size that is not valid; the book is then marked suspect.
        """
        if message.__class__ is PriceChange:
            return self.apply_price_change(message)
        cls = message.__class__
        if self._unverified is not None and self._burst_ts is None:
            self.verify_deferred()  # what comes next changes the inputs of the claim's hash
        if cls is Book:
            self._apply_book(message)  # type: ignore[arg-type]
            return True
        if cls is LastTradePrice:
            return self._apply_last_trade(message)  # type: ignore[arg-type]
        if cls is TickSizeChange:
            return self._apply_tick_change(message)  # type: ignore[arg-type]
        return False

    def replace(self, message: Book) -> None:
        """Replace the book with a snapshot of a later time than the book's, without comparing the two.

        For a relaying source's snapshot taken ahead of the messages it relays (two collectors of a
        fan-out, one lagging: :mod:`polyfeed.fanout.consumer`): the book is behind it, not wrong, and
        the messages between, older than it, are not applied after it. The snapshot's own hash is
        verified as :meth:`apply` verifies it.
        """
        if self._unverified is not None and self._burst_ts is None:
            self.verify_deferred()
        self._apply_book(message, compare=False)

    def apply_price_change(self, message: PriceChange) -> bool:
        """:meth:`apply` for a ``price_change``, without the dispatch (the stream's hot path)."""
        asset = self.asset_id
        ts = message.timestamp
        last: PriceChangeEntry | None = None
        bids = self._bids
        asks = self._asks
        try:
            for entry in message.price_changes:
                if entry.asset_id != asset:
                    continue
                if last is None:
                    if self._status is _SYNCING:
                        self.skipped_before_snapshot += 1
                        return False
                    burst_ts = self._burst_ts
                    if burst_ts != ts:
                        if burst_ts is not None:
                            self._settle_burst()
                        self._burst_old_tick = None
                    if self._awaiting is not None:
                        self._fail_awaiting(ts)
                last = entry
                price = entry.price
                size = entry.size
                head = LEVEL_HEADS.get(price)
                if head is None:
                    head = level_head(price)
                side_text = entry.side
                if side_text == "BUY":
                    side = bids
                    k = head[0]
                elif side_text == "SELL":
                    side = asks
                    k = head[1]
                else:
                    raise InvalidLevelError(f"side {side_text!r} is neither BUY nor SELL")
                keys = side.keys
                i = bisect_left(keys, k)
                found = i < len(keys) and keys[i] == k
                if size == "0":
                    zero = True
                elif size.isascii() and size.replace(".", "", 1).isdigit():
                    zero = size[0] in "0." and not size.strip("0.")
                else:
                    raise InvalidLevelError(f"size {size!r} is not a non-negative decimal")
                j = 2 * i
                if zero:
                    if found:
                        del keys[i], side.parts[j : j + 2]
                    continue
                if found:
                    parts = side.parts
                    parts[j] = head[2]  # the venue hashes the text it sent last ("0.30" after "0.3")
                    parts[j + 1] = size
                else:
                    key = head[0]
                    tick = self._tick_units
                    if tick and (key % tick or key < tick or key > PRICE_SCALE - tick):
                        self._fail(CheckKind.TICK, f"price {price} is off the {self.tick_size} tick grid", ts)
                    keys.insert(i, k)
                    side.parts[j:j] = (head[2], size)
        except InvalidLevelError as exc:
            self._fail(CheckKind.MALFORMED, str(exc), ts)
            raise
        if last is None:
            return False
        self._burst_ts = ts
        self._burst_entry = last
        self.timestamp = ts
        return True

    def _apply_book(self, message: Book, *, compare: bool = True) -> None:
        if message.asset_id != self.asset_id:
            raise AssetMismatchError(
                f"snapshot of asset {message.asset_id} given to the book of {self.asset_id}"
            )
        ts = message.timestamp
        try:
            bids = Side.from_levels(1, message.bids)
            asks = Side.from_levels(-1, message.asks)
            if message.tick_size is not None:
                price_key(message.tick_size)  # validated before anything changes
            trade_price = (
                trade_price_text(message.last_trade_price) if message.last_trade_price is not None else None
            )
        except InvalidLevelError as exc:
            self._fail(CheckKind.MALFORMED, f"snapshot: {exc}", ts)
            raise
        if self._burst_ts is not None:
            self._settle_burst()
        reason = self._check_snapshot(bids, asks, message.hash, ts, compare=compare)
        self._bids = bids
        self._asks = asks
        if message.market and message.market != self.market:
            self.market = message.market
            self._refresh_head()
        if message.tick_size is not None and message.tick_size != self.tick_size:
            self._set_tick(message.tick_size)
        if trade_price is not None:
            self._set_trade_price(trade_price)
        if message.min_order_size is not None:
            self.min_order_size = message.min_order_size
        if message.neg_risk is not None:
            self.neg_risk = message.neg_risk
        self.timestamp = ts
        self._set_status(_LIVE, reason, ts)
        if message.hash and self.verify_hash:
            self._verify_hash(ts, message.hash)
            if self._awaiting is not None:  # not verified (yet): its levels get the checks meanwhile
                self._check_snapshot_levels(ts, hashed=True)
        elif not message.hash:
            self._check_snapshot_levels(ts, hashed=False)

    def _apply_last_trade(self, message: LastTradePrice) -> bool:
        own = message.asset_id == self.asset_id
        if not own and not (self.market and message.market == self.market):
            return False
        try:
            # The print says "0.49"; the venue hashes "0.490" from then on (spec 7.3).
            price = trade_price_text(message.price)
        except InvalidLevelError as exc:
            if not own:
                return False  # the book it names reports it; this one keeps what it has
            self._fail(CheckKind.MALFORMED, f"trade print: {exc}", message.timestamp)
            raise
        changed = False
        if own:
            changed = price != self.last_trade_price
            self._set_trade_price(price)
            self._candidate_price = None
        else:
            # Both tokens of a market hash the traded token's text (spec 7.3: 36 of 36 real complement
            # entries), but a print naming another token is taken only once a hash confirms it: the book
            # cannot tell its complement from a stray token of the market, and a stray print must not
            # turn a sound book suspect (issue 12, item 10).
            self._candidate_price = price
        self._print_arrived(price, own=own)
        return changed

    @property
    def trade_price_alternates(self) -> tuple[str | None, str | None]:
        """The trade prices a hash is also tried with besides :attr:`last_trade_price`: the previous one
        (a print that overtook the changes hashed before it) and a print naming another token of the
        market, not confirmed yet. A snapshot carries only the last: a copy of this book made from one
        (a fan-out consumer's) takes these with :meth:`restore_trade_price_alternates`."""
        return self._previous_trade_price, self._candidate_price

    def restore_trade_price_alternates(self, previous: str | None, candidate: str | None) -> None:
        """Set what :attr:`trade_price_alternates` gave of the book this one was copied from."""
        self._previous_trade_price = previous
        self._candidate_price = candidate

    def _apply_tick_change(self, message: TickSizeChange) -> bool:
        if message.asset_id != self.asset_id:
            return False
        change = (message.old_tick_size, message.new_tick_size, message.timestamp)
        if change == self._last_tick_change:
            return False  # the same frame again (duplicated): nothing to do, nothing wrong
        self._last_tick_change = change
        self._check_tick_change(message)
        self._set_tick(message.new_tick_size)
        # Levels stay: the new grid contains the old one going to a finer tick, and the hash and the next
        # snapshot check the book either way (Nautilus drops the book here, spec 4.3; we keep it exact).
        return True

    def set_metadata(
        self, *, min_order_size: str | None = None, tick_size: str | None = None, neg_risk: bool | None = None
    ) -> None:
        """The hash's fields the WebSocket does not always send, from REST ``/book`` or ``/books`` (live,
        or a recording's metadata marker); ``None`` leaves a field as it is.

        ``min_order_size`` and ``neg_risk`` never come over the WebSocket; ``tick_size`` is in 2026's
        initial snapshots but was missing from December 2025's (spec 7.3), and it enters the hash.

        Raises:
            InvalidLevelError: a tick size that is not a positive price text.
        """
        if min_order_size is not None:
            self.min_order_size = min_order_size
        if neg_risk is not None:
            self.neg_risk = neg_risk
        if tick_size is not None and tick_size != self.tick_size:
            self._set_tick(tick_size)

    def _set_tick(self, tick_size: str) -> None:
        key = price_key(tick_size)
        if key <= 0:
            raise InvalidLevelError(f"tick size {tick_size!r} is not positive")
        self.tick_size = tick_size
        self._tick_units = key
        self.tick_epoch += 1

    def _refresh_head(self) -> None:
        self._head = '{"market":' + json_string(self.market) + ',"asset_id":' + json_string(self.asset_id)

    # -- reading -------------------------------------------------------------------------------------

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or ``None`` when there are no bids."""
        side = self._bids
        return Level(text_to_decimal(side.best_price()), Decimal(side.parts[-1])) if side.keys else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or ``None`` when there are no asks."""
        side = self._asks
        return Level(text_to_decimal(side.best_price()), Decimal(side.parts[-1])) if side.keys else None

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bids, best (highest) first; at most ``depth`` of them."""
        return self._bids.levels(depth)

    def asks(self, depth: int | None = None) -> list[Level]:
        """Asks, best (lowest) first; at most ``depth`` of them."""
        return self._asks.levels(depth)

    @property
    def mid(self) -> Decimal | None:
        """Midpoint of best bid and best ask, ``None`` if a side is empty."""
        if not (self._bids.keys and self._asks.keys):
            return None
        return (text_to_decimal(self._bids.best_price()) + text_to_decimal(self._asks.best_price())) / 2

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, ``None`` if a side is empty."""
        if not (self._bids.keys and self._asks.keys):
            return None
        return text_to_decimal(self._asks.best_price()) - text_to_decimal(self._bids.best_price())

    @property
    def depth(self) -> tuple[int, int]:
        """Number of bid and ask levels."""
        return len(self._bids.keys), len(self._asks.keys)

    def wire_levels(self) -> tuple[list[PriceLevel], list[PriceLevel]]:
        """Bids and asks as the venue would send them: wire text, bids ascending, asks descending."""
        return self._bids.wire_levels(), self._asks.wire_levels()

    def to_snapshot(self, *, timestamp: str | None = None) -> Book:
        """This book as a ``book`` message (REST ``/book`` shape, with metadata), hash included."""
        ts = timestamp if timestamp is not None else (self.timestamp or "")
        bids, asks = self.wire_levels()
        return Book(
            market=self.market,
            asset_id=self.asset_id,
            timestamp=ts,
            hash=self.compute_hash(ts),
            bids=bids,
            asks=asks,
            tick_size=self.tick_size,
            last_trade_price=self.last_trade_price,
            min_order_size=self.min_order_size,
            neg_risk=self.neg_risk,
        )

    def __repr__(self) -> str:
        bid = self._bids.best_price() if self._bids.keys else "-"
        ask = self._asks.best_price() if self._asks.keys else "-"
        top = f"{bid} / {ask}"
        n_bids, n_asks = self.depth
        return f"<OrderBook {self.asset_id[:8]}... {self._status.value} {top} ({n_bids}x{n_asks} levels)>"
