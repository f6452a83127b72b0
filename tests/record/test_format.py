"""The recording format: lossless round trips, rotation, the index, crash tolerance and damage detection."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfeed.errors import RecordingError, RecordingFormatError
from polyfeed.record import (
    FORMAT_VERSION,
    Channel,
    Record,
    Recorder,
    RecordKind,
    read_recording,
    recording_info,
)

S = 1_000_000_000
T0 = 1_790_000_000 * S

records_strategy = st.lists(
    st.builds(
        Record,
        kind=st.sampled_from(list(RecordKind)).map(int),
        channel=st.sampled_from(list(Channel)).map(int),
        connection=st.integers(min_value=0, max_value=2**32 - 1),
        recv_ns=st.integers(min_value=0, max_value=2**64 - 1),
        payload=st.binary(max_size=3000),
    ),
    max_size=300,
)


def write_all(recorder: Recorder, records: list[Record]) -> None:
    for r in records:
        recorder.write(r.kind, r.channel, r.connection, r.recv_ns, r.payload)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.pfr.zst"))


def index_lines(directory: Path) -> list[dict[str, int | str]]:
    return [json.loads(line) for line in (directory / "index.jsonl").read_text().splitlines()]


def numbered(n: int, *, start_ns: int = T0, step_ns: int = 1_000_000, size: int = 100) -> list[Record]:
    """Records whose payload says their position, for order checks."""
    return [
        Record(
            int(RecordKind.FRAME),
            int(Channel.MARKET),
            n % 3,
            start_ns + i * step_ns,
            f'{{"seq":{i}}}'.encode().ljust(size, b" "),
        )
        for i in range(n)
    ]


@settings(max_examples=60, deadline=None)
@given(records=records_strategy, rotate_bytes=st.integers(min_value=1, max_value=20_000))
def test_any_records_come_back_exactly_and_in_order(records: list[Record], rotate_bytes: int) -> None:
    """Whatever the kinds, channels, times (even out of order) and payloads (binary, empty), and
    wherever segments rotate, a reader gets back exactly the records written."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "rec"
        with Recorder(directory, rotate_bytes=rotate_bytes, flush_s=0.001) as recorder:
            write_all(recorder, records)
        assert list(read_recording(directory)) == records
        info = recording_info(directory)
        assert info.records == len(records) == recorder.records
        assert info.segments == len(segment_files(directory))
        assert info.truncated_segments == 0
        if records:
            assert info.first_ns == min(r.recv_ns for r in records)
            assert info.last_ns == max(r.recv_ns for r in records)
        else:
            assert info.segments == 0, "a recorder that wrote nothing leaves no segment behind"


def test_rotation_by_bytes_writes_an_index_line_per_segment(tmp_path: Path) -> None:
    records = numbered(5_000)
    with Recorder(tmp_path / "rec", rotate_bytes=100_000) as recorder:
        write_all(recorder, records)
    directory = tmp_path / "rec"
    files = segment_files(directory)
    assert len(files) >= 5, "about 590 kB of records in segments of 100 kB"
    lines = index_lines(directory)
    assert [line["name"] for line in lines] == [f.name for f in files]
    assert sum(int(line["records"]) for line in lines) == len(records)
    assert sum(int(line["bytes_in"]) for line in lines) == recorder.bytes_in
    position = 0
    for line, path in zip(lines, files, strict=True):
        count = int(line["records"])
        inside = records[position : position + count]
        position += count
        assert line["first_ns"] == inside[0].recv_ns and line["last_ns"] == inside[-1].recv_ns
        assert line["bytes_on_disk"] == path.stat().st_size
        assert line["bytes_in"] == sum(18 + len(r.payload) for r in inside)
        assert int(line["bytes_in"]) < 100_000 + 118, "a segment ends with the record that fills it"
    assert recorder.bytes_written == sum(f.stat().st_size for f in files)
    assert list(read_recording(directory)) == records


def test_rotation_by_time_of_receipt(tmp_path: Path) -> None:
    records = numbered(1_000, step_ns=10_000_000)  # 10 s of receive time
    with Recorder(tmp_path / "rec", rotate_s=2.0, flush_s=0.5) as recorder:
        write_all(recorder, records)
    lines = index_lines(tmp_path / "rec")
    assert len(lines) == 5, "10 s in segments of 2 to 2.5 s: rotation happens at a flush"
    for line in lines:
        assert int(line["last_ns"]) - int(line["first_ns"]) < 2 * S + S // 2, "rotate_s + flush_s at most"
    assert list(read_recording(tmp_path / "rec")) == records


