"""Normalized Parquet tables from a recording's market channel, partitioned by day and market.

Four tables, each under ``OUT/<table>/date=YYYY-MM-DD/market=<condition id>/part-NNNNN.parquet``
(the date is the receive time's, in UTC): ``book_snapshots``, ``level_changes``, ``trades`` and
``top_of_book``. Prices and sizes are the venue's own text (exact; cast to ``DECIMAL(18, 6)`` in a
query when arithmetic is needed). The columns are documented in ``docs/recording-format.md``, section
"Parquet export".

Frames are decoded with :func:`polyfeed.wire.decode_market`; the books behind ``top_of_book`` are kept
by :class:`polyfeed.replay.top_of_book.TopOfBook` (a row per burst end, verified by the venue's hash, or
every change), a ``REST`` record's body (a resync's ``GET /book``) applied as a snapshot. A time window
(``from_ns``, ``until_ns``) still builds the books from the recording's start and reads a little past
the window's end, so its rows are exactly the whole export's rows inside it. A frame that does not
decode is counted and skipped, never fatal. Needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from polyfeed.book import price_key
from polyfeed.errors import FrameDecodeError, RecordingError
from polyfeed.record.format import Channel, Damage, RecordKind
from polyfeed.record.reader import read_recording
from polyfeed.replay.top_of_book import Row, TopOfBook
from polyfeed.wire import Book, LastTradePrice, PriceChange, PriceLevel, TickSizeChange, decode_market

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("the Parquet export needs pyarrow: pip install 'polyfeed[parquet]'") from exc

__all__ = ["TABLES", "ExportSummary", "export_parquet"]

_STR = pa.string()
_I64 = pa.int64()

TABLES: dict[str, Any] = {
    "book_snapshots": pa.schema(
        [
            ("recv_ns", _I64),
            ("ts_ms", _I64),
            ("asset_id", _STR),
            ("market", _STR),
            ("side", _STR),
            ("price", _STR),
            ("size", _STR),
            ("level", pa.int32()),
            ("source", _STR),
        ]
    ),
    "level_changes": pa.schema(
        [
            ("recv_ns", _I64),
            ("ts_ms", _I64),
            ("asset_id", _STR),
            ("market", _STR),
            ("side", _STR),
            ("price", _STR),
            ("size", _STR),
            ("hash", _STR),
        ]
    ),
    "trades": pa.schema(
        [
            ("recv_ns", _I64),
            ("ts_ms", _I64),
            ("asset_id", _STR),
            ("market", _STR),
            ("price", _STR),
            ("size", _STR),
            ("side", _STR),
            ("fee_rate_bps", _STR),
            ("transaction_hash", _STR),
        ]
    ),
    "top_of_book": pa.schema(
        [
            ("recv_ns", _I64),
            ("ts_ms", _I64),
            ("asset_id", _STR),
            ("market", _STR),
            ("best_bid", _STR),
            ("best_bid_size", _STR),
            ("best_ask", _STR),
            ("best_ask_size", _STR),
            ("verified", pa.bool_()),
        ]
    ),
}
"""Each table's Arrow schema, in column order."""

_NAMES = tuple(TABLES)
_SNAPSHOTS, _CHANGES, _TRADES, _TOPS = range(4)
_SIDES = {"BUY": "bid", "SELL": "ask"}
_NS_PER_DAY = 86_400 * 10**9
_NEVER_NS = 2**63 - 1
_ROWS_BEFORE_WRITING = 500_000  # buffered rows (all tables) that make the export write files
_CHECK_EVERY = 4096  # records between checks of the buffered row count


