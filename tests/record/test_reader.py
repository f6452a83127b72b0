"""Reading recordings: selecting by time with the index, crash tolerance, damage found and survived
(missing segments, damaged frames, an index that disagrees), versions."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import zstandard

from polyfeed.errors import RecordingFormatError
from polyfeed.record import FORMAT_VERSION, Record, Recorder, read_recording, recording_info
from tests.record.recordings import (
    T0,
    S,
    flip,
    frame_offsets,
    index_lines,
    is_gap,
    numbered,
    read_all,
    segment_files,
    without_gaps,
    write_all,
)


def seqs(records: list[Record]) -> list[int]:
    return [json.loads(r.payload)["seq"] for r in without_gaps(records)]


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
    assert read_all(directory, from_ns=lo, until_ns=hi) == (expected, [])
    survived, damages = read_all(directory)
    assert [(d.segment, d.problem, d.rest_skipped) for d in damages] == [
        (files[0].name, "damaged", True),
        (files[-1].name, "damaged", True),
    ]
    lines = index_lines(directory)
    assert [d.records_lost for d in damages] == [lines[0]["records"], lines[-1]["records"]]
    middle = records[int(lines[0]["records"]) : len(records) - int(lines[-1]["records"])]
    assert without_gaps(survived) == middle
    assert [is_gap(r) for r in survived] == [True] + [False] * len(middle) + [True]


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
    survived, damages = read_all(directory)
    assert damages == [] and not any(is_gap(r) for r in survived), "a killed recorder's tail is no damage"
    assert survived == complete[: len(survived)], "a prefix, in order"
    assert len(complete) - len(survived) <= 101, "only the last frame (0.1 s of records) is lost"
    assert len(survived) < len(complete)
    assert len([r for r in caplog.records if "truncated" in r.getMessage()]) == 1, "logged once"
    info = recording_info(directory)
    assert info.truncated_segments == 1
    assert info.records == len(survived)
    last.write_bytes(data + b"\0" * 4096)  # a crash can also leave zeros the file system allocated
    assert read_all(directory) == (complete, [])
    last.write_bytes(b"")  # created, then killed before the first frame
    assert recording_info(directory).truncated_segments == 1
    assert read_all(directory) == (complete[: recording_info(directory).records], [])
    recorder.close()


def test_a_closed_segment_cut_short_loses_its_tail_and_reading_goes_on(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    records = numbered(2_000)
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, records)
    middle = segment_files(directory)[1]
    size = middle.stat().st_size
    middle.write_bytes(middle.read_bytes()[:-7])
    survived, damages = read_all(directory)
    (damage,) = damages
    assert damage.segment == middle.name and damage.problem == "damaged" and damage.rest_skipped
    assert damage.detail == "the file ends inside a zstd frame"
    assert damage.offset is not None and damage.bytes_skipped == size - 7 - damage.offset
    lines = index_lines(directory)
    first, second = int(lines[0]["records"]), int(lines[1]["records"])
    assert damage.records_lost == second, "the segment is one frame: all of it is lost"
    assert without_gaps(survived) == records[:first] + records[first + second :]
    gap = survived[first]
    assert is_gap(gap) and gap.recv_ns == records[first - 1].recv_ns, "at the loss, in the last one's time"
    assert "seg-000002.pfr.zst is damaged at byte" in json.loads(gap.payload)["reason"]
    assert damage.describe() == (
        f"seg-000002.pfr.zst is damaged at byte {damage.offset} (the file ends inside a zstd frame): "
        f"the rest of the segment skipped ({damage.bytes_skipped:,} bytes), {second:,} records lost "
        "(per the index)"
    )


def test_sixteen_flipped_bytes_lose_one_frame_and_the_rest_of_the_segment_reads(tmp_path: Path) -> None:
    """The frame's checksum (or its decoder) finds the damage; the reader skips to the next frame that
    decodes whole and goes on in the same segment."""
    directory = tmp_path / "rec"
    records = numbered(3_000)
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, records)
    files = segment_files(directory)
    assert len(files) >= 3
    middle = files[len(files) // 2]
    starts = frame_offsets(middle)
    assert len(starts) >= 4, "several frames in the segment"
    damaged_frame = len(starts) // 2
    at = (starts[damaged_frame] + starts[damaged_frame + 1]) // 2 - 8
    original = middle.read_bytes()
    flip(middle, at)
    survived, damages = read_all(directory)
    (damage,) = damages
    assert damage.segment == middle.name and damage.problem == "damaged" and not damage.rest_skipped
    assert damage.offset == starts[damaged_frame] and damage.regions == 1
    assert damage.bytes_skipped == starts[damaged_frame + 1] - starts[damaged_frame]
    numbers = seqs(survived)
    lost_from = next(i for i, n in enumerate(numbers) if n != i)
    lost = int(numbers[lost_from]) - lost_from
    assert lost > 0 and damage.records_lost == lost, "the index says how many the frame held"
    assert numbers == list(range(lost_from)) + list(range(lost_from + lost, 3_000)), "only that frame"
    assert is_gap(survived[lost_from]) and sum(map(is_gap, survived)) == 1
    assert f"1 damaged stretch skipped ({damage.bytes_skipped:,} bytes), {lost:,} records lost" in (
        damage.describe()
    )

    middle.write_bytes(original)
    flip(middle, 6, 1)  # the first frame's header: the segment header goes with it
    survived, damages = read_all(directory)
    (damage,) = damages
    assert damage.offset == 0 and damage.bytes_skipped == starts[1]
    assert len(without_gaps(survived)) == 3_000 - (damage.records_lost or 0)
    middle.write_bytes(original)
    assert read_all(directory) == (records, [])


def test_the_last_segment_is_checked_too_except_for_a_cut_tail(tmp_path: Path) -> None:
    """Damage that is not a cut-short end (a bad checksum in the last frame) is not forgiven."""
    directory = tmp_path / "rec"
    records = numbered(1_000)
    with Recorder(directory, rotate_bytes=50_000, flush_s=0.05) as recorder:
        write_all(recorder, records)
    last = segment_files(directory)[-1]
    damaged = bytearray(last.read_bytes())
    damaged[-2] ^= 0x01  # in the checksum
    last.write_bytes(bytes(damaged))
    survived, damages = read_all(directory)
    (damage,) = damages
    assert damage.segment == last.name and "checksum" in damage.detail and damage.rest_skipped
    assert without_gaps(survived) == records[: 1_000 - (damage.records_lost or 0)]
    assert is_gap(survived[-1]), "a loss at the end is marked too"


def test_a_missing_segment_is_reported_with_what_the_index_says_it_held(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    records = numbered(2_000)
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, records)
    lines = index_lines(directory)
    first, second = int(lines[0]["records"]), int(lines[1]["records"])
    segment_files(directory)[1].unlink()
    survived, damages = read_all(directory)
    (damage,) = damages
    assert damage.problem == "missing" and damage.records_lost == second
    assert (damage.first_ns, damage.last_ns) == (lines[1]["first_ns"], lines[1]["last_ns"])
    assert damage.describe() == f"seg-000002.pfr.zst is missing: {second:,} records lost (per the index)"
    assert without_gaps(survived) == records[:first] + records[first + second :]
    assert is_gap(survived[first])
    # Without its index line, the numbering still shows the gap; how much was lost is unknown.
    (directory / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines[2:]))
    survived, damages = read_all(directory)
    assert [(d.segment, d.problem, d.records_lost) for d in damages] == [
        ("seg-000002.pfr.zst", "missing", None)
    ]
    assert without_gaps(survived) == records[:first] + records[first + second :]


def test_an_index_that_disagrees_with_a_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Fewer records than the index counts (a segment cut at a frame boundary) is a loss at its end;
    more is an index that is wrong, logged."""
    directory = tmp_path / "rec"
    records = numbered(1_000)
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, records)
    lines = (directory / "index.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    count = first["records"]
    first["records"] += 1
    lines[0] = json.dumps(first)
    (directory / "index.jsonl").write_text("\n".join(lines) + "\n")
    survived, damages = read_all(directory)
    assert [(d.segment, d.problem, d.records_lost) for d in damages] == [("seg-000001.pfr.zst", "short", 1)]
    assert without_gaps(survived) == records and is_gap(survived[count])
    first["records"] -= 2
    lines[0] = json.dumps(first)
    (directory / "index.jsonl").write_text("\n".join(lines) + "\n")
    caplog.set_level(logging.WARNING, logger="polyfeed.record.reader")
    assert read_all(directory) == (records, [])
    assert any("index.jsonl says" in r.getMessage() for r in caplog.records)


def test_damage_is_logged_when_nobody_asks_for_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, rotate_bytes=50_000) as recorder:
        write_all(recorder, numbered(1_000))
    segment_files(directory)[0].unlink()
    caplog.set_level(logging.WARNING, logger="polyfeed.record.reader")
    list(read_recording(directory))
    lost = int(index_lines(directory)[0]["records"])
    assert [r.getMessage() for r in caplog.records if "missing" in r.getMessage()] == [
        f"seg-000001.pfr.zst is missing: {lost:,} records lost (per the index)"
    ]


