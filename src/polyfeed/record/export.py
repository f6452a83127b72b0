"""Normalized Parquet tables from a recording's market channel, partitioned by day and market.

Four tables, each under ``OUT/<table>/date=YYYY-MM-DD/market=<condition id>/part-NNNNN.parquet``
(the date is the receive time's, in UTC): ``book_snapshots``, ``level_changes``, ``trades`` and
``top_of_book``. Prices and sizes are the venue's own text (exact; cast to ``DECIMAL(18, 6)`` in a
query when arithmetic is needed). The columns are documented in ``docs/recording-format.md``, section
"Parquet export".

Frames are decoded with :func:`polyfeed.wire.decode_market` and applied to one
:class:`polyfeed.book.OrderBook` per asset, which gives the top of book; a ``REST`` record's body (a
resync's ``GET /book``) is applied as a snapshot. A frame that does not decode is counted and skipped,
never fatal. Needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from polyfeed.book import Level, OrderBook, price_key
from polyfeed.errors import BookError, FrameDecodeError, RecordingError
from polyfeed.record.format import Channel, RecordKind
from polyfeed.record.reader import read_recording
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
        ]
    ),
}
"""Each table's Arrow schema, in column order."""

_NAMES = tuple(TABLES)
_SNAPSHOTS, _CHANGES, _TRADES, _TOPS = range(4)
_SIDES = {"BUY": "bid", "SELL": "ask"}
_NS_PER_DAY = 86_400 * 10**9
_ROWS_BEFORE_WRITING = 500_000  # buffered rows (all tables) that make the export write files
_CHECK_EVERY = 4096  # records between checks of the buffered row count