class ExportSummary(msgspec.Struct, frozen=True):
    """What :func:`export_parquet` did.

    Counts are of the records inside the time window; ``records_read`` adds those read to build the
    books (from the recording's start) and to decide the window's last top-of-book rows.

    Attributes:
        rows: rows written per table.
        records: records in the window (every kind and channel).
        frames: market-channel frames among them.
        frames_skipped: frames that did not decode (counted, skipped).
        messages: market messages decoded from the frames.
        messages_rejected: ``book`` or ``price_change`` messages a book refused (an invalid price or
            size); their level-change rows are still written, as the wire had them.
        rest_snapshots: REST book bodies applied as snapshots (resyncs).
        rest_skipped: REST records whose body was not a book.
        files: Parquet files written.
        records_read: records read in all.
        tops_verified: ``top_of_book`` rows whose book the venue's hash verified.
    """

    rows: dict[str, int]
    records: int
    frames: int
    frames_skipped: int
    messages: int
    messages_rejected: int
    rest_snapshots: int
    rest_skipped: int
    files: int
    records_read: int = 0
    tops_verified: int = 0


class _RestRecord(msgspec.Struct, frozen=True):
    asset_id: str
    body: str


_REST_DECODER = msgspec.json.Decoder(_RestRecord)
_BOOK_DECODER = msgspec.json.Decoder(Book)


class _Partition:
    """Buffered rows of one ``date=/market=`` partition: per table, a Python list per column."""

    __slots__ = ("columns", "date", "files", "market")

    def __init__(self, date: str, market: str) -> None:
        self.date = date
        self.market = market
        self.columns: tuple[list[list[Any]], ...] = tuple([[] for _ in TABLES[name].names] for name in _NAMES)
        self.files = [0, 0, 0, 0]


def _ms(timestamp: str) -> int | None:
    try:
        return int(timestamp)
    except ValueError:
        return None


def _partition_dir(market: str) -> str:
    """A condition id as a Hive partition value: kept as it is when it is a safe path component."""
    value = quote(market, safe="") if market else "unknown"
    if not value.strip("."):
        value = value.replace(".", "%2E")
    return value


