"""Writing recordings: rotation, flushing, meta.json, checked writes, surviving SIGKILL, and failing
once and cleanly on a full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from polyfeed.errors import RecordingError
from polyfeed.record import FORMAT_VERSION, Channel, Recorder, RecordKind, read_recording, recording_info
from tests.record.recordings import T0, S, index_lines, numbered, segment_files, write_all


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
    recorder.drain()  # the writer thread has written what it was handed
    assert list(read_recording(directory)) == [first], "buffered until flush_s has passed"
    recorder.tick(third.recv_ns + S // 2)
    recorder.drain()
    assert list(read_recording(directory)) == [first]
    recorder.tick(first.recv_ns + S)
    recorder.drain()
    assert list(read_recording(directory)) == [first, second, third], "a tick flushed them"
    assert index_lines(directory) == []
    recorder.tick(first.recv_ns + 10 * S)
    assert [line["records"] for line in index_lines(directory)] == [3], "the segment was closed by time"
    recorder.tick(first.recv_ns + 100 * S)
    recorder.close()
    assert len(segment_files(directory)) == 1, "quiet time makes no empty segments"


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
    receive time: write hands it to the writer thread, which writes it at once), so SIGKILL must not
    lose it. Segments rotate by time only, so only the time-driven flush can have saved the records."""
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


def test_a_failed_write_fails_the_recorder_once_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk mid-flush: the segment is cut back to its last whole frame, closed and indexed;
    write never raises (live, its caller is the WebSocket listener); later records are counted as
    lost; the failure is signalled once and raised by close."""
    directory = tmp_path / "rec"
    records = numbered(300, step_ns=10_000_000)
    failures: list[RecordingError] = []
    recorder = Recorder(directory, flush_s=1.0, on_failure=failures.append)
    write_all(recorder, records[:200])  # flushed at 0 s (record 0) and 1 s (records 1-100)
    recorder.drain()  # both frames written before the disk fills
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    write_all(recorder, records[200:201])  # 2 s: a flush is due, and fails half way
    recorder.drain()  # the writer thread's failure is found (at the next flush or tick, live)
    monkeypatch.undo()
    segment = directory / "seg-000001.pfr.zst"
    expected = (
        f"cannot write {segment}: [Errno 28] No space left on device; the recording holds 101 records "
        "up to 2026-09-21T14:13:21.000Z"
    )
    assert recorder.failed is not None and str(recorder.failed) == expected
    assert failures == [recorder.failed], "signalled once"
    assert recorder.records_lost == 100, "records 101-200 were in the frame that failed"
    write_all(recorder, records[201:])
    recorder.tick(records[-1].recv_ns + 10 * S)
    recorder.flush()
    assert recorder.records_lost == 199 and failures == [recorder.failed]
    assert index_lines(directory) == [
        {
            "name": segment.name,
            "first_ns": records[0].recv_ns,
            "last_ns": records[100].recv_ns,
            "records": 101,
            "bytes_in": sum(18 + len(r.payload) for r in records[:101]),
            "bytes_on_disk": segment.stat().st_size,
        }
    ], "closed and indexed as far as it was written"
    with pytest.raises(RecordingError) as raised:
        recorder.close()
    assert raised.value is recorder.failed
    recorder.close()  # only the first close raises it
    with pytest.raises(RecordingError, match="closed"):
        recorder.write(RecordKind.FRAME, Channel.MARKET, 1, T0, b"x")
    assert list(read_recording(directory, on_damage=pytest.fail)) == records[:101], "whole frames only"
    assert recording_info(directory).truncated_segments == 0


def test_a_segment_that_cannot_be_created_or_synced_fails_the_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = numbered(400, step_ns=10_000_000)
    directory = tmp_path / "open"
    recorder = Recorder(directory, rotate_s=1.0, flush_s=0.5)
    real_open = os.open

    def no_new_segment(path: str | Path, flags: int, mode: int = 0o777) -> int:
        if Path(path).name == "seg-000002.pfr.zst":
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_new_segment)
    write_all(recorder, records)
    monkeypatch.undo()
    assert recorder.failed is not None
    assert str(recorder.failed).startswith(f"cannot write {directory / 'seg-000002.pfr.zst'}: [Errno 24]")
    first = index_lines(directory)[0]
    assert str(recorder.failed).endswith(
        f"the recording holds {first['records']} records up to 2026-09-21T14:13:21.000Z"
    )
    with pytest.raises(RecordingError):
        recorder.close()
    assert list(read_recording(directory, on_damage=pytest.fail)) == records[: int(first["records"])]

    directory = tmp_path / "sync"
    recorder = Recorder(directory, rotate_s=1.0, flush_s=0.5)

    def broken_disk(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_disk)
    write_all(recorder, records)
    monkeypatch.undo()
    assert str(recorder.failed).startswith(f"cannot write {directory / 'seg-000001.pfr.zst'}: [Errno 5]")
    assert [line["name"] for line in index_lines(directory)] == ["seg-000001.pfr.zst"], "indexed anyway"
    with pytest.raises(RecordingError):
        recorder.close()
    assert len(segment_files(directory)) == 1


def test_a_first_write_that_fails_leaves_no_empty_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "rec"
    recorder = Recorder(directory)

    def too_large(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(os, "write", too_large)
    write_all(recorder, numbered(3))
    recorder.drain()
    monkeypatch.undo()
    assert str(recorder.failed) == (
        f"cannot write {directory / 'seg-000001.pfr.zst'}: [Errno 27] File too large; the recording holds "
        "no records"
    )
    assert recorder.records_lost == 3 and recorder.segments == 0
    with pytest.raises(RecordingError):
        recorder.close()
    assert segment_files(directory) == [] and list(read_recording(directory)) == []


def test_a_flush_hands_the_records_to_the_writer_thread_without_waiting_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that makes a flush due returns while its frame is being written (compression and the
    write happen on the recorder's thread, off the stream's event loop); flush() waits for it."""
    writing = threading.Event()
    release = threading.Event()
    released: list[bool] = []
    writers: list[int] = []
    real_write = os.write

    def held(fd: int, data: bytes | memoryview) -> int:
        writers.append(threading.get_ident())
        writing.set()
        released.append(release.wait(timeout=30))  # a guard against a hang, never reached when it works
        return real_write(fd, data)

    directory = tmp_path / "rec"
    records = numbered(3)
    recorder = Recorder(directory)
    monkeypatch.setattr(os, "write", held)
    write_all(recorder, records[:1])  # the first write flushes at once
    assert writing.wait(timeout=30), "the frame is being written..."
    release.set()  # ... and write() has returned before it was
    write_all(recorder, records[1:])
    recorder.flush()
    assert [r.payload for r in read_recording(directory)] == [r.payload for r in records]
    recorder.close()
    monkeypatch.undo()
    assert released == [True, True], "write() returned while its frame was being written"
    assert threading.get_ident() not in writers, "frames are written on the recorder's own thread"