def test_new_frames_carry_checksums_and_old_ones_without_still_read(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    records = numbered(500)
    with Recorder(directory, flush_s=0.05) as recorder:
        write_all(recorder, records)
    (segment,) = segment_files(directory)
    data = segment.read_bytes()
    assert all(
        zstandard.get_frame_parameters(data[at : at + 18]).has_checksum for at in frame_offsets(segment)
    )
    old = tmp_path / "old"
    with Recorder(old, flush_s=0.05) as recorder:
        recorder._cctx = zstandard.ZstdCompressor(level=3)  # as a writer without checksums made them
        write_all(recorder, records)
    (segment,) = segment_files(old)
    data = segment.read_bytes()
    assert not any(
        zstandard.get_frame_parameters(data[at : at + 18]).has_checksum for at in frame_offsets(segment)
    )
    assert read_all(old) == (records, [])


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


class _SpiedDecompressor:
    """zstandard's decompressor, noting the thread each frame is decompressed on."""

    real = zstandard.ZstdDecompressor
    threads: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self._dctx = self.real()

    def decompressobj(self) -> _SpiedDecompressor:
        self._obj = self._dctx.decompressobj()
        return self

    def decompress(self, data: bytes) -> bytes:
        self.threads.append(threading.get_ident())
        return self._obj.decompress(data)

    @property
    def eof(self) -> bool:
        return self._obj.eof

    @property
    def unused_data(self) -> bytes:
        return self._obj.unused_data


def test_large_frames_are_decompressed_ahead_on_the_readers_thread_and_damage_still_read_past(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy stream's frames (hundreds of kB): the next one is decompressed on another thread while
    the records of this one are consumed, with a damaged frame and a killed recorder's tail as before."""
    directory = tmp_path / "rec"
    records = numbered(9_000, size=300)  # 1 ms apart: about 1,000 records (300 kB) a frame
    recorder = Recorder(directory, flush_s=1.0)
    write_all(recorder, records)
    recorder.drain()  # killed here: the last segment stays open, without an index line
    (segment,) = segment_files(directory)
    starts = frame_offsets(segment)
    assert len(starts) >= 8
    flip(segment, (starts[4] + starts[5]) // 2)
    with segment.open("r+b") as fh:
        fh.truncate(starts[-1] + 100)  # the last frame cut short
    monkeypatch.setattr(zstandard, "ZstdDecompressor", _SpiedDecompressor)
    _SpiedDecompressor.threads.clear()
    read, damages = read_all(directory)
    monkeypatch.undo()
    assert {d.problem for d in damages} == {"damaged"} and len(damages) == 1
    got = seqs(read)
    holes = [(a, b) for a, b in itertools.pairwise(got) if b != a + 1]
    assert got[0] == 0 and len(holes) == 1, "in order, one frame lost to the damage"
    assert holes[0][1] - holes[0][0] > 900 and got[-1] < 8_000, "and the cut tail"
    assert sum(map(is_gap, read)) == 1
    assert set(_SpiedDecompressor.threads) - {threading.get_ident()}, "frames decompressed ahead"
    recorder.close()
