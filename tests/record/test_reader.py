"""Reading recordings: selecting by time with the index, crash tolerance, damage detection, versions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from polyfeed.errors import RecordingFormatError
from polyfeed.record import FORMAT_VERSION, Recorder, read_recording, recording_info
from tests.record.recordings import T0, S, numbered, segment_files, write_all


def test_from_and_until_select_by_receive_time_and_skip_segments_by_the_index(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    records = numbered(2_000, step_ns=10_000_000)
    with Recorder(directory, rotate_s=4.0) as recorder:
        write_all(recorder, records)
    lo, hi = T0 + 9 * S, T0 + 11 * S
    expected = [r for r in records if lo <= r.recv_ns < hi]
    assert list(read_recording(directory, from_ns=lo, until_ns=hi)) == expected
    assert list(read_recording(directory, from_ns=hi)) == [r for r in records if r.recv_ns >= hi]
    assert list(read_recording(directory, until_ns=lo)) == [r for r in records if r.recv_ns < lo]
    # Segments outside the range are not even opened: damage there goes unnoticed by this read.
    files = segment_files(directory)
    assert len(files) == 5
    for outside in (files[0], files[-1]):
        outside.write_bytes(b"damaged")
    assert list(read_recording(directory, from_ns=lo, until_ns=hi)) == expected
    with pytest.raises(RecordingFormatError, match="seg-000001"):
        list(read_recording(directory))


def test_a_truncated_tail_of_the_last_segment_is_tolerated_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A killed recorder: its last segment has no index line and may end inside a frame."""
    directory = tmp_path / "rec"
    records = numbered(3_000, step_ns=1_000_000)
    recorder = Recorder(directory, rotate_bytes=150_000, flush_s=0.1)
    write_all(recorder, records)
    recorder.flush()
    last = segment_files(directory)[-1]
    assert last.name not in (directory / "index.jsonl").read_text(), "the open segment is not indexed"
    complete = list(read_recording(directory))
    assert complete == records
    data = last.read_bytes()
    last.write_bytes(data[:-7])  # the last frame loses its end, as a write cut short leaves it
    caplog.set_level(logging.WARNING, logger="polyfeed.record.reader")
    survived = list(read_recording(directory))
    assert survived == complete[: len(survived)], "a prefix, in order"
    assert len(complete) - len(survived) <= 101, "only the last frame (0.1 s of records) is lost"
    assert len(survived) < len(complete)
    assert len([r for r in caplog.records if "truncated" in r.getMessage()]) == 1, "logged once"
    info = recording_info(directory)
    assert info.truncated_segments == 1
    assert info.records == len(survived)
    last.write_bytes(data + b"\0" * 4096)  # a crash can also leave zeros the file system allocated
    assert list(read_recording(directory)) == complete
    last.write_bytes(b"")  # created, then killed before the first frame
    assert recording_info(directory).truncated_segments == 1
    assert list(read_recording(directory)) == complete[: recording_info(directory).records]
    recorder.close()


def test_truncation_anywhere_but_at_the_end_is_damage(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, numbered(2_000))
    middle = segment_files(directory)[1]
    middle.write_bytes(middle.read_bytes()[:-7])
    with pytest.raises(RecordingFormatError, match=r"seg-000002\.pfr\.zst.*byte offset \d+.*closed segment"):
        list(read_recording(directory))


def test_a_corrupted_byte_in_a_closed_middle_segment_is_reported_with_file_and_offset(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, numbered(3_000))
    files = segment_files(directory)
    assert len(files) >= 3
    middle = files[len(files) // 2]
    for position in (len(middle.read_bytes()) // 2, 6):  # inside compressed data, then a frame header
        original = middle.read_bytes()
        damaged = bytearray(original)
        damaged[position] ^= 0x5A
        middle.write_bytes(bytes(damaged))
        with pytest.raises(RecordingFormatError, match=rf"{middle.name}.*byte offset \d+"):
            list(read_recording(directory))
        middle.write_bytes(original)
    assert len(list(read_recording(directory))) == 3_000


def test_the_last_segment_is_checked_too_except_for_a_cut_tail(tmp_path: Path) -> None:
    """Damage that is not a cut-short end (a bad checksum in the last frame) is not forgiven."""
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, numbered(1_000))
    last = segment_files(directory)[-1]
    damaged = bytearray(last.read_bytes())
    damaged[-6] ^= 0x01
    last.write_bytes(bytes(damaged))
    with pytest.raises(RecordingFormatError, match=last.name):
        list(read_recording(directory))


def test_an_index_that_disagrees_with_a_segment_is_damage(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, numbered(1_000))
    lines = (directory / "index.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["records"] += 1
    lines[0] = json.dumps(first)
    (directory / "index.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingFormatError, match=r"index\.jsonl says"):
        list(read_recording(directory))


def test_a_newer_format_version_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory) as recorder:
        write_all(recorder, numbered(3))
    meta = json.loads((directory / "meta.json").read_text())
    meta["version"] = FORMAT_VERSION + 1
    (directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RecordingFormatError, match=r"version 2.*upgrade polyfeed"):
        read_recording(directory)
    with pytest.raises(RecordingFormatError, match="version 2"):
        recording_info(directory)


def test_a_directory_without_meta_is_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(RecordingFormatError, match="not a recording"):
        read_recording(tmp_path)
