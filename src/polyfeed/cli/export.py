"""``polyfeed export DIR --parquet OUT``: a recording's market channel as four normalized Parquet tables
(book snapshots, level changes, trades, top of book), partitioned by day and market, for DuckDB,
Polars or pandas. The tables and their columns: ``docs/recording-format.md``, "Parquet export".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from polyfeed.cli.errors import EXIT_FAILURE, describe, fail
from polyfeed.cli.recording import FromTime, RecordingDir, UntilTime, resolve_window
from polyfeed.cli.terminal import out_console, progress_to
from polyfeed.cli.verify import DamageReport
from polyfeed.errors import PolyfeedError
from polyfeed.record import recording_info

__all__ = ["EPILOG", "export_command"]

EPILOG = """**Examples**

* `polyfeed export rec/fed --parquet pq/fed`
* `polyfeed export rec/fed --parquet pq/fed-hour --from +0s --until +1h`
* `polyfeed export rec/fed --parquet pq/fed-all-states --every-change`
* `duckdb -c "select * from 'pq/fed/trades/**/*.parquet' order by recv_ns"`
"""


def export_command(
    directory: RecordingDir,
    parquet: Annotated[
        Path,
        typer.Option(
            "--parquet",
            metavar="OUT",
            help="Write the Parquet tables under this directory (created; it must not hold an export).",
            file_okay=False,
            show_default=False,
        ),
    ],
    from_time: FromTime = None,
    until_time: UntilTime = None,
    every_change: Annotated[
        bool,
        typer.Option(
            "--every-change",
            help="top_of_book: a row at every change of a best bid or ask, the crossed states inside a "
            "trade's burst included (their verified is false), instead of at burst ends.",
        ),
    ] = False,
) -> None:
    """Export a recording as Parquet tables: book snapshots, level changes, trades, top of book.

    Each table sits under OUT/TABLE/date=YYYY-MM-DD/market=CONDITION_ID/, prices and sizes as the
    venue's exact text. Needs pyarrow (`pip install 'polyfeed[parquet]'`).

    top_of_book has recv_ns, ts_ms, asset_id, market, best_bid, best_bid_size, best_ask,
    best_ask_size (null for an empty side) and verified. A trade sends a burst of price changes in
    which the book is briefly crossed; only the burst's end carries the venue's book hash. So a row is
    written at each burst end and snapshot (when the top or verified changes), and verified says
    whether the venue's hash matched that book: filter on it to leave out states nothing vouches for.

    With --from/--until the books are still built from the recording's start (the rows are those a
    whole export has in the window).

    A damaged recording is exported past the damage: each missing or damaged segment is a line on
    stderr, and the exit status is 3 (`polyfeed verify DIR` checks a recording).
    """
    try:
        from polyfeed.replay.export import export_parquet
    except ImportError as exc:
        raise fail("export", str(exc), EXIT_FAILURE) from None
    console = out_console()
    damage = DamageReport("export")  # a loss is a line on stderr; the export goes on, and exits 3
    started = time.perf_counter()
    try:
        info = recording_info(directory)
        from_ns, until_ns = resolve_window("export", info, from_time, until_time)
        with progress_to(console, f"exporting {directory}", info.records) as done:
            summary = export_parquet(
                directory,
                parquet,
                from_ns=from_ns,
                until_ns=until_ns,
                every_change=every_change,
                on_progress=done,
                on_damage=damage,
            )
    except (PolyfeedError, OSError) as exc:
        raise fail("export", describe(exc)) from None
    except KeyboardInterrupt:
        sys.stderr.write(f"polyfeed export: interrupted; {parquet} holds part of the export\n")
        raise typer.Exit(130) from None
    elapsed = time.perf_counter() - started
    rate = summary.records_read / elapsed if elapsed else 0.0
    built = (
        f"; {summary.records_read:,} read in all, the books being built from the start"
        if summary.records_read != summary.records
        else ""
    )
    console.print(
        f"exported {summary.records:,} records ({summary.messages:,} messages) into {summary.files} files "
        f"under {parquet} in {elapsed:.1f} s ({rate:,.0f} records/s{built})",
        soft_wrap=True,
    )
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    tops = summary.rows["top_of_book"]
    if tops:
        console.print(
            f"{summary.tops_verified:,} of {tops:,} top-of-book rows verified by the venue's book hash "
            f"({summary.tops_verified / tops:.0%})",
            soft_wrap=True,
        )
    skipped = summary.frames_skipped + summary.rest_skipped
    if skipped or summary.messages_rejected:
        console.print(
            f"skipped {summary.frames_skipped} frames that did not decode and {summary.rest_skipped} REST "
            f"records that were not books; {summary.messages_rejected} messages a book refused (their "
            "level changes are in the table as the wire had them)",
            soft_wrap=True,
        )
    if damage.losses:
        console.print(f"{damage.summary()}, each named on stderr", markup=False, soft_wrap=True)
    damage.exit()
