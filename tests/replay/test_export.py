"""The Parquet export: a recording of the local exchange's frames, read back with DuckDB."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from polyfeed.errors import RecordingError
from polyfeed.record import Channel, Recorder, RecordKind
from polyfeed.replay.export import TABLES, export_parquet
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound, rest_book
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceLevel, encode_market_subscription

S = 1_000_000_000
MIDNIGHT_NS = 1_790_035_200 * S  # 2026-09-22T00:00:00Z
STEP_NS = 100_000  # a frame every 0.1 ms: the recording crosses midnight after 5,000 frames
SIDES = {"BUY": "bid", "SELL": "ask"}


@dataclass
class Written:
    """What the test wrote, as the venue's messages, to compare the tables with."""

    level_changes: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    trades: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    snapshot_levels: int = 0
    rest_levels: int = 0
    markets: set[str] = field(default_factory=set)
    last_ns: int = 0


def levels_of(book: Book) -> int:
    return len(book.bids) + len(book.asks)


def record_exchange(directory: Path, exchange: Exchange, events: int) -> Written:
    """A recording as the stream would make it for a connection subscribed to every token: markers,
    the subscription it sent, the initial books, the flow, user-channel frames, one REST resync body,
    and two frames the export must survive (not JSON; a size no book accepts)."""
    assets = exchange.asset_ids()
    subscribed = set(assets)
    written = Written(markets={m.condition_id for m in exchange.markets})
    now = MIDNIGHT_NS - 5_000 * STEP_NS
    frame, sent, marker, rest = RecordKind.FRAME, RecordKind.SENT, RecordKind.MARKER, RecordKind.REST
    market, user = Channel.MARKET, Channel.USER
    with Recorder(directory) as recorder:
        recorder.write(sent, market, 1, now, encode_market_subscription(assets))
        recorder.write(
            marker, market, 1, now, json.dumps({"marker": "subscribed", "assets": assets}).encode()
        )
        for asset in assets:
            now += STEP_NS
            book = exchange.book(asset, initial=True)
            written.snapshot_levels += levels_of(book)
            recorder.write(frame, market, 1, now, msgspec.json.encode([book_frame(book, initial=True)]))
        for n, out in enumerate(exchange.run(events)):
            now += STEP_NS
            if out.channel == "user":
                recorder.write(frame, user, 2, now, msgspec.json.encode(out.message))
                continue
            if out.channel != "market" or not subscribed & set(out.assets):
                continue
            message = out.message
            if isinstance(message, PriceChange):
                written.level_changes += [
                    (now, e.asset_id, SIDES[e.side], e.price, e.size) for e in message.price_changes
                ]
            elif isinstance(message, LastTradePrice):
                written.trades.append((now, message.asset_id, message.price, message.size, message.side))
            elif isinstance(message, Book):
                written.snapshot_levels += levels_of(message)
            recorder.write(frame, market, 1, now, encode_outbound(out).encode())
            if n == events // 2:
                resynced = exchange.book(assets[0])
                written.rest_levels = levels_of(resynced)
                body = msgspec.json.encode(rest_book(resynced)).decode()
                now += STEP_NS
                recorder.write(
                    rest, market, 1, now, json.dumps({"asset_id": assets[0], "body": body}).encode()
                )
                now += STEP_NS
                recorder.write(frame, market, 1, now, b'{"event_type": "price_change", "market": ')
                now += STEP_NS
                recorder.write(frame, market, 1, now, b"PONG")
                now += STEP_NS
                bad = {
                    "market": exchange.markets[0].condition_id,
                    "price_changes": [{"asset_id": assets[0], "price": "0.5", "size": "-5", "side": "BUY"}],
                    "timestamp": str(exchange.now_ms),
                    "event_type": "price_change",
                }
                recorder.write(frame, market, 1, now, json.dumps(bad).encode())
                written.level_changes.append((now, assets[0], "bid", "0.5", "-5"))
        now += STEP_NS
        recorder.write(marker, market, 1, now, b'{"marker": "disconnected", "reason": "end", "assets": []}')
    written.last_ns = now
    return written


def rows(sql: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(sql)
    assert relation is not None, "a query returns rows"
    return relation.fetchall()


def table(out: Path, name: str) -> str:
    return f"read_parquet('{out}/{name}/**/*.parquet', hive_partitioning=true)"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Exchange, Written, Path, Any]:
    base = tmp_path_factory.mktemp("export")
    exchange = Exchange(markets=6, seed=5)
    written = record_exchange(base / "rec", exchange, 8_000)
    summary = export_parquet(base / "rec", base / "out")
    return exchange, written, base / "out", summary


