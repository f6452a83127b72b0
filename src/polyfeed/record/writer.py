"""Writing recordings: :class:`Recorder`, the one writer of the format in :mod:`polyfeed.record.format`.

The writer buffers records and compresses them as one complete zstd frame at each flush (every
``flush_s`` of receive time), written to the segment file at once: a recorder killed with SIGKILL loses
only what it had not flushed (the page cache outlives the process), and a reader stops cleanly at a
truncated last frame. Segments are fsynced when closed, each with a line in the index.

Nothing here parses a payload or logs one: callers redact secrets from what they write (``SENT``
frames of the user channel carry API credentials).
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
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

_MAX_BUFFER_BYTES = 4 << 20  # flush before flush_s past this: bounds the pause a flush makes (~5 ms)


def _polyfeed_version() -> str:
    try:
        return metadata.version("polyfeed")
    except metadata.PackageNotFoundError:
        return "unknown"


def _closed(_: bytes) -> None:
    raise RecordingError("the recorder is closed")


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

    Not thread-safe: one writer, on the stream's event loop. Also a context manager, closing on exit.

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
    ) -> None:
        if rotate_bytes <= 0 or rotate_s <= 0 or flush_s < 0:
            raise ValueError("rotate_bytes and rotate_s must be positive, flush_s not negative")
        self.directory = Path(directory)
        self.rotate_bytes = rotate_bytes
        self._rotate_ns = int(rotate_s * 1e9)
        self._flush_ns = int(flush_s * 1e9)
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._pack = RECORD_HEADER.pack
        self._parts: list[bytes] = []
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
        self._segment_records = 0
        self._segment_bytes_in = 0
        self._segment_bytes_written = 0
        self._flushed_records = 0
        self._flushed_bytes_in = 0
        self.bytes_written = 0
        """Compressed bytes written to segments so far."""
        self.segments = 0
        """Segments started so far."""
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
        """Records written so far, buffered ones included."""
        return self._flushed_records + (len(self._parts) >> 1)

    @property
    def bytes_in(self) -> int:
        """Uncompressed bytes (record headers and payloads) written so far, buffered ones included."""
        return self._flushed_bytes_in + self._pending

    # -- writing -------------------------------------------------------------------------------------

    def write(
        self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes | bytearray | memoryview
    ) -> None:
        """Append one record (the hot path: no I/O unless a flush is due).

        Args:
            kind: a :class:`RecordKind`.
            channel: a :class:`Channel`.
            connection: the connection's number (0 to 2**32 - 1).
            recv_ns: when it was received (or sent, or happened), in ns since the epoch.
            payload: the bytes; a ``bytearray`` or ``memoryview`` is copied (the caller may reuse it).

        Raises:
            RecordingError: a field out of range, the recorder closed, or a flush that failed.
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
                self._flush(recv_ns)
                return
        elif recv_ns < self._lo:
            self._lo = recv_ns
        if pending >= self._limit:
            self._flush(recv_ns)

    def tick(self, now_ns: int) -> None:
        """Flush a quiet stream's records once ``flush_s`` has passed, and rotate by time.

        The stream's driver calls this about twice a second with the current time (``time.time_ns()``).
        A clock that stepped back since the last flush flushes at once rather than waiting for it.
        """
        if now_ns >= self._due_ns or now_ns < self._last_flush_ns:
            self._flush(now_ns)
        if self._fd is not None and now_ns - self._segment_first_ns >= self._rotate_ns:
            self._flush(now_ns)
            self._close_segment()

    def flush(self) -> None:
        """Compress and write what is buffered now."""
        self._flush(max(self._hi, self._last_flush_ns))

    def _flush(self, now_ns: int) -> None:
        parts = self._parts
        if parts:
            if self._fd is None:
                self._open_segment(RECORD_HEADER.unpack_from(parts[0])[4])
            data = b"".join(parts)
            if not self._segment_bytes_written:  # also after a failed first write, cut back to 0
                data = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0) + data
            frame = self._cctx.compress(data)
            self._write_frame(frame)
            self._segment_records += len(parts) >> 1
            self._segment_bytes_in += self._pending
            self._flushed_records += len(parts) >> 1
            self._flushed_bytes_in += self._pending
            parts.clear()
            self._pending = 0
        flushed_at = max(now_ns, self._hi)
        self._last_flush_ns = flushed_at
        self._due_ns = flushed_at + self._flush_ns
        if self._fd is not None and (
            self._segment_bytes_in >= self.rotate_bytes
            or self._hi - self._segment_first_ns >= self._rotate_ns
        ):
            self._close_segment()
        self._limit = max(1, min(self.rotate_bytes - self._segment_bytes_in, _MAX_BUFFER_BYTES))

    def _open_segment(self, first_ns: int) -> None:
        self._segment += 1
        path = self.directory / segment_name(self._segment)
        try:
            # O_APPEND: after a failed write is cut back, the next one lands at the end, not past it.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_BINARY", 0)
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            self._segment -= 1
            raise RecordingError(f"cannot create segment {path}: {exc}") from exc
        self.segments += 1
        self._segment_first_ns = first_ns
        self._lo = min(self._lo, first_ns)
        self._segment_records = 0
        self._segment_bytes_in = 0
        self._segment_bytes_written = 0

    def _write_frame(self, frame: bytes) -> None:
        fd = self._fd
        assert fd is not None
        view = memoryview(frame)
        written = 0
        try:
            while written < len(frame):
                written += os.write(fd, view[written:])
        except OSError as exc:
            # Never leave half a frame in the middle of a segment: cut it off, keep the records
            # buffered, and let the caller decide (a later flush retries).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._segment_bytes_written)
            path = self.directory / segment_name(self._segment)
            raise RecordingError(f"cannot write to {path}: {exc}") from exc
        self._segment_bytes_written += len(frame)
        self.bytes_written += len(frame)

    def _close_segment(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        name = segment_name(self._segment)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        entry = SegmentIndex(
            name=name,
            first_ns=self._lo,
            last_ns=self._hi,
            records=self._segment_records,
            bytes_in=self._segment_bytes_in,
            bytes_on_disk=self._segment_bytes_written,
        )
        assert self._index is not None
        self._index.write(msgspec.json.encode(entry) + b"\n")
        self._index.flush()
        _fsync_directory(self.directory)
        self._hi = -1
        self._lo = NEVER_NS
        self._segment_bytes_in = 0

    def close(self) -> None:
        """Flush, close (and fsync) the current segment and the index. Closing twice is harmless."""
        if self._index is None:
            return
        try:
            self.flush()
            self._close_segment()
            os.fsync(self._index.fileno())
        finally:
            if self._fd is not None:  # the flush failed: the segment stays as it is, unindexed
                os.close(self._fd)
                self._fd = None
            self._index.close()
            self._index = None
            self._append = _closed

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