class _Exporter:
    def __init__(self, out_dir: Path, from_ns: int, until_ns: int, *, every_change: bool) -> None:
        self.out_dir = out_dir
        self.from_ns = from_ns
        self.until_ns = until_ns
        self.tops = TopOfBook(self.top, every_change=every_change)
        self.partitions: dict[tuple[int, str], _Partition] = {}
        self.days: dict[int, str] = {}
        self.rows = [0, 0, 0, 0]
        self.files = 0
        self.records = 0
        self.records_read = 0
        self.tops_verified = 0
        self.frames = 0
        self.frames_skipped = 0
        self.messages = 0
        self.messages_rejected = 0
        self.rest_snapshots = 0
        self.rest_skipped = 0

    def partition(self, recv_ns: int, market: str) -> _Partition:
        day = recv_ns // _NS_PER_DAY
        part = self.partitions.get((day, market))
        if part is None:
            date = self.days.get(day)
            if date is None:
                date = datetime.datetime.fromtimestamp(day * 86_400, datetime.UTC).date().isoformat()
                self.days[day] = date
            part = self.partitions[(day, market)] = _Partition(date, market)
        return part

    # -- records: ``inside`` says whether the record is in the window (its rows are written) ------------

    def frame(self, recv_ns: int, payload: bytes, inside: bool) -> None:
        self.frames += inside
        try:
            messages = decode_market(payload)
        except FrameDecodeError:
            self.frames_skipped += inside
            return
        self.messages += len(messages) if inside else 0
        tops = self.tops
        for message in messages:
            cls = message.__class__
            if cls is PriceChange:
                self.price_change(recv_ns, message, inside)  # type: ignore[arg-type]
            elif cls is Book:
                self.snapshot(recv_ns, message, "ws", inside)  # type: ignore[arg-type]
            elif cls is LastTradePrice:
                if inside:
                    self.trade(recv_ns, message)  # type: ignore[arg-type]
                tops.trade(message)  # type: ignore[arg-type]
            elif cls is TickSizeChange:
                tops.tick_size_change(message)  # type: ignore[arg-type]

    def rest(self, recv_ns: int, payload: bytes, inside: bool) -> None:
        try:
            record = _REST_DECODER.decode(payload)
            body = _BOOK_DECODER.decode(record.body)
        except msgspec.DecodeError:
            self.rest_skipped += inside
            return
        if body.asset_id != record.asset_id:
            self.rest_skipped += inside
            return
        self.rest_snapshots += inside
        self.snapshot(recv_ns, body, "rest", inside)

    # -- messages ------------------------------------------------------------------------------------

    def price_change(self, recv_ns: int, message: PriceChange, inside: bool) -> None:
        rejected = self.tops.price_change(recv_ns, message)
        if not inside:
            return
        self.messages_rejected += rejected
        market = message.market
        columns = self.partition(recv_ns, market).columns[_CHANGES]
        recv_col, ts_col, asset_col, market_col, side_col, price_col, size_col, hash_col = columns
        ts = _ms(message.timestamp)
        sides = _SIDES
        for e in message.price_changes:
            recv_col.append(recv_ns)
            ts_col.append(ts)
            asset_col.append(e.asset_id)
            market_col.append(market)
            side_col.append(sides.get(e.side, e.side))
            price_col.append(e.price)
            size_col.append(e.size)
            hash_col.append(e.hash)

    def snapshot(self, recv_ns: int, message: Book, source: str, inside: bool) -> None:
        market = self.tops.snapshot(recv_ns, message)
        if not inside:
            return
        if market is None:
            self.messages_rejected += 1
            return
        columns = self.partition(recv_ns, market).columns[_SNAPSHOTS]
        bids = _best_first(message.bids, True)
        asks = _best_first(message.asks, False)
        n = len(bids) + len(asks)
        values = (recv_ns, _ms(message.timestamp), message.asset_id, market)
        for column, value in zip(columns[:4], values, strict=True):
            column.extend([value] * n)
        columns[4].extend(["bid"] * len(bids) + ["ask"] * len(asks))
        columns[5].extend([lv.price for lv in bids] + [lv.price for lv in asks])
        columns[6].extend([lv.size for lv in bids] + [lv.size for lv in asks])
        columns[7].extend([*range(len(bids)), *range(len(asks))])
        columns[8].extend([source] * n)

    def trade(self, recv_ns: int, message: LastTradePrice) -> None:
        row = (
            recv_ns,
            _ms(message.timestamp),
            message.asset_id,
            message.market,
            message.price,
            message.size,
            message.side,
            message.fee_rate_bps or None,
            message.transaction_hash or None,
        )
        for column, value in zip(self.partition(recv_ns, message.market).columns[_TRADES], row, strict=True):
            column.append(value)

    def top(self, row: Row) -> None:
        """A ``top_of_book`` row from :class:`TopOfBook`, written when it lies in the window."""
        recv_ns = row[0]
        if not self.from_ns <= recv_ns < self.until_ns:
            return
        self.tops_verified += row[8]
        for column, value in zip(self.partition(recv_ns, row[3]).columns[_TOPS], row, strict=True):
            column.append(value)

    # -- files ---------------------------------------------------------------------------------------

    def buffered(self) -> int:
        return sum(len(columns[0]) for part in self.partitions.values() for columns in part.columns)

    def write(self) -> None:
        """Write every partition's buffered rows as one new file per table, then forget them."""
        for part in self.partitions.values():
            for table, columns in enumerate(part.columns):
                n = len(columns[0])
                if not n:
                    continue
                schema = TABLES[_NAMES[table]]
                arrays = [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)]
                directory = (
                    self.out_dir
                    / _NAMES[table]
                    / f"date={part.date}"
                    / f"market={_partition_dir(part.market)}"
                )
                directory.mkdir(parents=True, exist_ok=True)
                path = directory / f"part-{part.files[table]:05d}.parquet"
                pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="zstd")
                part.files[table] += 1
                self.files += 1
                self.rows[table] += n
                for column in columns:
                    column.clear()

    def summary(self) -> ExportSummary:
        return ExportSummary(
            rows=dict(zip(_NAMES, self.rows, strict=True)),
            records=self.records,
            frames=self.frames,
            frames_skipped=self.frames_skipped,
            messages=self.messages,
            messages_rejected=self.messages_rejected,
            rest_snapshots=self.rest_snapshots,
            rest_skipped=self.rest_skipped,
            files=self.files,
            records_read=self.records_read,
            tops_verified=self.tops_verified,
        )


