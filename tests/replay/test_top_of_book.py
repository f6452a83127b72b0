"""The export's top-of-book rows: at burst ends the venue's hash verified (never crossed), or at every
change as the export always wrote them; each state decided a bounded time after it was received."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal

import msgspec
import pytest

from polyfeed.replay.top_of_book import FINAL_NS, SETTLE_NS, Row, TopOfBook
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import Book, LastTradePrice, MarketMessage, PriceChange, TickSizeChange, decode_market

S = 1_000_000_000
T0 = 1_790_000_000 * S
STEP_NS = 100_000

Timeline = list[tuple[int, MarketMessage]]


def exchange_timeline(markets: int, seed: int, events: int) -> Timeline:
    """What a client subscribed to every token of the exchange receives, decoded as the export decodes
    it, one message every 0.1 ms."""
    exchange = Exchange(markets=markets, seed=seed)
    assets = set(exchange.asset_ids())
    frames = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    frames += [
        encode_outbound(out).encode()
        for out in exchange.run(events)
        if out.channel == "market" and assets & set(out.assets)
    ]
    messages = [m for frame in frames for m in decode_market(frame)]
    return [(T0 + n * STEP_NS, m) for n, m in enumerate(messages)]


def feed(tops: TopOfBook, timeline: Iterable[tuple[int, MarketMessage]]) -> None:
    for recv_ns, message in timeline:
        tops.advance(recv_ns)
        if isinstance(message, PriceChange):
            tops.price_change(recv_ns, message)
        elif isinstance(message, Book):
            tops.snapshot(recv_ns, message)
        elif isinstance(message, LastTradePrice):
            tops.trade(message)
        elif isinstance(message, TickSizeChange):
            tops.tick_size_change(message)


def top_rows(timeline: Timeline, *, every_change: bool = False) -> list[Row]:
    rows: list[Row] = []
    tops = TopOfBook(rows.append, every_change=every_change)
    feed(tops, timeline)
    tops.finish()
    return rows


def every_change_oracle(timeline: Timeline) -> list[tuple[object, ...]]:
    """The rows the export wrote before it knew of bursts: after each snapshot, and after each
    ``price_change`` for each token it names, a row when the best bid or ask (price or size) changed.
    Levels as plain dicts: price -> size per side, a token's changes ignored until its first snapshot."""
    books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
    last: dict[str, tuple[object, ...]] = {}
    rows: list[tuple[object, ...]] = []

    def top(recv_ns: int, ts: str, asset: str, market: str) -> None:
        bids, asks = books[asset]
        bid = max(bids) if bids else None
        ask = min(asks) if asks else None
        state = (
            None if bid is None else (bid, bids[bid]),
            None if ask is None else (ask, asks[ask]),
        )
        if last.get(asset) != state:
            last[asset] = state
            texts: list[str | None] = []
            for level in state:
                texts += [None, None] if level is None else [format(level[0], "f"), format(level[1], "f")]
            rows.append((recv_ns, int(ts), asset, market, *texts))

    for recv_ns, m in timeline:
        if isinstance(m, Book):
            books[m.asset_id] = (
                {Decimal(lv.price): Decimal(lv.size) for lv in m.bids},
                {Decimal(lv.price): Decimal(lv.size) for lv in m.asks},
            )
            top(recv_ns, m.timestamp, m.asset_id, m.market)
        elif isinstance(m, PriceChange):
            for asset in dict.fromkeys(e.asset_id for e in m.price_changes):
                if asset not in books:
                    continue
                for e in m.price_changes:
                    if e.asset_id == asset:
                        side = books[asset][0 if e.side == "BUY" else 1]
                        if Decimal(e.size):
                            side[Decimal(e.price)] = Decimal(e.size)
                        else:
                            side.pop(Decimal(e.price), None)
                top(recv_ns, m.timestamp, asset, m.market)
    return rows


def crossed(row: Row) -> bool:
    bid, ask = row[4], row[6]
    return bid is not None and ask is not None and Decimal(bid) >= Decimal(ask)


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return exchange_timeline(markets=4, seed=3, events=6_000)


def test_every_change_writes_a_row_at_each_change_of_the_top(timeline: Timeline) -> None:
    rows = top_rows(timeline, every_change=True)
    expected = every_change_oracle(timeline)
    assert sorted(row[:8] for row in rows) == sorted(expected)
    assert any(crossed(row) for row in rows), "the exchange's trades cross the book inside their bursts"
    assert not any(crossed(row) for row in rows if row[8]), "a verified row is a burst's end"
    assert 0 < sum(row[8] for row in rows) < len(rows)


