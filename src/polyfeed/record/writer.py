"""Writing recordings: :class:`Recorder`, the one writer of the format in :mod:`polyfeed.record.format`.

The writer buffers records (each a packed header and its payload, appended to a list) and at each flush
(every ``flush_s`` of receive time, or 4 MiB) hands the list to its writer thread, which joins it,
compresses it as one complete zstd frame (with its content checksum) and writes it to the segment file at
once. The join, zstd and ``os.write`` release the GIL, so the thread that records (the stream's event
loop) pays for buffering only, and compression runs on another core. Frames are written in the order
they were handed over. A recorder killed with SIGKILL loses only what it had not flushed and what its
thread was still compressing (the page cache outlives the process), and a reader stops cleanly at a
truncated last frame. Segments are fsynced when closed (after every frame of theirs is written), each
with a line in the index. :meth:`Recorder.flush` and :meth:`Recorder.close` wait for the writer thread;
:meth:`Recorder.write` and :meth:`Recorder.tick` do not (:meth:`Recorder.drain` waits).

A write that fails (a full disk, a file size limit, an I/O error) fails the recorder for good rather
than raising into whoever called :meth:`Recorder.write` (the WebSocket listener, live): the segment is
cut back to its last whole frame (by the writer thread, at once), closed and indexed as far as it was
written, :attr:`Recorder.failed` says what happened, ``on_failure`` is called once, and every record
written after that is counted in :attr:`Recorder.records_lost`. The recording thread learns of a failed
write at its next flush, tick (about twice a second, live), :meth:`Recorder.flush`, :meth:`Recorder.drain`
or :meth:`Recorder.close`, and calls ``on_failure`` there, on its own thread. :meth:`Recorder.close`
raises the failure.

Nothing here parses a payload or logs one: callers redact secrets from what they write (``SENT``
frames of the user channel carry API credentials).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import struct
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec
import zstandard

from polyfeed.errors import RecordingError
from polyfeed.record.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    NEVER_NS,
    RECORD_HEADER,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    SegmentIndex,
    segment_name,
    segment_number,
)

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

_MAX_BUFFER_BYTES = 4 << 20  # flush before flush_s past this: bounds the writer thread's work at once
_MAX_JOBS = 2  # buffers queued for the writer thread before the recording thread waits for it
_SEGMENT_HEADER_BYTES = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0)


def _polyfeed_version() -> str:
    try:
        return metadata.version("polyfeed")
    except metadata.PackageNotFoundError:
        return "unknown"


def _closed(_: bytes) -> None:
    raise RecordingError("the recorder is closed")


class _WriteFailedError(Exception):
    """An ``OSError`` on one of the recording's files; :meth:`Recorder._fail` turns it into the failure."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(str(error))
        self.path = path
        self.error = error


class _Job:
    """One buffer handed to the writer thread: its records' count, bytes and receive-time span, and the
    future of its frame (the frame's size once written, ``None`` if skipped after a failure)."""

    __slots__ = ("bytes_in", "future", "hi", "lo", "records")

    def __init__(self, records: int, bytes_in: int, lo: int, hi: int, future: Future[int | None]) -> None:
        self.records = records
        self.bytes_in = bytes_in
        self.lo = lo
        self.hi = hi
        self.future = future


