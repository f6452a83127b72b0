"""Checking a recording through: what is intact and what is not, segment by segment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard

from polyfeed.errors import RecordingFormatError
from polyfeed.record import Recorder
from polyfeed.record.verify import verify_recording
from tests.record.recordings import flip, frame_offsets, index_lines, numbered, segment_files, write_all


def test_an_intact_recording_agrees_with_its_index_segment_by_segment(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    records = numbered(3_000)
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, records)
    found = verify_recording(directory)
    assert found.intact and found.records == 3_000 and found.records_lost == 0
    lines = index_lines(directory)
    assert [s.name for s in found.segments] == [line["name"] for line in lines]
    for check, line, path in zip(found.segments, lines, segment_files(directory), strict=True):
        assert check.intact and check.present and not check.problems and not check.notes
        assert (check.records, check.first_ns, check.last_ns, check.size) == (
            line["records"],
            line["first_ns"],
            line["last_ns"],
            path.stat().st_size,
        )
        assert check.frames == check.checksummed == len(frame_offsets(path))
    assert sum(s.frames for s in found.segments) > len(found.segments), "segments of several frames"


def test_each_damage_is_found_in_its_segment(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, numbered(5_000))
    files = segment_files(directory)
    lines = index_lines(directory)
    assert len(files) >= 6
    files[1].unlink()
    starts = frame_offsets(files[2])
    flip(files[2], (starts[1] + starts[2]) // 2)
    files[3].write_bytes(files[3].read_bytes()[:-5])
    changed = dict(lines[4], first_ns=int(lines[4]["first_ns"]) - 1)
    text = "".join(json.dumps(changed if line is lines[4] else line) + "\n" for line in lines)
    (directory / "index.jsonl").write_text(text)
    found = verify_recording(directory)
    assert not found.intact
    checks = {s.name: s for s in found.segments}
    intact = [s.name for s in found.segments if s.intact]
    assert intact == [files[0].name] + [f.name for f in files[5:]]
    missing = checks[files[1].name]
    assert not missing.present and missing.records_lost == lines[1]["records"]
    assert missing.problems == (f"missing: index.jsonl lists it with {lines[1]['records']:,} records",)
    (flipped,) = checks[files[2].name].problems
    assert flipped.startswith(f"damaged at byte {starts[1]} (zstd frame does not decode")
    assert flipped.endswith(f"{starts[2] - starts[1]:,} bytes skipped")
    (cut,) = checks[files[3].name].problems
    assert cut.startswith("damaged at byte") and "the rest" in cut
    assert checks[files[4].name].problems == (
        f"index.jsonl says first_ns {changed['first_ns']}, the file has {lines[4]['first_ns']}",
    )
    lost = sum(s.records_lost or 0 for s in found.segments)
    assert found.records_lost == lost == 5_000 - found.records


def test_a_gap_in_the_numbering_is_a_missing_segment(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=20_000) as recorder:
        write_all(recorder, numbered(1_000))
    files = segment_files(directory)
    lines = index_lines(directory)
    for path in files[1:3]:
        path.unlink()
    (directory / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [lines[0], *lines[3:]]))
    found = verify_recording(directory)
    gap = found.segments[1]
    assert (gap.name, gap.present, gap.segments, gap.records_lost) == (files[1].name, False, 2, None)
    assert gap.problems == ("missing: a gap in the numbering (2 segments in a row, not in index.jsonl)",)
    assert [s.intact for s in found.segments] == [True, False] + [True] * (len(files) - 3)


def test_a_killed_recorders_tail_and_frames_without_checksum_are_noted_not_damage(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = Recorder(directory, flush_s=0.05)
    recorder._cctx = zstandard.ZstdCompressor(level=3)  # as a writer without checksums made them
    write_all(recorder, numbered(500))
    recorder.flush()
    (segment,) = segment_files(directory)
    segment.write_bytes(segment.read_bytes()[:-3])
    found = verify_recording(directory)
    (check,) = found.segments
    assert found.intact and check.records < 500
    assert check.notes == (
        "ends in a frame cut short, as a killed recorder leaves it",
        f"{check.frames} of {check.frames} frames carry no checksum: damage inside them may go unnoticed",
    )
    recorder.close()


def test_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(RecordingFormatError, match="not a recording"):
        verify_recording(tmp_path)