def test_a_write_that_fails_on_the_writer_thread_is_signalled_on_the_recording_thread_at_a_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_failure is called where the stream records (its event loop), found by tick, which the
    stream calls about twice a second, or by the next flush."""
    signalled: list[int] = []
    recorder = Recorder(tmp_path / "rec", on_failure=lambda _: signalled.append(threading.get_ident()))
    wrote = threading.Event()

    def full(fd: int, data: bytes | memoryview) -> int:
        wrote.set()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    write_all(recorder, numbered(1))  # flushed at once, on the writer thread
    assert wrote.wait(timeout=30)
    for _ in range(100_000):  # until the writer thread's failure is in (a few ticks at most)
        recorder.tick(T0 + S // 10)
        if recorder.failed is not None:
            break
        threading.Event().wait(0.001)
    monkeypatch.undo()
    assert recorder.failed is not None and "No space left on device" in str(recorder.failed)
    assert signalled == [threading.get_ident()], "once, on the thread that records"
    assert recorder.records_lost == 1 and recorder.records == 0
    with pytest.raises(RecordingError):
        recorder.close()


UNCLOSED_RECORDER = """
import atexit, sys
from polyfeed.record import Recorder
recorder = Recorder(sys.argv[1], flush_s=1.0)
atexit.register(recorder.close)  # runs after the writer thread has stopped, at the interpreter's exit
S = 1_000_000_000
for seq in range(300):
    recorder.write(1, 0, 7, 1_790_000_000 * S + seq * (S // 100), b'{"seq":%d}' % seq)
"""


def test_a_recorder_closed_at_the_interpreters_exit_writes_everything(tmp_path: Path) -> None:
    """At exit the writer thread finishes what it was handed, and a close in an atexit handler (too
    late for new threads) compresses and writes the rest itself."""
    directory = tmp_path / "rec"
    done = subprocess.run(
        [sys.executable, "-c", UNCLOSED_RECORDER, str(directory)], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    seqs = [json.loads(r.payload)["seq"] for r in read_recording(directory, on_damage=pytest.fail)]
    assert seqs == list(range(300))
    assert [line["records"] for line in index_lines(directory)] == [300]