def _best_first(levels: list[PriceLevel], bids: bool) -> list[PriceLevel]:
    """Levels best first. The venue sends the best last (bids ascending, asks descending); sorting
    rather than reversing keeps level 0 the best even for a snapshot out of wire order."""
    return sorted(levels, key=lambda lv: price_key(lv.price), reverse=bids)


def export_parquet(
    recording_dir: str | Path,
    out_dir: str | Path,
    *,
    from_ns: int | None = None,
    until_ns: int | None = None,
    every_change: bool = False,
    on_progress: Callable[[int], None] | None = None,
    on_damage: Callable[[Damage], None] | None = None,
) -> ExportSummary:
    """Export a recording's market channel as four Parquet tables under ``out_dir``.

    Args:
        recording_dir: the recording.
        out_dir: where the tables go; created if missing. It must not hold an export already.
        from_ns: only rows of records received at or after this time (ns since the epoch); the books
            are still built from the recording's start.
        until_ns: only rows of records received before this time.
        every_change: a ``top_of_book`` row at every change of a best bid or ask, the states inside a
            burst included, instead of at the burst ends the venue's hash vouches for.
        on_progress: called with the number of records read so far, every few thousand records.
        on_damage: called with each loss in a damaged recording, which is read past
            (:func:`~polyfeed.record.reader.read_recording`; ``None``: logged).

    Returns:
        Rows per table, and what was skipped.

    Raises:
        RecordingError: ``out_dir`` already holds a table, or the recording cannot be read
            (:class:`polyfeed.errors.RecordingFormatError`: not a recording, or a newer version).
    """
    out = Path(out_dir)
    taken = [name for name in _NAMES if (out / name).exists()]
    if taken:
        raise RecordingError(f"{out} already holds an export ({', '.join(taken)}); export into a new one")
    records = read_recording(recording_dir, on_damage=on_damage)
    out.mkdir(parents=True, exist_ok=True)
    lo = -1 if from_ns is None else from_ns
    hi = _NEVER_NS if until_ns is None else until_ns
    exporter = _Exporter(out, lo, hi, every_change=every_change)
    tops = exporter.tops
    frame_kind = int(RecordKind.FRAME)
    rest_kind = int(RecordKind.REST)
    marker_kind = int(RecordKind.MARKER)
    market = int(Channel.MARKET)
    count = 0
    inside_count = 0
    for record in records:
        recv_ns = record.recv_ns
        tops.advance(recv_ns)
        # Past the window, read on only until every top of book inside it has its verdict.
        if recv_ns >= hi and not tops.undecided_before(hi):
            break
        count += 1
        inside = lo <= recv_ns < hi
        inside_count += inside
        if record.channel == market:
            kind = record.kind
            if kind == frame_kind:
                exporter.frame(recv_ns, record.payload, inside)
            elif kind == rest_kind:
                exporter.rest(recv_ns, record.payload, inside)
            elif kind == marker_kind:
                tops.metadata_marker(record.payload)
        if not count % _CHECK_EVERY:
            if exporter.buffered() >= _ROWS_BEFORE_WRITING:
                exporter.write()
            if on_progress is not None:
                on_progress(count)
    tops.finish()
    exporter.records = inside_count
    exporter.records_read = count
    exporter.write()
    return exporter.summary()