def test_a_quiet_stream_is_flushed_and_rotated_by_tick(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = Recorder(directory, rotate_s=10.0, flush_s=1.0)
    first, second, third = numbered(3, step_ns=100_000_000)
    write_all(recorder, [first])  # the first write flushes at once and sets the pace
    write_all(recorder, [second, third])
    assert list(read_recording(directory)) == [first], "buffered until flush_s has passed"
    recorder.tick(third.recv_ns + S // 2)
    assert list(read_recording(directory)) == [first]
    recorder.tick(first.recv_ns + S)
    assert list(read_recording(directory)) == [first, second, third], "a tick flushed them"
    assert index_lines(directory) == []
    recorder.tick(first.recv_ns + 10 * S)
    assert [line["records"] for line in index_lines(directory)] == [3], "the segment was closed by time"
    recorder.tick(first.recv_ns + 100 * S)
    recorder.close()
    assert len(segment_files(directory)) == 1, "quiet time makes no empty segments"


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


def test_meta_json_describes_the_recording(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, meta={"assets": ["1", "2"], "ws_url": "ws://127.0.0.1:1/ws/market"}) as rec:
        write_all(rec, numbered(3))
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["format"] == "polyfeed-recording"
    assert meta["version"] == FORMAT_VERSION == 1
    assert isinstance(meta["created_ns"], int) and meta["created_ns"] > 0
    assert meta["polyfeed"]
    assert meta["meta"] == {"assets": ["1", "2"], "ws_url": "ws://127.0.0.1:1/ws/market"}
    info = recording_info(directory)
    assert info.meta == meta["meta"] and info.created_ns == meta["created_ns"]
    assert info.bytes_on_disk == sum(p.stat().st_size for p in directory.iterdir())


def test_a_directory_that_holds_a_recording_is_refused(tmp_path: Path) -> None:
    with Recorder(tmp_path / "rec") as recorder:
        write_all(recorder, numbered(3))
    with pytest.raises(RecordingError, match="already holds a recording"):
        Recorder(tmp_path / "rec")


def test_writes_are_checked_and_buffers_copied(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "rec", flush_s=60)
    buffer = bytearray(b"PONG")
    recorder.write(RecordKind.FRAME, Channel.MARKET, 1, T0, memoryview(buffer))
    recorder.write(RecordKind.FRAME, Channel.MARKET, 1, T0 + 1, buffer)
    buffer[:] = b"XXXX"  # the caller's buffer is reused before the flush
    with pytest.raises(RecordingError, match="out of range"):
        recorder.write(RecordKind.FRAME, Channel.MARKET, 2**32, T0 + 2, b"x")
    with pytest.raises(RecordingError, match="out of range"):
        recorder.write(RecordKind.FRAME, Channel.MARKET, 1, -1, b"x")
    assert recorder.records == 2, "a refused record is not half written"
    recorder.close()
    recorder.close()
    with pytest.raises(RecordingError, match="closed"):
        recorder.write(RecordKind.FRAME, Channel.MARKET, 1, T0 + 3, b"x")
    assert [r.payload for r in read_recording(tmp_path / "rec")] == [b"PONG", b"PONG"]


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
    caplog.set_level(logging.WARNING, logger="polyfeed.record.format")
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


KILLED_RECORDER = """
import sys, time
from polyfeed.record import Recorder
recorder = Recorder(sys.argv[1], rotate_s=0.5, flush_s=1.0)
seq = 0
while True:
    now = time.time_ns()
    recorder.write(1, 0, 7, now, b'{"seq":%d,"pad":"%s"}' % (seq, b"x" * 200))
    seq += 1
    if seq % 200 == 0:
        print(seq, now, flush=True)  # seq records written, the last one received at `now`
        time.sleep(0.002)
"""


def test_a_recorder_killed_with_sigkill_leaves_a_readable_recording(tmp_path: Path) -> None:
    """The child reports how many records it wrote and when; once it reports a record received 1.5 s
    after the mark, everything up to the mark has been flushed (a flush follows within flush_s of
    receive time, synchronously in write), so SIGKILL must not lose it. Segments rotate by time only,
    so only the time-driven flush can have saved the records."""
    directory = tmp_path / "rec"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RECORDER, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        mark: tuple[int, int] | None = None
        start: int | None = None
        while True:
            line = child.stdout.readline()
            assert line, f"the recorder stopped on its own: {child.stderr.read().decode()}"
            seq, now = map(int, line.split())
            start = now if start is None else start
            if mark is None and seq >= 2_000 and now - start >= S:
                mark = (seq, now)
            elif mark is not None and now - mark[1] >= 1.5 * S:
                break
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert mark is not None
    records = list(read_recording(directory))
    seqs = [json.loads(r.payload)["seq"] for r in records]
    assert seqs == list(range(len(seqs))), "in order, nothing missing before the end"
    assert len(seqs) >= mark[0], "everything written 1.5 s before the kill survived"
    assert all(r.connection == 7 and r.kind == RecordKind.FRAME for r in records)
    assert len(segment_files(directory)) >= 2, "flushes at 1 s and 2 s closed one, opened another"
    info = recording_info(directory)
    assert info.records == len(records)
    assert info.truncated_segments <= 1


def test_a_failed_write_leaves_no_half_frame_and_the_records_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk mid-flush: the segment is cut back to its last whole frame and the buffered
    records are written by the next flush that succeeds."""
    directory = tmp_path / "rec"
    records = numbered(300, step_ns=10_000_000)
    recorder = Recorder(directory, flush_s=1.0)
    write_all(recorder, records[:200])  # flushed at 0 s (record 0) and 1 s (records 1-100)
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(RecordingError, match="No space left"):
        write_all(recorder, records[200:201])  # 2 s: a flush is due, and fails half way
    monkeypatch.undo()
    assert list(read_recording(directory)) == records[:101], "whole frames only"
    write_all(recorder, records[201:])  # the next flush writes what the failed one held
    recorder.close()
    assert list(read_recording(directory)) == records