@pytest.fixture(scope="module")
def every_change(exported: tuple[Exchange, Written, Path, Any]) -> tuple[Path, Any]:
    """The same recording exported with a top-of-book row at every change."""
    out = exported[2].parent / "every"
    return out, export_parquet(exported[2].parent / "rec", out, every_change=True)


def test_the_tables_hold_exactly_the_messages_written(exported: tuple[Exchange, Written, Path, Any]) -> None:
    _, written, out, summary = exported
    changes = rows(f"select recv_ns, asset_id, side, price, size from {table(out, 'level_changes')}")
    assert sorted(changes) == sorted(written.level_changes), "every entry, its exact text, bid/ask sides"
    trades = rows(f"select recv_ns, asset_id, price, size, side from {table(out, 'trades')}")
    assert sorted(trades) == sorted(written.trades)
    ((snapshot_rows,),) = rows(f"select count(*) from {table(out, 'book_snapshots')}")
    assert snapshot_rows == written.snapshot_levels + written.rest_levels, "a row per level, REST included"
    ((rest_rows,),) = rows(f"select count(*) from {table(out, 'book_snapshots')} where source = 'rest'")
    assert rest_rows == written.rest_levels
    ((disordered,),) = rows(
        f"select count(*) from (select recv_ns, asset_id, side, "
        f"list(price::decimal(18, 6) order by level) as prices, max(level) + 1 = count(*) as dense "
        f"from {table(out, 'book_snapshots')} group by all) "
        f"where not dense or prices != if(side = 'bid', list_reverse_sort(prices), list_sort(prices))"
    )
    assert disordered == 0, "level 0 is the best price, levels count up from there"
    for name in TABLES:
        ((count,),) = rows(f"select count(*) from {table(out, name)}")
        assert summary.rows[name] == count, name
    assert summary.frames_skipped == 1, "the frame that is not JSON, and not PONG"
    assert summary.messages_rejected == 1, "the size -5"
    assert summary.rest_snapshots == 1


def test_the_last_top_of_book_of_each_token_is_the_exchanges_book(
    exported: tuple[Exchange, Written, Path, Any],
) -> None:
    exchange, _, out, _ = exported
    last = rows(
        f"select asset_id, arg_max(best_bid, recv_ns), arg_max(best_bid_size, recv_ns), "
        f"arg_max(best_ask, recv_ns), arg_max(best_ask_size, recv_ns) "
        f"from {table(out, 'top_of_book')} group by asset_id"
    )
    markets = {a: m for m in exchange.markets + exchange.resolved for a in (m.yes, m.no)}
    subscribed = {a for a, m in markets.items() if m.index < 6}  # markets opened later were not followed
    assert {row[0] for row in last} == subscribed
    for asset, bid, bid_size, ask, ask_size in last:
        if asset in exchange.by_asset:
            bids, asks = exchange.book(asset).bids, exchange.book(asset).asks
        else:  # resolved during the run: its book stopped where it was
            bids, asks = markets[asset].wire_levels(asset)
        best_bid: PriceLevel | None = bids[-1] if bids else None  # wire order: the best is last
        best_ask: PriceLevel | None = asks[-1] if asks else None
        assert (bid, bid_size) == ((best_bid.price, best_bid.size) if best_bid else (None, None)), asset
        assert (ask, ask_size) == ((best_ask.price, best_ask.size) if best_ask else (None, None)), asset
    ((changes,),) = rows(
        f"select count(*) from (select asset_id, best_bid, best_bid_size, best_ask, best_ask_size, "
        f"lag(best_bid) over w as pb, lag(best_bid_size) over w as pbs, lag(best_ask) over w as pa, "
        f"lag(best_ask_size) over w as pas from {table(out, 'top_of_book')} "
        f"window w as (partition by asset_id order by recv_ns)) "
        f"where best_bid is not distinct from pb and best_bid_size is not distinct from pbs "
        f"and best_ask is not distinct from pa and best_ask_size is not distinct from pas"
    )
    assert changes == 0, "a row only when the top of book changed"


