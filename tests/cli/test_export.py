"""``polyfeed export DIR --parquet OUT``: the tables it says it wrote are there for DuckDB, and a second
export into the same place, a missing option or a directory that is no recording are one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polyfeed.record import recording_info
from tests.cli.conftest import Recorded
from tests.cli.harness import assert_one_line_failure, polyfeed

TABLES = ("book_snapshots", "level_changes", "trades", "top_of_book")


def query(sql: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(sql)
    assert relation is not None
    return relation.fetchall()


def dataset(out: Path, name: str) -> str:
    return f"read_parquet('{out}/{name}/**/*.parquet', hive_partitioning = true)"


def test_export_writes_the_rows_it_reports_partitioned_by_day_and_market(
    recording: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pq"
    result = polyfeed(capsys, "export", str(recording.directory), "--parquet", str(out))
    assert result.code == 0, result.err
    reported = {
        m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^(\w+)\s+([\d,]+)\s*$", result.out, re.M)
    }
    assert set(reported) == set(TABLES)
    for table in TABLES:
        assert query(f"select count(*) from {dataset(out, table)}") == [(reported[table],)]
    assert reported["book_snapshots"] > 0 and reported["level_changes"] > 0
    markets = query(f"select count(distinct market) from {dataset(out, 'top_of_book')}")
    assert markets == [(len(recording.slugs),)]

    again = polyfeed(capsys, "export", str(recording.directory), "--parquet", str(out))
    line = assert_one_line_failure(again, "export")
    assert again.code == 1 and "already holds an export" in line


def test_from_and_until_narrow_the_export(
    recording: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = polyfeed(capsys, "export", str(recording.directory), "--parquet", str(tmp_path / "whole"))
    part = polyfeed(
        capsys, "export", str(recording.directory), "--parquet", str(tmp_path / "part"), "--from", "+1s"
    )
    assert whole.code == 0 and part.code == 0, whole.err + part.err
    counted = [int(re.match(r"exported ([\d,]+) records", r.out)[1].replace(",", "")) for r in (whole, part)]  # type: ignore[index]
    assert 0 < counted[1] < counted[0]


def test_top_of_book_is_verified_at_burst_ends_unless_every_change_is_asked(
    recording: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ends = polyfeed(capsys, "export", str(recording.directory), "--parquet", str(tmp_path / "ends"))
    every = polyfeed(
        capsys, "export", str(recording.directory), "--parquet", str(tmp_path / "every"), "--every-change"
    )
    assert ends.code == 0 and every.code == 0, ends.err + every.err
    counts = {}
    for name, result in (("ends", ends), ("every", every)):
        tops = dataset(tmp_path / name, "top_of_book")
        ((total, verified, crossed),) = query(
            f"select count(*), count(*) filter (where verified), count(*) filter (where verified and "
            f"best_bid::decimal(18, 6) >= best_ask::decimal(18, 6)) from {tops}"
        )
        assert crossed == 0, f"{name}: a verified row is a book the venue's hash vouched for"
        assert f"{verified:,} of {total:,} top-of-book rows verified" in result.out
        counts[name] = (total, verified)
    assert counts["ends"][1] >= 0.9 * counts["ends"][0] > 0
    assert counts["every"][0] >= counts["ends"][0]


def test_a_window_holds_the_rows_the_whole_export_has_inside_it(
    recording: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = polyfeed(capsys, "export", str(recording.directory), "--parquet", str(tmp_path / "whole"))
    part = polyfeed(
        capsys,
        "export",
        str(recording.directory),
        "--parquet",
        str(tmp_path / "part"),
        "--from",
        "+0.5s",
        "--until",
        "+1.5s",
    )
    assert whole.code == 0 and part.code == 0, whole.err + part.err
    first = recording_info(recording.directory).first_ns
    assert first is not None
    lo, hi = first + 500_000_000, first + 1_500_000_000
    for name in TABLES:
        window = f"where recv_ns >= {lo} and recv_ns < {hi}"
        inside = query(f"select * from {dataset(tmp_path / 'whole', name)} {window} order by all")
        got = (
            query(f"select * from {dataset(tmp_path / 'part', name)} order by all")
            if (tmp_path / "part" / name).exists()
            else []
        )
        assert got == inside, name
    assert query(f"select count(*) from {dataset(tmp_path / 'part', 'top_of_book')}") != [(0,)]
    assert "read in all, the books being built from the start" in part.out


def test_not_a_recording_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "export", str(tmp_path), "--parquet", str(tmp_path / "pq"))
    line = assert_one_line_failure(result, "export")
    assert result.code == 1 and "is not a recording" in line


def test_without_parquet_is_one_line_and_exit_2(
    recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "export", str(recording.directory))
    line = assert_one_line_failure(result, "export")
    assert result.code == 2 and "--parquet" in line


def test_a_damaged_recording_is_exported_past_its_losses_each_named_and_exits_3(
    recording: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "rec"
    shutil.copytree(recording.directory, directory)
    (segment,) = directory.glob("seg-*.pfr.zst")
    segment.unlink()  # the index still lists it
    (line,) = [json.loads(x) for x in (directory / "index.jsonl").read_text().splitlines()]
    result = polyfeed(capsys, "export", str(directory), "--parquet", str(tmp_path / "out"))
    lost = f"{line['records']:,} records lost (per the index)"
    assert result.code == 3
    assert result.err.splitlines() == [f"polyfeed export: seg-000001.pfr.zst is missing: {lost}"]
    assert f"1 loss in the recording: {lost}, each named on stderr" in result.out
