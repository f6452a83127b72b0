"""``polyfeed verify DIR``: a line per segment saying what is intact and what is not, exit 0 for an
intact recording and 1 for a damaged one; not a recording is one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polyfeed.record import Recorder
from tests.cli.conftest import Recorded
from tests.cli.harness import assert_one_line_failure, polyfeed
from tests.record.recordings import flip, frame_offsets, index_lines, numbered, segment_files, write_all


def test_an_intact_recording_is_listed_segment_by_segment_and_exits_0(
    recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "verify", str(recording.directory))
    assert result.code == 0 and not result.err, result.err
    *segments, summary = result.out.splitlines()
    (line,) = index_lines(recording.directory)
    assert len(segments) == 1
    assert re.fullmatch(
        rf"seg-000001\.pfr\.zst  intact   \d+ frames?, {line['records']:,} records, [\d.]+ [KM]iB, "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}",
        segments[0],
    ), segments[0]
    assert summary == f"{recording.directory}: intact: 1 segment, {line['records']:,} records"


def test_a_damaged_recording_names_each_segment_and_why_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, numbered(3_000))
    files = segment_files(directory)
    lines = index_lines(directory)
    files[1].unlink()
    starts = frame_offsets(files[2])
    flip(files[2], (starts[1] + starts[2]) // 2 - 8)
    result = polyfeed(capsys, "verify", str(directory))
    assert result.code == 1 and not result.err, result.err
    *segments, summary = result.out.splitlines()
    assert [line.split()[:2] for line in segments] == [
        [f.name, "MISSING" if n == 1 else "DAMAGED" if n == 2 else "intact"] for n, f in enumerate(files)
    ]
    assert segments[1].endswith(
        f"MISSING  missing: index.jsonl lists it with {lines[1]['records']:,} records"
    )
    damaged = segments[2]
    assert f"DAMAGED  damaged at byte {starts[1]} (zstd frame does not decode" in damaged
    assert f"{starts[2] - starts[1]:,} bytes skipped; {len(starts) - 1:,} frames and " in damaged
    lost = re.search(r"; ([\d,]+) records lost \(per the index\)$", damaged)
    assert lost, damaged
    total = int(lines[1]["records"]) + int(lost[1].replace(",", ""))
    assert summary == (
        f"{directory}: NOT INTACT: 1 segment missing, 1 damaged; {3_000 - total:,} records read, "
        f"{total:,} records lost (per the index)"
    )


def test_not_a_recording_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "verify", str(tmp_path))
    line = assert_one_line_failure(result, "verify")
    assert result.code == 1 and "is not a recording" in line
    missing = polyfeed(capsys, "verify", str(tmp_path / "nothing"))
    assert assert_one_line_failure(missing, "verify") and missing.code == 2