def utc_day(recv_ns: int) -> str:
    return datetime.datetime.fromtimestamp(recv_ns // S, datetime.UTC).date().isoformat()


def test_partitions_by_day_and_market(exported: tuple[Exchange, Written, Path, Any]) -> None:
    _, written, out, _ = exported
    for name in TABLES:
        folders = {(d.name, m.name) for d in (out / name).iterdir() for m in d.iterdir()}
        data = rows(f"select distinct recv_ns, market from {table(out, name)}")
        expected = {(f"date={utc_day(recv_ns)}", f"market={market}") for recv_ns, market in data}
        assert folders == expected, f"{name}: a folder per receive day (UTC) and market of its rows"
        ((misplaced,),) = rows(
            f"select count(*) from read_parquet('{out}/{name}/**/*.parquet', hive_partitioning=true, "
            f"filename=true) where not contains(filename, 'market=' || market || '/') "
            f"or strftime(date, '%Y-%m-%d') != strftime(make_timestamp(recv_ns // 1000), '%Y-%m-%d')"
        )
        assert misplaced == 0, f"{name}: the folders' date and market are the rows' own"
    assert {m for _, m in rows(f"select distinct 0, market from {table(out, 'book_snapshots')}")} == (
        written.markets
    ), "every subscribed market's initial book"
    days = {d.name for d in (out / "level_changes").iterdir()}
    assert days == {f"date={utc_day(MIDNIGHT_NS - 1)}", f"date={utc_day(MIDNIGHT_NS)}"}, "crossed midnight"
    ((types,),) = rows(f"select distinct typeof(price) from {table(out, 'level_changes')}")
    assert types == "VARCHAR", "prices stay exact text"


def test_an_existing_export_is_not_overwritten(tmp_path: Path) -> None:
    exchange = Exchange(markets=1, seed=1)
    record_exchange(tmp_path / "rec", exchange, 300)
    export_parquet(tmp_path / "rec", tmp_path / "out")
    with pytest.raises(RecordingError, match="already holds an export"):
        export_parquet(tmp_path / "rec", tmp_path / "out")


def test_from_and_until_limit_the_rows_to_the_window(tmp_path: Path) -> None:
    exchange = Exchange(markets=2, seed=9)
    written = record_exchange(tmp_path / "rec", exchange, 2_000)
    lo, hi = MIDNIGHT_NS - 4_000 * STEP_NS, MIDNIGHT_NS
    summary = export_parquet(tmp_path / "rec", tmp_path / "out", from_ns=lo, until_ns=hi)
    expected = [c for c in written.level_changes if lo <= c[0] < hi]
    changes = rows(
        f"select recv_ns, asset_id, side, price, size from {table(tmp_path / 'out', 'level_changes')}"
    )
    assert sorted(changes) == sorted(expected)
    assert summary.rows["book_snapshots"] < written.snapshot_levels, (
        "the initial books were before the window"
    )


def test_a_market_id_is_never_a_path_outside_the_export(tmp_path: Path) -> None:
    with Recorder(tmp_path / "rec") as recorder:
        for n, market in enumerate(("..", "a/../../b", "")):
            frame = {
                "market": market,
                "asset_id": "1",
                "price": "0.5",
                "size": "10",
                "side": "BUY",
                "timestamp": "1",
                "event_type": "last_trade_price",
            }
            recorder.write(RecordKind.FRAME, Channel.MARKET, 1, MIDNIGHT_NS + n, json.dumps(frame).encode())
    summary = export_parquet(tmp_path / "rec", tmp_path / "out" / "x")
    assert summary.rows["trades"] == 3
    found = sorted(
        str(p.relative_to(tmp_path / "out" / "x")) for p in (tmp_path / "out" / "x").rglob("*.parquet")
    )
    assert found == [
        "trades/date=2026-09-22/market=%2E%2E/part-00000.parquet",
        "trades/date=2026-09-22/market=a%2F..%2F..%2Fb/part-00000.parquet",
        "trades/date=2026-09-22/market=unknown/part-00000.parquet",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x"]


def crossed_rows(out: Path, where: str = "true") -> int:
    ((count,),) = rows(
        f"select count(*) from {table(out, 'top_of_book')} where {where} and best_bid is not null "
        f"and best_ask is not null and best_bid::decimal(18, 6) >= best_ask::decimal(18, 6)"
    )
    return int(count)


def test_top_of_book_is_at_burst_ends_verified_by_the_hash_and_never_crossed(
    exported: tuple[Exchange, Written, Path, Any], every_change: tuple[Path, Any]
) -> None:
    _, _, out, summary = exported
    ((total, verified, kind),) = rows(
        f"select count(*), count(*) filter (where verified), any_value(typeof(verified)) "
        f"from {table(out, 'top_of_book')}"
    )
    assert kind == "BOOLEAN"
    assert summary.tops_verified == verified
    assert verified >= 0.9 * total, "the exchange's hashes match the books at the ends of its bursts"
    assert crossed_rows(out, "verified") == 0
    every_out, every_summary = every_change
    assert crossed_rows(every_out) > 0, "the exchange's trades cross the book inside their bursts"
    assert crossed_rows(every_out, "verified") == 0, "only a burst's last state can be verified"
    assert 0 < every_summary.tops_verified < every_summary.rows["top_of_book"]
    assert total < every_summary.rows["top_of_book"]


def every_change_rows(out: Path) -> list[tuple[Any, ...]]:
    """The top-of-book rows the export wrote before it knew of bursts, rebuilt from its own
    ``book_snapshots`` and ``level_changes`` tables (one message a frame in these recordings): after
    each snapshot, and after each message's changes to a token (one its book accepts: sizes are
    non-negative), a row when the best bid or ask (price or size) changed."""
    events = rows(
        f"select recv_ns, ts_ms, asset_id, market, 0 as snapshot, side, price, size "
        f"from {table(out, 'level_changes')} union all "
        f"select recv_ns, ts_ms, asset_id, market, 1, side, price, size from {table(out, 'book_snapshots')}"
    )
    groups: dict[tuple[int, int, str, str, int], list[tuple[str, str, str]]] = {}
    for recv_ns, ts, asset, market, snapshot, side, price, size in sorted(events, key=lambda e: e[0]):
        groups.setdefault((recv_ns, ts, asset, market, snapshot), []).append((side, price, size))
    books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    last: dict[str, tuple[Any, ...]] = {}
    result = []
    for (recv_ns, ts, asset, market, snapshot), levels in groups.items():
        try:
            parsed = [(side, Decimal(price), Decimal(size)) for side, price, size in levels]
        except InvalidOperation:
            continue
        if any(size < 0 for _, _, size in parsed):
            continue  # refused by the book
        if snapshot:
            books[asset] = {"bid": {}, "ask": {}}
        elif asset not in books:
            continue  # no snapshot yet
        for side, price, size in parsed:
            if size:
                books[asset][side][price] = size
            else:
                books[asset][side].pop(price, None)
        bids, asks = books[asset]["bid"], books[asset]["ask"]
        top = (
            *((format(max(bids), "f"), format(bids[max(bids)], "f")) if bids else (None, None)),
            *((format(min(asks), "f"), format(asks[min(asks)], "f")) if asks else (None, None)),
        )
        if last.get(asset) != top:
            last[asset] = top
            result.append((recv_ns, ts, asset, market, *top))
    return result


def test_every_change_writes_the_rows_of_every_change_of_the_top(every_change: tuple[Path, Any]) -> None:
    out, _ = every_change
    written = rows(
        f"select recv_ns, ts_ms, asset_id, market, best_bid, best_bid_size, best_ask, best_ask_size "
        f"from {table(out, 'top_of_book')}"
    )
    assert sorted(written) == sorted(every_change_rows(out))


def table_rows(out: Path, name: str, lo: int | None = None, hi: int | None = None) -> list[tuple[Any, ...]]:
    if not (out / name).exists():
        return []
    where = "" if lo is None else f" where recv_ns >= {lo} and recv_ns < {hi}"
    return sorted(rows(f"select * exclude (date) from {table(out, name)}{where}"))


@pytest.mark.parametrize("mode", ["bursts", "every change"])
def test_a_window_holds_exactly_the_rows_of_the_whole_export_inside_it(
    exported: tuple[Exchange, Written, Path, Any],
    every_change: tuple[Path, Any],
    mode: str,
    tmp_path: Path,
) -> None:
    whole = exported[2] if mode == "bursts" else every_change[0]
    recording = exported[2].parent / "rec"
    # A trade's burst of several messages, about the middle: windows that end inside it, and after it
    # but before the snapshot and print that follow (its hash waits for them).
    bursts = rows(
        f"select t.recv_ns, list(distinct c.recv_ns order by c.recv_ns) from {table(whole, 'trades')} t "
        f"join {table(whole, 'level_changes')} c on c.ts_ms = t.ts_ms and c.market = t.market "
        f"group by all having count(distinct c.recv_ns) > 1 order by t.recv_ns"
    )
    burst = bursts[len(bursts) // 2][1]
    windows = [
        (MIDNIGHT_NS - 300 * STEP_NS, MIDNIGHT_NS - 200 * STEP_NS),  # 10 ms in the middle
        (MIDNIGHT_NS - 2_000 * STEP_NS, MIDNIGHT_NS + 2_000 * STEP_NS),  # across midnight
        (MIDNIGHT_NS + 2_000 * STEP_NS, MIDNIGHT_NS + 2_000 * STEP_NS + 1),  # one frame
        (burst[0] - 100 * STEP_NS, burst[0] + 1),
        (burst[0] - 100 * STEP_NS, burst[-1] + 1),
    ]
    for n, (lo, hi) in enumerate(windows):
        out = tmp_path / str(n)
        summary = export_parquet(recording, out, from_ns=lo, until_ns=hi, every_change=mode != "bursts")
        for name in TABLES:
            assert table_rows(out, name) == table_rows(whole, name, lo, hi), (name, n)
        assert summary.records < summary.records_read
    assert table_rows(tmp_path / "0", "top_of_book"), "the books were built before the window"
