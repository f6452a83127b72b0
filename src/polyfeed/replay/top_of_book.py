"""The export's ``top_of_book`` rows: each token's best bid and ask, by default only at the states the
venue's book hash vouches for, with a ``verified`` flag saying whether the hash matched.

On the venue a trade sends a burst of ``price_change`` messages sharing one timestamp, all carrying the
*final* hash; inside the burst the book is briefly crossed (spec 7.4). :class:`TopOfBook` keeps one
:class:`polyfeed.book.OrderBook` per token, hash checks on, and closes each burst where the book itself
would (a message of that token with another timestamp, a snapshot) or where the live session would (the
token quiet for :data:`SETTLE_NS` of receive time). A hash that did not match may still match once the
trade's print arrives (the venue hashes the new trade price before it sends the print, spec 7.3): the
state waits for the print, and is unverified if the book changes first or :data:`FINAL_NS` pass.

Rows, by default: one per burst end and per snapshot, written when the top of book or the verdict
differs from the token's previous row. With ``every_change``: one per applied message that changed the
best bid or ask (price or size), as the export always wrote them, the intermediate states of a burst
included; there ``verified`` is true only on the last row of a burst whose hash matched.

A state is decided a bounded time after it was received (a change of its token, or at most
``FINAL_NS`` of receive time later), which lets an export of a time window read a little past
its end and write exactly the rows a whole export writes inside the window.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable

from polyfeed.book import Level, OrderBook
from polyfeed.book.status import CHECK_INDEX, CheckKind
from polyfeed.errors import BookError
from polyfeed.record.format import BookMetadata, MetadataMarker, decode_marker
from polyfeed.wire import Book, LastTradePrice, PriceChange, TickSizeChange

__all__ = ["FINAL_NS", "SETTLE_NS", "Row", "TopOfBook"]

SETTLE_NS = 250_000_000
"""A burst is closed once its token has had no change for this long (receive time), as the live session
closes it after ``SessionConfig.settle_after_s`` of quiet."""
FINAL_NS = 3_000_000_000
"""A hash awaiting its trade print fails this long after the burst's last message (receive time), as the
live session fails it after ``SessionConfig.final_settle_after_s``."""

Row = tuple[int, int | None, str, str, str | None, str | None, str | None, str | None, bool]
"""``recv_ns, ts_ms, asset_id, market, best_bid, best_bid_size, best_ask, best_ask_size, verified``."""

_HASH = CHECK_INDEX[CheckKind.HASH]
_Top = tuple[Level | None, Level | None]


class _State:
    """A top of book waiting for its verdict: in an open burst, or its hash awaiting a trade print.
    ``top`` is read from the book when the burst closes (``None`` until then): the levels do not change
    between a burst's last message and its verdict, since a change decides the verdict first."""

    __slots__ = ("market", "recv_ns", "top", "ts")

    def __init__(self, recv_ns: int, ts: str, market: str, top: _Top | None) -> None:
        self.recv_ns = recv_ns
        self.ts = ts
        self.market = market
        self.top = top