class Recorder:
    """Writes a recording into a new directory.

    Args:
        directory: where; created if missing. A directory that already holds a recording is refused, so
            that a killed recorder's truncated last segment stays last.
        rotate_bytes: start a new segment once this many uncompressed bytes (record headers and
            payloads) are in the current one.
        rotate_s: start a new segment once the current one spans this much receive time.
        flush_s: compress and write the buffered records once this much receive time has passed since
            the last flush; the data a SIGKILL can lose. :meth:`tick` flushes a quiet stream.
        level: the zstd compression level.
        meta: the caller's own description (assets, URLs, command line); stored in ``meta.json``.
        on_failure: called once, with :attr:`failed`, when a write fails (on the thread that records:
            the stream's event loop, at its next flush or tick). It must not raise;
            :func:`polyfeed.sinks.record.record` ends the run.

    Not thread-safe: one writer, on the stream's event loop (the recorder's own thread compresses and
    writes what it is handed). Also a context manager, closing on exit.

    Raises:
        RecordingError: the directory already holds a recording, or cannot be written.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        rotate_bytes: int = 256 << 20,
        rotate_s: float = 3600.0,
        flush_s: float = 1.0,
        level: int = 3,
        meta: dict[str, object] | None = None,
        on_failure: Callable[[RecordingError], None] | None = None,
    ) -> None:
        if rotate_bytes <= 0 or rotate_s <= 0 or flush_s < 0:
            raise ValueError("rotate_bytes and rotate_s must be positive, flush_s not negative")
        self.directory = Path(directory)
        self.rotate_bytes = rotate_bytes
        self._rotate_ns = int(rotate_s * 1e9)
        self._flush_ns = int(flush_s * 1e9)
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)  # the writer thread's
        self._pack = RECORD_HEADER.pack
        self._parts: list[bytes] = []  # the records buffered since the last flush: header, payload, ...
        self._append = self._parts.append
        self._pending = 0  # bytes buffered (headers and payloads)
        self._limit = min(rotate_bytes, _MAX_BUFFER_BYTES)
        self._due_ns = 0  # the first write flushes at once and sets the pace
        self._last_flush_ns = 0
        # Smallest and largest recv_ns in the current segment. A record above _hi is checked against
        # _due_ns; one at or below it cannot be due, since _due_ns > _hi holds after every flush.
        self._hi = -1
        self._lo = NEVER_NS
        self._fd: int | None = None
        self._segment = 0
        self._segment_first_ns = 0
        self._segment_handed = 0  # uncompressed bytes of the current segment handed to the writer thread
        # The current segment as far as written (frames whose write returned): what its index line says.
        self._segment_records = 0
        self._segment_bytes_in = 0
        self._segment_bytes_written = 0
        self._written_lo = NEVER_NS
        self._written_hi = -1
        self._flushed_records = 0
        self._flushed_bytes_in = 0
        self._jobs: deque[_Job] = deque()  # handed to the writer thread, in order, not yet collected
        self._in_flight_records = 0
        self._in_flight_bytes = 0
        self._executor: ThreadPoolExecutor | None = None
        self._worker_broken = False  # set by the writer thread when a write fails: it writes no more
        self._worker_size = 0  # the writer thread's count of the current segment's bytes on disk
        self.bytes_written = 0
        """Compressed bytes written to segments so far."""
        self.segments = 0
        """Segments started so far."""
        self.on_failure = on_failure
        self.failed: RecordingError | None = None
        """Why writing failed (``None`` while it has not): the recording holds what was written before."""
        self.records_lost = 0
        """Records given to :meth:`write` that are not in the recording because writing had failed (the
        ones buffered or being written at the failure, and every one written after it)."""
        self._failure_raised = False
        self._last_written_ns: int | None = None  # the largest recv_ns in a frame on disk
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if (self.directory / META_FILE).exists() or any(
                segment_number(p.name) is not None for p in self.directory.iterdir()
            ):
                raise RecordingError(f"{self.directory} already holds a recording; record into a new one")
            document = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "created_ns": time.time_ns(),
                "polyfeed": _polyfeed_version(),
                "meta": meta or {},
            }
            tmp = self.directory / (META_FILE + ".tmp")
            tmp.write_bytes(msgspec.json.format(msgspec.json.encode(document)) + b"\n")
            os.replace(tmp, self.directory / META_FILE)
            _fsync_directory(self.directory)
            self._index: BinaryIO | None = open(self.directory / INDEX_FILE, "ab")  # noqa: SIM115
        except OSError as exc:
            raise RecordingError(f"cannot create a recording in {self.directory}: {exc}") from exc

    # -- counters ------------------------------------------------------------------------------------

    @property
    def records(self) -> int:
        """Records written so far, buffered ones and those being compressed included."""
        return self._flushed_records + self._in_flight_records + (len(self._parts) >> 1)

    @property
    def bytes_in(self) -> int:
        """Uncompressed bytes (record headers and payloads) written so far, buffered ones and those being
        compressed included."""
        return self._flushed_bytes_in + self._in_flight_bytes + self._pending

    # -- writing -------------------------------------------------------------------------------------

    def write(
        self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes | bytearray | memoryview
    ) -> None:
        """Append one record (the hot path: no I/O, and no waiting, unless a flush is due).

        Args:
            kind: a :class:`RecordKind`.
            channel: a :class:`Channel`.
            connection: the connection's number (0 to 2**32 - 1).
            recv_ns: when it was received (or sent, or happened), in ns since the epoch.
            payload: the bytes; a ``bytearray`` or ``memoryview`` is copied (the caller may reuse it).

        A write that fails does not raise: it fails the recorder (:attr:`failed`, ``on_failure``), and
        later records are counted in :attr:`records_lost`.

        Raises:
            RecordingError: a field out of range, or the recorder closed.
        """
        if payload.__class__ is not bytes:
            payload = bytes(payload)
        try:
            header = self._pack(len(payload), kind, channel, connection, recv_ns)
        except struct.error as exc:
            raise RecordingError(f"record fields out of range: {exc}") from None
        append = self._append
        append(header)
        append(payload)
        pending = self._pending + len(payload) + 18
        self._pending = pending
        if recv_ns > self._hi:
            self._hi = recv_ns
            if recv_ns >= self._due_ns:
                self._flush_or_fail(recv_ns)
                return
        elif recv_ns < self._lo:
            self._lo = recv_ns
        if pending >= self._limit:  # 0 once failed: every record goes on to be counted lost
            self._flush_or_fail(recv_ns)

    def tick(self, now_ns: int) -> None:
        """Flush a quiet stream's records once ``flush_s`` has passed, and rotate by time.

        The stream's driver calls this about twice a second with the current time (``time.time_ns()``).
        A clock that stepped back since the last flush flushes at once rather than waiting for it. A
        write of the writer thread that failed is found here at the latest.
        """
        if self.failed is not None or self._index is None:
            return
        try:
            if now_ns >= self._due_ns or now_ns < self._last_flush_ns:
                self._flush(now_ns)
            else:
                self._collect(wait=False)
            if self._fd is not None and now_ns - self._segment_first_ns >= self._rotate_ns:
                self._flush(now_ns)
                self._close_segment()
        except _WriteFailedError as failure:
            self._fail(failure)

    def flush(self) -> None:
        """Compress and write what is buffered now, and wait until it is written (nothing once the
        recorder has failed)."""
        if self.failed is None and self._index is not None:
            self._flush_or_fail(max(self._hi, self._last_flush_ns))
            self.drain()

    def drain(self) -> None:
        """Wait until every frame handed to the writer thread is written (the buffer is not flushed)."""
        if self.failed is None:
            try:
                self._collect(wait=True)
            except _WriteFailedError as failure:
                self._fail(failure)

    def _flush_or_fail(self, now_ns: int) -> None:
        if self.failed is not None:  # what was buffered since goes no further
            self.records_lost += len(self._parts) >> 1
            self._parts.clear()
            self._pending = 0
            return
        try:
            self._flush(now_ns)
        except _WriteFailedError as failure:
            self._fail(failure)

    def _flush(self, now_ns: int) -> None:
        parts = self._parts
        if parts:
            if self._fd is None:
                self._open_segment(RECORD_HEADER.unpack_from(parts[0])[4])
            size = self._pending
            self._parts = []
            self._append = self._parts.append
            self._pending = 0
            first = not self._segment_handed
            self._segment_handed += size
            # The segment's span so far: what its index line says once this frame is written.
            job = _Job(len(parts) >> 1, size, self._lo, self._hi, self._submit(parts, first=first))
            self._jobs.append(job)
            self._in_flight_records += job.records
            self._in_flight_bytes += job.bytes_in
        self._collect(wait=False)
        flushed_at = max(now_ns, self._hi)
        self._last_flush_ns = flushed_at
        self._due_ns = flushed_at + self._flush_ns
        if self._fd is not None and (
            self._segment_handed >= self.rotate_bytes or self._hi - self._segment_first_ns >= self._rotate_ns
        ):
            self._close_segment()
        self._limit = max(1, min(self.rotate_bytes - self._segment_handed, _MAX_BUFFER_BYTES))

    def _submit(self, parts: list[bytes], *, first: bool) -> Future[int | None]:
        fd = self._fd
        assert fd is not None
        path = self.directory / segment_name(self._segment)
        executor = self._executor
        if executor is None:
            executor = self._executor = ThreadPoolExecutor(1, thread_name_prefix="polyfeed-recorder")
        try:
            return executor.submit(self._compress_and_write, fd, path, parts, first)
        except RuntimeError:  # the interpreter is shutting down (no new threads): written here instead,
            wait_all([job.future for job in self._jobs])  # once the thread is done with the compressor
            future: Future[int | None] = Future()
            try:
                future.set_result(self._compress_and_write(fd, path, parts, first))
            except _WriteFailedError as failure:
                future.set_exception(failure)
            return future

    def _compress_and_write(self, fd: int, path: Path, parts: list[bytes], first: bool) -> int | None:
        """On the writer thread: one zstd frame of the records ``parts`` holds, written whole or cut
        back; ``None`` when an earlier write failed (nothing more is written)."""
        if self._worker_broken:
            return None
        if first:  # the segment's first frame starts with the segment header
            self._worker_size = 0
            parts.insert(0, _SEGMENT_HEADER_BYTES)
        frame = self._cctx.compress(b"".join(parts))
        view = memoryview(frame)
        written = 0
        try:
            while written < len(frame):
                written += os.write(fd, view[written:])
        except OSError as exc:
            self._worker_broken = True
            # Never leave half a frame at the end of a segment: cut it back to its last whole frame.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._worker_size)
            raise _WriteFailedError(path, exc) from exc
        self._worker_size += len(frame)
        return len(frame)

    def _collect(self, *, wait: bool) -> None:
        """Account for the frames the writer thread has written, in order; with ``wait``, for all of
        them. Waits for the oldest anyway when too many are queued (the thread has fallen behind).

        Raises:
            _WriteFailedError: a write failed (the frames after it were not written).
        """
        jobs = self._jobs
        while jobs and (wait or len(jobs) > _MAX_JOBS or jobs[0].future.done()):
            job = jobs.popleft()
            self._in_flight_records -= job.records
            self._in_flight_bytes -= job.bytes_in
            try:
                size = job.future.result()
            except _WriteFailedError:
                self.records_lost += job.records
                self._collect_lost()
                raise
            if size is None:  # cannot be: a skipped job follows a failed one, collected with it
                self.records_lost += job.records
                continue
            self._segment_bytes_written += size
            self.bytes_written += size
            self._segment_records += job.records
            self._segment_bytes_in += job.bytes_in
            self._flushed_records += job.records
            self._flushed_bytes_in += job.bytes_in
            self._written_lo, self._written_hi = job.lo, job.hi
            last = self._last_written_ns
            self._last_written_ns = job.hi if last is None else max(last, job.hi)

    def _collect_lost(self) -> None:
        """After a failed write: the frames queued behind it, skipped by the writer thread, are lost."""
        jobs = self._jobs
        while jobs:
            job = jobs.popleft()
            self._in_flight_records -= job.records
            self._in_flight_bytes -= job.bytes_in
            with contextlib.suppress(_WriteFailedError):
                job.future.result()
            self.records_lost += job.records

    def _open_segment(self, first_ns: int) -> None:
        self._segment += 1
        path = self.directory / segment_name(self._segment)
        try:
            # O_APPEND: after a failed write is cut back, the next one lands at the end, not past it.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_BINARY", 0)
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            self._segment -= 1
            raise _WriteFailedError(path, exc) from exc
        self.segments += 1
        self._segment_first_ns = first_ns
        self._lo = min(self._lo, first_ns)
        self._segment_handed = 0
        self._segment_records = 0
        self._segment_bytes_in = 0
        self._segment_bytes_written = 0

    def _close_segment(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._collect(wait=True)  # every frame of the segment written before it is synced and indexed
        self._fd = None
        path = self.directory / segment_name(self._segment)
        error: OSError | None = None
        try:
            os.fsync(fd)
        except OSError as exc:
            error = exc
        finally:
            os.close(fd)
        self._index_segment()
        if error is not None:
            raise _WriteFailedError(path, error)
        _fsync_directory(self.directory)

    def _index_segment(self) -> None:
        """The index line of the segment just closed (as far as written); the segment counters start
        again."""
        entry = SegmentIndex(
            name=segment_name(self._segment),
            first_ns=self._written_lo,
            last_ns=self._written_hi,
            records=self._segment_records,
            bytes_in=self._segment_bytes_in,
            bytes_on_disk=self._segment_bytes_written,
        )
        self._hi = -1
        self._lo = NEVER_NS
        self._written_lo = NEVER_NS
        self._written_hi = -1
        self._segment_handed = 0
        self._segment_bytes_in = 0
        assert self._index is not None
        try:
            self._index.write(msgspec.json.encode(entry) + b"\n")
            self._index.flush()
        except OSError as exc:
            raise _WriteFailedError(self.directory / INDEX_FILE, exc) from exc

    def _fail(self, failure: _WriteFailedError) -> None:
        """Stop writing for good: what is buffered or queued is lost, the segment is closed as far as it
        was written (and indexed, if that still works: readers list the directory), and the failure is
        kept and signalled."""
        with contextlib.suppress(_WriteFailedError):  # what is queued is written, or counted lost
            self._collect(wait=True)
        self._worker_broken = True  # the writer thread writes nothing more
        self.records_lost += len(self._parts) >> 1
        self._parts.clear()
        self._pending = 0
        self._limit = 0  # write() checks nothing else: every record now reaches _flush_or_fail
        fd = self._fd
        if fd is not None:
            self._fd = None
            path = self.directory / segment_name(self._segment)
            with contextlib.suppress(OSError):
                os.fsync(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
            if self._segment_bytes_written:
                try:
                    self._index_segment()
                except _WriteFailedError as also:
                    log.info("%s is not indexed: %s (readers find it by listing)", path.name, also.error)
            else:  # not one frame got there: an empty file would only look like a killed recorder
                with contextlib.suppress(OSError):
                    path.unlink()
                self.segments -= 1
        if self._last_written_ns is None:
            holds = "the recording holds no records"
        else:
            when = dt.datetime.fromtimestamp(self._last_written_ns / 1e9, dt.UTC)
            holds = (
                f"the recording holds {self._flushed_records:,} records up to "
                f"{when.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}"
            )
        self.failed = RecordingError(f"cannot write {failure.path}: {failure.error}; {holds}")
        self.failed.__cause__ = failure.error
        log.info("recording failed: %s", self.failed)
        if self.on_failure is not None:
            self.on_failure(self.failed)

    def close(self) -> None:
        """Flush, wait for the writer thread, close (and fsync) the current segment and the index.
        Closing twice is harmless.

        Raises:
            RecordingError: writing failed (:attr:`failed`; raised by the first close only). The
                recording is closed as far as it was written.
        """
        if self._index is None:
            return
        try:
            self.flush()
            if self.failed is None:
                try:
                    self._close_segment()
                    os.fsync(self._index.fileno())
                except _WriteFailedError as failure:
                    self._fail(failure)
                except OSError as exc:
                    self._fail(_WriteFailedError(self.directory / INDEX_FILE, exc))
        finally:
            with contextlib.suppress(OSError):
                self._index.close()
            self._index = None
            self._append = _closed
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
        if self.failed is not None and not self._failure_raised:
            self._failure_raised = True
            raise self.failed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform (Windows); the segment itself is synced
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
