"""One asset's order book: exact, fast, and aware of when it may be wrong.

Layout. Each side keeps four parallel lists in *wire order* (the order the venue hashes): integer
ladder keys ascending, the price and size texts, and each level's JSON fragment for the hash. Bids are
keyed by price key, asks by its negation, so both sides ascend and both keep their best level last:
top of book is ``[-1]``, a change is one ``bisect`` plus a list store or insert (memmove of at most a
few hundred pointers), and the hash is a join of ready fragments.

Checks. On the venue a trade sends several ``price_change`` messages with one timestamp, all carrying
the *final* hash and top of book (spec 7.4), and the book is transiently crossed inside such a burst.
So the per-entry checks (top of book, hash, crossed sides) run when a burst ends: when a message with
another timestamp arrives, on a snapshot, or on :meth:`OrderBook.settle`. A hash that fails there may
still be right once the trade's print arrives, because the venue hashes the new ``last_trade_price``
before it sends the ``last_trade_price`` event (spec 7.3, [I-V2-117]); such a mismatch waits for the
print and fails only if the book changes first or :meth:`OrderBook.settle` is called with ``final``.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal
from typing import Any

from polyfeed.book.hashing import NEWEST_FIRST, HashVariant, hash_with_head, json_string, metadata_tail
from polyfeed.book.ladder import Level, Side
from polyfeed.book.prices import (
    PRICE_KEYS,
    PRICE_SCALE,
    price_key,
    size_is_zero,
    text_to_decimal,
    trade_price_text,
)
from polyfeed.book.status import CHECK_INDEX, BookStatus, CheckCounts, CheckFailure, CheckKind
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
_SUSPECT = BookStatus.SUSPECT
_STALE = BookStatus.STALE
_CLOSED = BookStatus.CLOSED
_CROSSED = CHECK_INDEX[CheckKind.CROSSED]
_TOP_OF_BOOK = CHECK_INDEX[CheckKind.TOP_OF_BOOK]


class OrderBook:
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

    Prices and sizes are exact: ``Decimal`` in the public API, the venue's text inside.
    """

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
    ) -> None:
        self.asset_id = asset_id
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

    # -- status --------------------------------------------------------------------------------------

    @property
    def status(self) -> BookStatus:
        """SYNCING, LIVE, SUSPECT or STALE; see :attr:`status_reason` and :attr:`status_since_ms`."""
        return self._status

    def _set_status(self, status: BookStatus, reason: str, timestamp: str | None) -> None:
        self._status = status
        self.status_reason = reason
        self.status_since_ms = _ms(timestamp)

    def mark_stale(self, reason: str, at_ms: int) -> None:
        """Declare the data stale (the stream lost its connection or went silent); a snapshot or a
        verified hash makes the book live again."""
        # An open burst and a hash awaiting its print cannot be judged any more: the rest of the burst
        # or the print may be lost in the gap, so closing them now could fail a check for no fault of
        # the book (a cut burst is transiently crossed, its claims are the final ones). Left open, the
        # next snapshot would close them, a hash from before the gap would turn the stale book live,
        # and the snapshot would then count the market's moves during the gap as a failed check
        # (issue 12, item 8). The book is stale until a snapshot or a new verified hash either way.
        self._burst_ts = None
        self._burst_entry = None
        self._burst_old_tick = None
        self._awaiting = None
        if self._status is not _SYNCING and self._status is not _CLOSED:
            self._status = _STALE
            self.status_reason = reason
            self.status_since_ms = at_ms

    def mark_closed(self, reason: str, at_ms: int) -> None:
        """Declare that the venue has no book for this token (its market resolved, or it never had one):
        a final status, with the book's last levels kept for reading; a snapshot makes it live again.
        What was open (a burst, a hash awaiting its print) is dropped: nothing will come to judge it."""
        self._burst_ts = None
        self._burst_entry = None
        self._burst_old_tick = None
        self._awaiting = None
        self._status = _CLOSED
        self.status_reason = reason
        self.status_since_ms = at_ms

    def _fail(self, kind: CheckKind, detail: str, timestamp: str | None) -> None:
        self.checks.failed_by_index[CHECK_INDEX[kind]] += 1
        self.last_failure = CheckFailure(kind, detail, _ms(timestamp) or 0)
        if self._status is _LIVE or self._status is _SUSPECT:
            self._set_status(_SUSPECT, f"{kind.value} check failed: {detail}", timestamp)

    def _pass(self, kind: CheckKind) -> None:
        self.checks.passed_by_index[CHECK_INDEX[kind]] += 1

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
        if cls is Book:
            self._apply_book(message)  # type: ignore[arg-type]
            return True
        if cls is LastTradePrice:
            return self._apply_last_trade(message)  # type: ignore[arg-type]
        if cls is TickSizeChange:
            return self._apply_tick_change(message)  # type: ignore[arg-type]
        return False

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
                key = PRICE_KEYS.get(price)
                if key is None:
                    key = price_key(price)
                side_text = entry.side
                if side_text == "BUY":
                    side = bids
                    k = key
                elif side_text == "SELL":
                    side = asks
                    k = -key
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
                if zero:
                    if found:
                        del keys[i], side.prices[i], side.sizes[i], side.frags[i]
                    continue
                frag = f'{{"price":"{price}","size":"{size}"}}'
                if found:
                    side.sizes[i] = size
                    side.frags[i] = frag
                    side.prices[i] = price
                else:
                    tick = self._tick_units
                    if tick and (key % tick or key < tick or key > PRICE_SCALE - tick):
                        self._fail(CheckKind.TICK, f"price {price} is off the {self.tick_size} tick grid", ts)
                    keys.insert(i, k)
                    side.prices.insert(i, price)
                    side.sizes.insert(i, size)
                    side.frags.insert(i, frag)
        except InvalidLevelError as exc:
            self._fail(CheckKind.MALFORMED, str(exc), ts)
            raise
        if last is None:
            return False
        self._burst_ts = ts
        self._burst_entry = last
        self.timestamp = ts
        return True

    def _apply_book(self, message: Book) -> None:
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
        if self._awaiting is not None and message.hash != self._awaiting[1]:
            self._fail_awaiting(ts)
        self._awaiting = None  # a snapshot with the same hash is verified below with the same inputs
        reason = "snapshot"
        if self._status is _LIVE:
            if self._same_sides(bids, asks):
                self._pass(CheckKind.SNAPSHOT)
            else:
                detail = self._snapshot_diff(bids, asks)
                self._fail(CheckKind.SNAPSHOT, detail, ts)
                reason = f"snapshot replaced a book that differed ({detail})"
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

    def _check_snapshot_levels(self, ts: str, *, hashed: bool) -> None:
        """A snapshot that no hash vouches for, none sent (the venue always sends one, spec 4.1) or one
        still awaiting its print: its levels get the checks every change gets, on the tick grid inside
        ``(0, 1)`` and not empty (issue 12, item 9); a hashless one says it was not verified."""
        tick = self._tick_units or 1
        for side in (self._bids, self._asks):
            for key, price, size in zip(side.keys, side.prices, side.sizes, strict=True):
                k = abs(key)
                if k % tick or k < tick or k > PRICE_SCALE - tick:
                    grid = self.tick_size or "0.0001"
                    self._fail(CheckKind.TICK, f"snapshot price {price} is off the {grid} tick grid", ts)
                    return
                if size_is_zero(size):
                    self._fail(CheckKind.MALFORMED, f"snapshot level {price} has size {size}", ts)
                    return
        if self._status is _LIVE and not hashed:
            self.status_reason += " (carried no hash: levels checked, not verified)"

    def same_levels(self, snapshot: Book) -> bool:
        """Whether a snapshot holds exactly this book's levels (every price and size text, both sides).

        A comparison only: the book is not changed and no check is counted. The session uses it after
        it closed a silent connection, to tell a quiet market (the fresh snapshot is the book it had) from
        a zombie connection (the venue's book moved on while nothing reached us, spec 11.1). The venue's
        hash alone cannot say this: it covers the snapshot's timestamp, and metadata (``min_order_size``,
        ``neg_risk``) that a book may not have been given.

        Raises:
            InvalidLevelError: a price or size in the snapshot is not valid.
        """
        return self._same_sides(Side.from_levels(1, snapshot.bids), Side.from_levels(-1, snapshot.asks))

    def _same_sides(self, bids: Side, asks: Side) -> bool:
        return (
            bids.keys == self._bids.keys
            and bids.sizes == self._bids.sizes
            and asks.keys == self._asks.keys
            and asks.sizes == self._asks.sizes
        )

    def _snapshot_diff(self, bids: Side, asks: Side) -> str:
        differing = 0
        for new, old in ((bids, self._bids), (asks, self._asks)):
            new_levels = dict(zip(new.keys, new.sizes, strict=True))
            old_levels = dict(zip(old.keys, old.sizes, strict=True))
            differing += sum(
                1 for k in new_levels.keys() | old_levels.keys() if new_levels.get(k) != old_levels.get(k)
            )
        return f"{differing} levels differ"

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
        # A burst still open stays open: a print may come before the burst's last messages, and the
        # burst's hash is tried with this price, the previous one and a candidate when it ends.
        if self._burst_ts is None and self._awaiting is not None:
            ts, expected = self._awaiting
            if self._hash_matches(ts, expected) or self._matches_otherwise(ts, expected):
                self._awaiting = None
                self._hash_passed(ts)
            elif own:
                self._awaiting = None
                self._fail(
                    CheckKind.HASH,
                    f"hash {expected} at {ts} does not match the book, even with the trade price {price}",
                    ts,
                )
            # else: the print of the complement may not be the one this hash waits for; keep waiting
        return changed

    def _apply_tick_change(self, message: TickSizeChange) -> bool:
        if message.asset_id != self.asset_id:
            return False
        change = (message.old_tick_size, message.new_tick_size, message.timestamp)
        if change == self._last_tick_change:
            return False  # the same frame again (duplicated): nothing to do, nothing wrong
        self._last_tick_change = change
        if self.tick_size is not None and message.old_tick_size != self.tick_size:
            self._fail(
                CheckKind.TICK,
                f"tick changed from {message.old_tick_size} but the book had "
                f"{self.tick_size}: a change was missed",
                message.timestamp,
            )
        else:
            self._pass(CheckKind.TICK)
        if self._burst_ts is not None and self._burst_old_tick is None:
            # A tick change can come inside the burst that moved the price past 0.04/0.96 (the venue's
            # order is undocumented): the burst stays open, and its hash is tried under both ticks.
            self._burst_old_tick = self.tick_size
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

    def _set_trade_price(self, price: str) -> None:
        if price != self.last_trade_price:
            self._previous_trade_price = self.last_trade_price
            self.last_trade_price = price

    def _refresh_head(self) -> None:
        self._head = '{"market":' + json_string(self.market) + ',"asset_id":' + json_string(self.asset_id)

    # -- checks --------------------------------------------------------------------------------------

    @property
    def open_burst(self) -> str | None:
        """The timestamp of the burst whose checks wait for its end, if one is open."""
        return self._burst_ts

    @property
    def awaiting_print(self) -> str | None:
        """The timestamp of a hash that did not match and waits for a trade print, if one does."""
        return self._awaiting[0] if self._awaiting is not None else None

    def settle(self, *, final: bool = False) -> None:
        """Close the current burst now and run the checks deferred to its end.

        The stream calls this when it knows no more messages of the burst will come (its connection has
        been quiet for a moment). With ``final``, a hash mismatch still waiting for a trade print fails.
        """
        if self._burst_ts is not None:
            self._settle_burst()
        if final and self._awaiting is not None:
            self._fail_awaiting(self._awaiting[0])

    def _settle_burst(self) -> None:
        ts = self._burst_ts
        entry = self._burst_entry
        self._burst_ts = None
        assert ts is not None and entry is not None
        bid_keys = self._bids.keys
        ask_keys = self._asks.keys
        best_bid = bid_keys[-1] if bid_keys else 0
        best_ask = -ask_keys[-1] if ask_keys else PRICE_SCALE
        passed = self.checks.passed_by_index
        if best_bid >= best_ask and bid_keys and ask_keys:
            self._fail(
                CheckKind.CROSSED, f"best bid {self._bids.prices[-1]} >= best ask {self._asks.prices[-1]}", ts
            )
        else:
            passed[_CROSSED] += 1
        venue_bid = entry.best_bid
        if venue_bid is not None:
            venue_ask = entry.best_ask
            # "0" / "1" stand for an empty side (spec 4.2), which is what key 0 / PRICE_SCALE mean here.
            if PRICE_KEYS.get(venue_bid) == best_bid and PRICE_KEYS.get(venue_ask or "") == best_ask:
                passed[_TOP_OF_BOOK] += 1
            else:
                self._check_top_of_book_slowly(venue_bid, venue_ask, best_bid, best_ask, ts)
        if entry.hash and self.verify_hash:
            self._verify_hash(ts, entry.hash)

    def _check_top_of_book_slowly(
        self, venue_bid: str, venue_ask: str | None, best_bid: int, best_ask: int, ts: str
    ) -> None:
        """The top-of-book check for prices not yet in the key cache, and the failure report."""
        try:
            expected = (price_key(venue_bid), price_key(venue_ask or ""))
        except InvalidLevelError as exc:
            self._fail(CheckKind.TOP_OF_BOOK, f"unreadable best_bid/best_ask: {exc}", ts)
            return
        if expected == (best_bid, best_ask):
            self.checks.passed_by_index[_TOP_OF_BOOK] += 1
            return
        local_bid = self._bids.prices[-1] if self._bids.keys else "0"
        local_ask = self._asks.prices[-1] if self._asks.keys else "1"
        self._fail(
            CheckKind.TOP_OF_BOOK, f"venue says {venue_bid}/{venue_ask}, book has {local_bid}/{local_ask}", ts
        )

    def _verify_hash(self, ts: str, expected: str) -> None:
        if self._hash_matches(ts, expected) or self._matches_otherwise(ts, expected):
            self._hash_passed(ts)
            return
        self._awaiting = (ts, expected)

    def _matches_otherwise(self, ts: str, expected: str) -> bool:
        """Whether the hash matches the book under the other inputs the venue may have used: the
        previous trade price (a print that overtook the changes hashed before it), the price of a print
        naming the market's other token (adopted when it matches), the tick before a tick change inside
        the burst. Only a mismatch pays for this."""
        price, tick = self.last_trade_price, self.tick_size
        others = (self._previous_trade_price, self._candidate_price)
        prices = [p for p in others if p is not None and p != price]
        ticks = [tick] if self._burst_old_tick in (None, tick) else [tick, self._burst_old_tick]
        if not prices and len(ticks) == 1:
            return False
        try:
            for tried_tick in ticks:
                self.tick_size = tried_tick
                for tried in (price, *prices):
                    if tried_tick == tick and tried == price:
                        continue
                    self.last_trade_price = tried
                    if self._hash_matches(ts, expected):
                        if tried is not None and tried == self._candidate_price:
                            self.last_trade_price = price
                            self._set_trade_price(tried)  # confirmed: the market's price now
                            self._candidate_price = None
                            price = self.last_trade_price
                        return True
            return False
        finally:
            self.last_trade_price, self.tick_size = price, tick

    def _hash_passed(self, ts: str) -> None:
        self._pass(CheckKind.HASH)
        if self._status is _SUSPECT or self._status is _STALE:
            self._set_status(_LIVE, "hash verified", ts)

    def _fail_awaiting(self, ts: str) -> None:
        assert self._awaiting is not None
        at, expected = self._awaiting
        self._awaiting = None
        detail = f"hash {expected} at {at} does not match the book (trade price {self.last_trade_price})"
        if self.tick_size is None and self.hash_variant is not HashVariant.V2024:
            # The hash covers the tick: a book that was never told it cannot be verified (spec 7.3).
            detail += "; tick size unknown: the snapshot carried none and no REST answer gave one"
        self._fail(CheckKind.HASH, detail, ts)

    def _hash_matches(self, ts: str, expected: str) -> bool:
        if self.hash_variant is not None:
            return self.compute_hash(ts, variant=self.hash_variant) == expected
        for variant in NEWEST_FIRST:
            if self.compute_hash(ts, variant=variant) == expected:
                self.hash_variant = variant
                return True
        return False

    def compute_hash(self, timestamp: str, *, variant: HashVariant | None = None) -> str:
        """Polymarket's hash of this book as the venue computes it for a message at ``timestamp``.

        Args:
            timestamp: the message's timestamp text (ms), as on the wire.
            variant: the field set; defaults to the book's (detected or given), else the current one.
        """
        chosen = variant or self.hash_variant or HashVariant.CURRENT
        key = (self.min_order_size, self.tick_size, self.neg_risk, self.last_trade_price, chosen)
        if key != self._tail_key:  # the metadata changes rarely: its JSON is kept between hashes
            self._tail_key = key
            self._tail = metadata_tail(
                self.min_order_size, self.tick_size or "", self.neg_risk, self.last_trade_price or "", chosen
            )
        stamp = '"' + timestamp + '"' if timestamp.isdigit() else json_string(timestamp)
        head = self._head + ',"timestamp":' + stamp + ',"hash":"","bids":['
        return hash_with_head(head, self._bids.frags, self._asks.frags, self._tail)

    # -- reading -------------------------------------------------------------------------------------

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or ``None`` when there are no bids."""
        side = self._bids
        return Level(text_to_decimal(side.prices[-1]), Decimal(side.sizes[-1])) if side.keys else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or ``None`` when there are no asks."""
        side = self._asks
        return Level(text_to_decimal(side.prices[-1]), Decimal(side.sizes[-1])) if side.keys else None

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
        return (text_to_decimal(self._bids.prices[-1]) + text_to_decimal(self._asks.prices[-1])) / 2

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, ``None`` if a side is empty."""
        if not (self._bids.keys and self._asks.keys):
            return None
        return text_to_decimal(self._asks.prices[-1]) - text_to_decimal(self._bids.prices[-1])

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
        bid = self._bids.prices[-1] if self._bids.keys else "-"
        ask = self._asks.prices[-1] if self._asks.keys else "-"
        top = f"{bid} / {ask}"
        n_bids, n_asks = self.depth
        return f"<OrderBook {self.asset_id[:8]}... {self._status.value} {top} ({n_bids}x{n_asks} levels)>"


def _ms(timestamp: Any) -> int | None:
    try:
        return int(timestamp)
    except (TypeError, ValueError):
        return None
