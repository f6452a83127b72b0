"""The Parquet export: a recording of the local exchange's frames, read back with DuckDB."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from polyfeed.errors import RecordingError
from polyfeed.record import Channel, Recorder, RecordKind
from polyfeed.record.export import TABLES, export_parquet
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
