"""``polyfeed export DIR --parquet OUT``: the tables it says it wrote are there for DuckDB, and a second
export into the same place, a missing option or a directory that is no recording are one line."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.cli.conftest import Recorded
from tests.cli.harness import assert_one_line_failure, polyfeed

TABLES = ("book_snapshots", "level_changes", "trades", "top_of_book")


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
        rows = duckdb.sql(
            f"select count(*) from read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true)"
        )
        assert rows.fetchall() == [(reported[table],)]
    assert reported["book_snapshots"] > 0 and reported["level_changes"] > 0
    markets = duckdb.sql(f"select count(distinct market) from read_parquet('{out}/top_of_book/**/*.parquet')")
    assert markets.fetchall() == [(len(recording.slugs),)]

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