class TopOfBook:
    """Books by token, fed the market messages in recorded order; rows go to ``emit`` once decided.

    Args:
        emit: called with each row, in the order rows are decided (not quite receive order: a burst's
            row comes when the burst is known to have ended).
        every_change: a row at every change of the best bid or ask instead of at burst ends.
    """

    def __init__(self, emit: Callable[[Row], None], *, every_change: bool = False) -> None:
        self.emit = emit
        self.every_change = every_change
        self.books: dict[str, OrderBook] = {}
        self.assets_of: dict[str, list[str]] = {}
        self.metadata: dict[str, BookMetadata] = {}
        self.pending: dict[str, _State] = {}
        self.last: dict[str, tuple[_Top, bool]] = {}
        """The token's last row: its top and verdict (``every_change``: the last row emitted or pending)."""
        self.quiet_at: dict[str, int] = {}
        self.waiting_until: dict[str, int] = {}
        self._bursts: deque[tuple[int, str]] = deque()
        self._waits: deque[tuple[int, str]] = deque()

    # -- books ---------------------------------------------------------------------------------------

    def book(self, asset: str, market: str) -> OrderBook:
        book = self.books.get(asset)
        if book is None:
            book = self.books[asset] = OrderBook(asset, market=market)
            self._set_metadata(book, self.metadata.get(asset))
        if market and asset not in self.assets_of.setdefault(market, []):
            self.assets_of[market].append(asset)
        return book

    def metadata_marker(self, payload: bytes) -> None:
        """Take the ``metadata`` marker's ``min_order_size``, ``tick_size`` and ``neg_risk`` (the hash
        needs them; the WebSocket never sends the first two); other markers are ignored."""
        marker = decode_marker(payload)
        if isinstance(marker, MetadataMarker):
            for item in marker.books:
                self.metadata[item.asset_id] = item
                self._set_metadata(self.books.get(item.asset_id), item)

    @staticmethod
    def _set_metadata(book: OrderBook | None, item: BookMetadata | None) -> None:
        if book is None or item is None:
            return
        size, tick, neg = item.min_order_size, item.tick_size, item.neg_risk
        with contextlib.suppress(BookError):  # an unusable tick size: the book learns it from its snapshot
            book.set_metadata(min_order_size=size, tick_size=tick, neg_risk=neg)

    # -- messages ------------------------------------------------------------------------------------

    def price_change(self, recv_ns: int, message: PriceChange) -> int:
        """Apply a ``price_change`` to the books of the tokens it names; returns how many refused it."""
        ts = message.timestamp
        market = message.market
        rejected = 0
        books = self.books
        for asset in dict.fromkeys(e.asset_id for e in message.price_changes):
            book = books.get(asset)
            if book is None or book.market != market:
                book = self.book(asset, market)
            burst = book.open_burst
            if (burst is not None and burst != ts) or book.awaiting_print is not None:
                # The book would close its burst here, and fail a hash still awaiting its print.
                self._close(asset, book, final=True)
            try:
                changed = book.apply_price_change(message)
            except BookError:
                rejected += 1
                continue
            if changed:
                self._changed(asset, book, recv_ns, ts, market)
                deadline = recv_ns + SETTLE_NS
                self.quiet_at[asset] = deadline
                self._bursts.append((deadline, asset))
        return rejected

    def snapshot(self, recv_ns: int, message: Book) -> str | None:
        """Apply a ``book`` snapshot (WebSocket or a REST resync's); returns the market of its rows, or
        ``None`` when the book refused it."""
        asset = message.asset_id
        book = self.book(asset, message.market)
        if book.open_burst is not None:
            # Not final: the venue follows a trade's burst with a snapshot carrying the burst's hash, then
            # the print; a hash awaiting that print is the snapshot's own.
            self._close(asset, book)
        checks = book.checks
        hashes = checks.passed_by_index[_HASH]
        failures = checks.failed_by_index[_HASH]
        try:
            book.apply(message)
        except BookError:
            return None
        market = message.market or book.market
        if asset in self.waiting_until and checks.failed_by_index[_HASH] == failures:
            # The hash awaited is the snapshot's: the same book, so the state waiting since the burst
            # (same top, received earlier) stands for it and takes the snapshot's verdict.
            del self.waiting_until[asset]
        else:
            if asset in self.waiting_until:
                self._decide(asset, False)  # the snapshot's hash is another: the state was not the venue's
            self._changed(asset, book, recv_ns, message.timestamp, market)
        self._verdict(asset, book, hashes)
        return market

    def trade(self, message: LastTradePrice) -> None:
        """A print: every book of its market hashes its price (spec 7.3), so it may verify a hash that
        awaits it in either token's book."""
        targets = self.assets_of.get(message.market, [])
        if message.asset_id in self.books and message.asset_id not in targets:
            targets = [*targets, message.asset_id]
        for asset in targets:
            book = self.books[asset]
            hashes = book.checks.passed_by_index[_HASH]
            try:
                book.apply(message)
            except BookError:
                continue
            if asset in self.waiting_until and book.awaiting_print is None:
                self._decide(asset, book.checks.passed_by_index[_HASH] > hashes)

    def tick_size_change(self, message: TickSizeChange) -> None:
        book = self.books.get(message.asset_id)
        if book is not None:
            book.apply(message)

    # -- time ----------------------------------------------------------------------------------------

    def advance(self, recv_ns: int) -> None:
        """Close the bursts quiet since ``SETTLE_NS`` before ``recv_ns``, fail the hashes that waited
        ``FINAL_NS`` for their print; call before each record."""
        bursts = self._bursts
        while bursts and bursts[0][0] <= recv_ns:
            deadline, asset = bursts.popleft()
            if self.quiet_at.get(asset) == deadline:
                book = self.books[asset]
                if book.open_burst is not None:
                    self._close(asset, book)
        waits = self._waits
        while waits and waits[0][0] <= recv_ns:
            deadline, asset = waits.popleft()
            if self.waiting_until.get(asset) == deadline:
                self._close(asset, self.books[asset], final=True)

    def undecided_before(self, recv_ns: int) -> bool:
        """Whether a state received before ``recv_ns`` still waits for its verdict."""
        return any(state.recv_ns < recv_ns for state in self.pending.values())

    def finish(self) -> None:
        """The recording ended: close every burst, fail every hash still awaiting its print."""
        for asset in list(self.pending):
            self._close(asset, self.books[asset], final=True)

    # -- rows ----------------------------------------------------------------------------------------

    def _changed(self, asset: str, book: OrderBook, recv_ns: int, timestamp: str, market: str) -> None:
        if not self.every_change:
            state = self.pending.get(asset)
            if state is None:
                self.pending[asset] = _State(recv_ns, timestamp, market, None)
            else:  # a later message of the same burst
                state.recv_ns, state.ts, state.market, state.top = recv_ns, timestamp, market, None
            return
        top = (book.best_bid, book.best_ask)
        last = self.last.get(asset)
        if last is not None and last[0] == top:
            return
        earlier = self.pending.get(asset)
        if earlier is not None:  # a later state of the same burst: this one is not what the hash vouches for
            self._row(asset, earlier, verified=False)
        self.pending[asset] = _State(recv_ns, timestamp, market, top)
        self.last[asset] = (top, False)

    def _close(self, asset: str, book: OrderBook, *, final: bool = False) -> None:
        hashes = book.checks.passed_by_index[_HASH]
        self.quiet_at.pop(asset, None)
        book.settle(final=final)
        self._verdict(asset, book, hashes)

    def _verdict(self, asset: str, book: OrderBook, hashes: int) -> None:
        state = self.pending.get(asset)
        if state is not None and state.top is None:
            state.top = (book.best_bid, book.best_ask)
        if book.checks.passed_by_index[_HASH] > hashes:
            self._decide(asset, True)
        elif book.awaiting_print is not None:
            if state is not None and asset not in self.waiting_until:
                deadline = state.recv_ns + FINAL_NS
                self.waiting_until[asset] = deadline
                self._waits.append((deadline, asset))
        else:
            self._decide(asset, False)

    def _decide(self, asset: str, verified: bool) -> None:
        self.waiting_until.pop(asset, None)
        state = self.pending.pop(asset, None)
        if state is None:
            return
        if self.every_change:
            self._row(asset, state, verified=verified)
            return
        top = state.top
        assert top is not None  # read when the burst closed
        if self.last.get(asset) != (top, verified):
            self.last[asset] = (top, verified)
            self._row(asset, state, verified=verified)

    def _row(self, asset: str, state: _State, *, verified: bool) -> None:
        assert state.top is not None
        bid, ask = state.top
        self.emit(
            (
                state.recv_ns,
                _ms(state.ts),
                asset,
                state.market,
                None if bid is None else format(bid.price, "f"),
                None if bid is None else format(bid.size, "f"),
                None if ask is None else format(ask.price, "f"),
                None if ask is None else format(ask.size, "f"),
                verified,
            )
        )


def _ms(timestamp: str) -> int | None:
    try:
        return int(timestamp)
    except ValueError:
        return None