def test_rows_at_burst_ends_are_verified_and_never_crossed(timeline: Timeline) -> None:
    rows = top_rows(timeline)
    every = top_rows(timeline, every_change=True)
    assert 0 < len(rows) < len(every)
    verified = [row for row in rows if row[8]]
    assert len(verified) >= 0.95 * len(rows), "the exchange's hashes match, once their print is in"
    assert not any(crossed(row) for row in verified)
    by_asset: dict[str, list[Row]] = {}
    for row in sorted(rows):
        by_asset.setdefault(row[2], []).append(row)
    for asset_rows in by_asset.values():
        pairs = itertools.pairwise(asset_rows)
        assert all(a[4:] != b[4:] for a, b in pairs), "a row when the top or its verdict changes"


def test_a_hash_that_does_not_match_leaves_its_row_unverified(timeline: Timeline) -> None:
    # A burst of one message (its timestamp alone) that moves the top: its hash is made wrong.
    stamps: dict[str, int] = {}
    for _, m in timeline:
        if isinstance(m, (PriceChange, Book, LastTradePrice)):
            stamps[m.timestamp] = stamps.get(m.timestamp, 0) + 1
    good = top_rows(timeline)
    moved = {row[0] for row in good}
    n, (recv_ns, message) = next(
        (n, (t, m))
        for n, (t, m) in enumerate(timeline)
        if isinstance(m, PriceChange) and stamps[m.timestamp] == 1 and t in moved and n > len(timeline) // 2
    )
    assert isinstance(message, PriceChange)
    wrong = msgspec.structs.replace(
        message, price_changes=[msgspec.structs.replace(e, hash="0" * 40) for e in message.price_changes]
    )
    rows = top_rows([*timeline[:n], (recv_ns, wrong), *timeline[n + 1 :]])
    unverified = {(row[0], row[2]) for row in rows if not row[8]} - {
        (row[0], row[2]) for row in good if not row[8]
    }
    assert {r for r, _ in unverified} == {recv_ns}
    assert {a for _, a in unverified} <= {e.asset_id for e in message.price_changes}


def test_a_hash_waits_for_its_trade_print(timeline: Timeline) -> None:
    initial = {id(m) for _, m in timeline[:8]}
    no_snapshots: Timeline = [(t, m) for t, m in timeline if not isinstance(m, Book) or id(m) in initial]
    rows = top_rows(no_snapshots)
    assert all(row[8] for row in rows), "without the post-trade snapshots the prints verify the bursts"
    no_prints: Timeline = [(t, m) for t, m in no_snapshots if not isinstance(m, LastTradePrice)]
    unverified = [row for row in top_rows(no_prints) if not row[8]]
    assert unverified, "the venue hashes a trade's new price before it prints it: no print, no match"
    assert not any(crossed(row) for row in unverified), "still a row per burst end"


def test_a_state_is_decided_by_quiet_then_by_the_final_wait() -> None:
    timeline = exchange_timeline(markets=1, seed=3, events=3_000)
    # A trade's burst, without the snapshot and print that follow it: its hash cannot match.
    trade = next(m for _, m in timeline if isinstance(m, LastTradePrice))
    end = max(
        n
        for n, (_, m) in enumerate(timeline)
        if isinstance(m, PriceChange) and m.timestamp == trade.timestamp
    )
    before = [
        (t, m)
        for t, m in timeline[: end + 1]
        if not (isinstance(m, (Book, LastTradePrice)) and m.timestamp == trade.timestamp)
    ]
    last_ns = before[-1][0]
    rows: list[Row] = []
    tops = TopOfBook(rows.append)
    feed(tops, before)
    assert tops.undecided_before(last_ns + 1)
    decided = len(rows)
    tops.advance(last_ns + SETTLE_NS - 1)
    assert tops.undecided_before(last_ns + 1) and len(rows) == decided, "the burst may go on"
    tops.advance(last_ns + SETTLE_NS)
    assert tops.undecided_before(last_ns + 1), "closed, its hash waits for the print"
    tops.advance(last_ns + SETTLE_NS + FINAL_NS)
    assert not tops.undecided_before(last_ns + 1)
    assert {row[0] for row in rows[decided:]} == {last_ns}, "the burst's end, for both tokens"
    assert not any(row[8] for row in rows[decided:])


@pytest.mark.parametrize("before_the_books", [True, False])
def test_the_metadata_marker_gives_the_books_what_the_hash_covers(
    timeline: Timeline, before_the_books: bool
) -> None:
    # The exchange hashes min_order_size "5": a marker saying "10" for one token makes its hashes fail.
    token = next(m.asset_id for _, m in timeline if isinstance(m, Book))
    marker = msgspec.json.encode(
        {"marker": "metadata", "books": [{"asset_id": token, "min_order_size": "10", "neg_risk": False}]}
    )
    rows: list[Row] = []
    tops = TopOfBook(rows.append)
    if before_the_books:
        tops.metadata_marker(marker)
        feed(tops, timeline)
    else:
        feed(tops, timeline[:8])
        tops.metadata_marker(marker)
        feed(tops, timeline[8:])
    tops.finish()
    later = [row for row in rows if row[2] == token and row[0] > timeline[8][0]]
    assert later and not any(row[8] for row in later)
    assert all(row[8] for row in rows if row[2] != token)