class ExportSummary(msgspec.Struct, frozen=True):
    """What :func:`export_parquet` did.

    Attributes:
        rows: rows written per table.
        records: records read from the recording (every kind and channel).
        frames: market-channel frames among them.
        frames_skipped: frames that did not decode (counted, skipped).
        messages: market messages decoded from the frames.
        messages_rejected: ``book`` or ``price_change`` messages a book refused (an invalid price or
            size); their level-change rows are still written, as the wire had them.
        rest_snapshots: REST book bodies applied as snapshots (resyncs).
        rest_skipped: REST records whose body was not a book.
        files: Parquet files written.
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


def _text(value: Any) -> str:
    return format(value, "f")


def _partition_dir(market: str) -> str:
    """A condition id as a Hive partition value: kept as it is when it is a safe path component."""
    value = quote(market, safe="") if market else "unknown"
    if not value.strip("."):
        value = value.replace(".", "%2E")
    return value


class _Exporter:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.books: dict[str, OrderBook] = {}
        self.tops: dict[str, tuple[Level | None, Level | None]] = {}
        self.partitions: dict[tuple[int, str], _Partition] = {}
        self.days: dict[int, str] = {}
        self.rows = [0, 0, 0, 0]
        self.files = 0
        self.records = 0
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

    def book(self, asset_id: str, market: str) -> OrderBook:
        book = self.books.get(asset_id)
        if book is None:
            # Hashes are not checked: the export reads levels, and a recording may predate the
            # metadata the hash needs.
            book = self.books[asset_id] = OrderBook(asset_id, market=market, verify_hash=False)
        return book

    # -- records -------------------------------------------------------------------------------------

    def frame(self, recv_ns: int, payload: bytes) -> None:
        self.frames += 1
        try:
            messages = decode_market(payload)
        except FrameDecodeError:
            self.frames_skipped += 1
            return
        self.messages += len(messages)
        for message in messages:
            cls = message.__class__
            if cls is PriceChange:
                self.price_change(recv_ns, message)  # type: ignore[arg-type]
            elif cls is Book:
                self.snapshot(recv_ns, message, "ws")  # type: ignore[arg-type]
            elif cls is LastTradePrice:
                self.trade(recv_ns, message)  # type: ignore[arg-type]
            elif cls is TickSizeChange:
                book = self.books.get(message.asset_id)  # type: ignore[union-attr]
                if book is not None:
                    book.apply(message)

    def rest(self, recv_ns: int, payload: bytes) -> None:
        try:
            record = _REST_DECODER.decode(payload)
            body = _BOOK_DECODER.decode(record.body)
        except msgspec.DecodeError:
            self.rest_skipped += 1
            return
        if body.asset_id != record.asset_id:
            self.rest_skipped += 1
            return
        self.rest_snapshots += 1
        self.snapshot(recv_ns, body, "rest")

    # -- messages ------------------------------------------------------------------------------------

    def price_change(self, recv_ns: int, message: PriceChange) -> None:
        market = message.market
        part = self.partition(recv_ns, market)
        columns = part.columns[_CHANGES]
        recv_col, ts_col, asset_col, market_col, side_col, price_col, size_col, hash_col = columns
        ts = _ms(message.timestamp)
        assets: list[str] = []
        sides = _SIDES
        for e in message.price_changes:
            asset = e.asset_id
            recv_col.append(recv_ns)
            ts_col.append(ts)
            asset_col.append(asset)
            market_col.append(market)
            side_col.append(sides.get(e.side, e.side))
            price_col.append(e.price)
            size_col.append(e.size)
            hash_col.append(e.hash)
            if asset not in assets:
                assets.append(asset)
        for asset in assets:
            book = self.book(asset, market)
            try:
                changed = book.apply_price_change(message)
            except BookError:
                self.messages_rejected += 1
                continue
            if changed:
                self.top(book, part, recv_ns, ts)

    def snapshot(self, recv_ns: int, message: Book, source: str) -> None:
        asset = message.asset_id
        book = self.book(asset, message.market)
        try:
            book.apply(message)
        except BookError:
            self.messages_rejected += 1
            return
        market = message.market or book.market
        part = self.partition(recv_ns, market)
        columns = part.columns[_SNAPSHOTS]
        ts = _ms(message.timestamp)
        bids = _best_first(message.bids, True)
        asks = _best_first(message.asks, False)
        n = len(bids) + len(asks)
        for column, value in zip(columns[:4], (recv_ns, ts, asset, market), strict=True):
            column.extend([value] * n)
        columns[4].extend(["bid"] * len(bids) + ["ask"] * len(asks))
        columns[5].extend([lv.price for lv in bids] + [lv.price for lv in asks])
        columns[6].extend([lv.size for lv in bids] + [lv.size for lv in asks])
        columns[7].extend([*range(len(bids)), *range(len(asks))])
        columns[8].extend([source] * n)
        self.top(book, part, recv_ns, ts)

    def trade(self, recv_ns: int, message: LastTradePrice) -> None:
        # The book is not told: a print changes no level, and hashes are not checked here.
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

    def top(self, book: OrderBook, part: _Partition, recv_ns: int, ts: int | None) -> None:
        bid = book.best_bid
        ask = book.best_ask
        state = (bid, ask)
        asset = book.asset_id
        if self.tops.get(asset) == state:
            return
        self.tops[asset] = state
        columns = part.columns[_TOPS]
        recv_col, ts_col, asset_col, market_col, bid_col, bid_size_col, ask_col, ask_size_col = columns
        recv_col.append(recv_ns)
        ts_col.append(ts)
        asset_col.append(asset)
        market_col.append(part.market)
        bid_col.append(None if bid is None else _text(bid.price))
        bid_size_col.append(None if bid is None else _text(bid.size))
        ask_col.append(None if ask is None else _text(ask.price))
        ask_size_col.append(None if ask is None else _text(ask.size))

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
    on_progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Export a recording's market channel as four Parquet tables under ``out_dir``.

    Args:
        recording_dir: the recording.
        out_dir: where the tables go; created if missing. It must not hold an export already.
        from_ns: only records received at or after this time (ns since the epoch); books start from
            the snapshots after it.
        until_ns: only records received before this time.
        on_progress: called with the number of records read so far, every few thousand records.

    Returns:
        Rows per table, and what was skipped.

    Raises:
        RecordingError: ``out_dir`` already holds a table, or the recording cannot be read
            (:class:`polyfeed.errors.RecordingFormatError` for a damaged one).
    """
    out = Path(out_dir)
    taken = [name for name in _NAMES if (out / name).exists()]
    if taken:
        raise RecordingError(f"{out} already holds an export ({', '.join(taken)}); export into a new one")
    records = read_recording(recording_dir, from_ns=from_ns, until_ns=until_ns)
    out.mkdir(parents=True, exist_ok=True)
    exporter = _Exporter(out)
    frame_kind = int(RecordKind.FRAME)
    rest_kind = int(RecordKind.REST)
    market = int(Channel.MARKET)
    count = 0
    for record in records:
        count += 1
        if record.channel == market:
            kind = record.kind
            if kind == frame_kind:
                exporter.frame(record.recv_ns, record.payload)
            elif kind == rest_kind:
                exporter.rest(record.recv_ns, record.payload)
        if not count % _CHECK_EVERY:
            if exporter.buffered() >= _ROWS_BEFORE_WRITING:
                exporter.write()
            if on_progress is not None:
                on_progress(count)
    exporter.records = count
    exporter.write()
    return exporter.summary()
