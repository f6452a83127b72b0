"""The recording format, version 1: every raw frame as received, with its receive time, and the gaps.

A recording is a directory (the full specification is ``docs/recording-format.md``)::

    meta.json            {"format": "polyfeed-recording", "version": 1, "created_ns": ..., ...}
    seg-000001.pfr.zst   zstd frames, one per flush; their content is a segment header, then records
    seg-000002.pfr.zst
    index.jsonl          one line per closed segment: name, first_ns, last_ns, records, bytes_in, ...

A record is an 18-byte little-endian header (payload length u32, kind u8, channel u8, connection u32,
recv_ns u64) and the payload bytes, exactly as given. The writer buffers records and compresses them as
one complete zstd frame at each flush (every ``flush_s`` of receive time), written to the segment file
at once: a recorder killed with SIGKILL loses only what it had not flushed (the page cache outlives the
process), and a reader stops cleanly at a truncated last frame. Segments are fsynced when closed.

Nothing here parses a payload or logs one: callers redact secrets from what they write (``SENT``
frames of the user channel carry API credentials).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import struct
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import msgspec
import zstandard

from polyfeed.errors import RecordingError, RecordingFormatError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Channel",
    "Record",
    "RecordKind",
    "Recorder",
    "RecordingInfo",
    "SegmentIndex",
    "read_recording",
    "recording_info",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "polyfeed-recording"
FORMAT_VERSION = 1
META_FILE = "meta.json"
INDEX_FILE = "index.jsonl"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".pfr.zst"

SEGMENT_MAGIC = b"PFRS"
_SEGMENT_HEADER = struct.Struct("<4sHH")  # magic, format version, flags (0)
_RECORD_HEADER = struct.Struct("<IBBIQ")  # payload length, kind, channel, connection, recv_ns
RECORD_HEADER_SIZE = _RECORD_HEADER.size  # 18
_MAX_BUFFER_BYTES = 4 << 20  # flush before flush_s past this: bounds the pause a flush makes (~5 ms)
_READ_CHUNK = 1 << 20
_NEVER = 1 << 64  # after every u64 recv_ns


class RecordKind(enum.IntEnum):
    """What a record holds."""

    FRAME = 1
    """A frame received from the venue, byte for byte."""
    SENT = 2
    """A frame polyfeed sent (subscriptions, operations); the caller redacts secrets before writing."""
    MARKER = 3
    """A JSON object the stream writes about itself: ``{"marker": "disconnected", ...}``."""
    REST = 4
    """A REST answer the stream used, as JSON ``{"asset_id": ..., "body": "<the answer's text>"}``."""


class Channel(enum.IntEnum):
    """The WebSocket channel a record belongs to."""

    MARKET = 0
    USER = 1


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record of a recording: ``kind`` and ``channel`` are :class:`RecordKind` / :class:`Channel`
    values (kept as plain ints: readers must skip kinds they do not know)."""

    kind: int
    channel: int
    connection: int
    recv_ns: int
    payload: bytes


class SegmentIndex(msgspec.Struct, frozen=True):
    """One line of ``index.jsonl``: a closed segment. ``first_ns`` / ``last_ns`` are the smallest and
    largest ``recv_ns`` in it (the first and last record's, unless the clock stepped back)."""

    name: str
    first_ns: int
    last_ns: int
    records: int
    bytes_in: int
    bytes_on_disk: int


class RecordingInfo(msgspec.Struct, frozen=True):
    """What :func:`recording_info` finds: counts from the index, and from reading unindexed segments."""

    version: int
    segments: int
    records: int
    first_ns: int | None
    last_ns: int | None
    bytes_on_disk: int
    truncated_segments: int
    created_ns: int
    meta: dict[str, Any]


class _Meta(msgspec.Struct, frozen=True):
    format: str
    version: int
    created_ns: int
    polyfeed: str = ""
    meta: dict[str, Any] = {}


def _polyfeed_version() -> str:
    try:
        return metadata.version("polyfeed")
    except metadata.PackageNotFoundError:
        return "unknown"


def segment_name(number: int) -> str:
    """``seg-000001.pfr.zst`` for 1; the number widens past 999,999 (readers sort by the number)."""
    return f"{SEGMENT_PREFIX}{number:06d}{SEGMENT_SUFFIX}"


def _segment_number(name: str) -> int | None:
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    return int(digits) if digits.isdigit() else None


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
        self._pack = _RECORD_HEADER.pack
        self._parts: list[bytes] = []
        self._append = self._parts.append
        self._pending = 0  # bytes buffered (headers and payloads)
        self._limit = min(rotate_bytes, _MAX_BUFFER_BYTES)
        self._due_ns = 0  # the first write flushes at once and sets the pace
        self._last_flush_ns = 0
        # Smallest and largest recv_ns in the current segment. A record above _hi is checked against
        # _due_ns; one at or below it cannot be due, since _due_ns > _hi holds after every flush.
        self._hi = -1
        self._lo = _NEVER
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
                _segment_number(p.name) is not None for p in self.directory.iterdir()
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
                self._open_segment(_RECORD_HEADER.unpack_from(parts[0])[4])
            data = b"".join(parts)
            if not self._segment_bytes_written:  # also after a failed first write, cut back to 0
                data = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0) + data
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
        self._lo = _NEVER
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


# -- reading -----------------------------------------------------------------------------------------


class _Recording:
    """A recording directory opened for reading: its meta, its segments in order, its index."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / META_FILE
        try:
            raw = meta_path.read_bytes()
        except FileNotFoundError:
            raise RecordingFormatError(f"{self.directory} is not a recording: no {META_FILE}") from None
        except OSError as exc:
            raise RecordingError(f"cannot read {meta_path}: {exc}") from exc
        try:
            self.meta = msgspec.json.decode(raw, type=_Meta)
        except msgspec.DecodeError as exc:
            raise RecordingFormatError(f"{meta_path}: not a polyfeed recording's meta ({exc})") from None
        if self.meta.format != FORMAT_NAME:
            raise RecordingFormatError(f"{meta_path}: format {self.meta.format!r} is not {FORMAT_NAME!r}")
        if self.meta.version > FORMAT_VERSION or self.meta.version < 1:
            raise RecordingFormatError(
                f"{meta_path}: recording format version {self.meta.version}; this polyfeed reads "
                f"version {FORMAT_VERSION} and older (upgrade polyfeed to read it)"
            )
        numbered = []
        for path in self.directory.iterdir():
            number = _segment_number(path.name)
            if number is not None:
                numbered.append((number, path))
        self.segments = [path for _, path in sorted(numbered)]
        self.index = self._read_index()

    def _read_index(self) -> dict[str, SegmentIndex]:
        path = self.directory / INDEX_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise RecordingError(f"cannot read {path}: {exc}") from exc
        index = {}
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = msgspec.json.decode(line, type=SegmentIndex)
            except msgspec.DecodeError as exc:
                if number == len(lines):  # no newline after it: an append cut short by a crash
                    log.warning("%s: ignoring an incomplete last line", path)
                    continue
                raise RecordingFormatError(f"{path}, line {number}: {exc}") from None
            index[entry.name] = entry
        return index


class _DamagedTailError(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def _frames(fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The complete zstd frames of a segment as (offset in the file, decompressed content).

    Raises:
        _DamagedTailError: the file ends inside a frame, or a frame does not decode (corrupt or cut short).
    """
    dctx = zstandard.ZstdDecompressor()
    offset = 0
    data = fh.read(_READ_CHUNK)
    while data:
        start = offset
        obj = dctx.decompressobj()
        out = []
        while True:
            try:
                out.append(obj.decompress(data))
            except zstandard.ZstdError as exc:
                raise _DamagedTailError(start, f"zstd frame does not decode ({exc})") from None
            if obj.eof:
                rest = obj.unused_data
                offset += len(data) - len(rest)
                data = rest or fh.read(_READ_CHUNK)
                break
            offset += len(data)
            data = fh.read(_READ_CHUNK)
            if not data:
                raise _DamagedTailError(start, "the file ends inside a zstd frame")
        yield start, b"".join(out)


def _records(content: bytes, path: Path, offset: int, first: bool) -> list[Record]:
    """The records in one frame's content; a frame always holds whole records."""
    pos = 0
    end = len(content)
    if first:
        if end < _SEGMENT_HEADER.size:
            raise RecordingFormatError(f"{path}: the segment header is cut short")
        magic, version, _flags = _SEGMENT_HEADER.unpack_from(content)
        if magic != SEGMENT_MAGIC:
            raise RecordingFormatError(f"{path}: not a polyfeed segment (magic {magic!r})")
        if version > FORMAT_VERSION or version < 1:
            raise RecordingFormatError(
                f"{path}: segment format version {version}; this polyfeed reads version {FORMAT_VERSION}"
            )
        pos = _SEGMENT_HEADER.size
    unpack = _RECORD_HEADER.unpack_from
    out: list[Record] = []
    append = out.append
    try:
        while pos < end:
            length, kind, channel, connection, recv_ns = unpack(content, pos)
            start = pos + 18
            pos = start + length
            if pos > end:
                raise struct.error("payload runs past the frame")
            append(Record(kind, channel, connection, recv_ns, content[start:pos]))
    except struct.error:
        raise RecordingFormatError(
            f"{path}: a record is cut short inside the zstd frame at byte offset {offset} "
            f"(record {len(out)} of the frame); frames hold whole records, so the file is damaged"
        ) from None
    return out


class _SegmentRead:
    """Reads one segment's records; remembers whether its tail was truncated."""

    def __init__(self, path: Path, *, last: bool, times: bool = False) -> None:
        self.path = path
        self.last = last
        self.times = times
        self.records = 0
        self.truncated = False
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def __iter__(self) -> Iterator[list[Record]]:
        path = self.path
        try:
            fh = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise RecordingError(f"cannot read {path}: {exc}") from exc
        with fh:
            try:
                for offset, content in _frames(fh):
                    batch = _records(content, path, offset, offset == 0)
                    if not batch:
                        continue
                    self.records += len(batch)
                    if not self.times:
                        yield batch
                        continue
                    lo = min(r.recv_ns for r in batch)
                    hi = max(r.recv_ns for r in batch)
                    self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
                    self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)
                    yield batch
            except _DamagedTailError as cut:
                if not self.last or not _is_crash_tail(fh, cut.offset):
                    where = "the last segment" if self.last else "a closed segment"
                    raise RecordingFormatError(
                        f"{path}: {cut.reason} at byte offset {cut.offset}, in {where}"
                    ) from None
                self.truncated = True
                size = os.fstat(fh.fileno()).st_size
                log.warning(
                    "%s: the recording ends in a truncated frame at byte offset %d (%d bytes ignored); "
                    "the recorder was probably killed",
                    path,
                    cut.offset,
                    size - cut.offset,
                )
        if self.records == 0 and not self.truncated:
            if not self.last:
                raise RecordingFormatError(f"{path}: a closed segment without records")
            # Created, then killed before its first frame was written.
            self.truncated = True
            log.warning("%s: the recording ends in an empty segment; the recorder was probably killed", path)


def _is_crash_tail(fh: BinaryIO, offset: int) -> bool:
    """Whether a failing tail is what a crash leaves: a frame cut short (its bytes are a prefix of a
    valid frame, so zstd only reports it incomplete) or a stretch of zeros the file system allocated
    but never wrote. Anything else (a bad checksum before the end, garbage) is damage."""
    fh.seek(offset)
    tail = fh.read()
    if not tail.strip(b"\0"):
        return True
    try:
        obj = zstandard.ZstdDecompressor().decompressobj()
        obj.decompress(tail)
    except zstandard.ZstdError:
        return False
    return not obj.eof


def read_recording(
    directory: str | Path, *, from_ns: int | None = None, until_ns: int | None = None
) -> Iterator[Record]:
    """The records of a recording, in the order they were written.

    Args:
        directory: the recording's directory.
        from_ns: only records received at or after this time (ns since the epoch).
        until_ns: only records received before this time.

    The meta and version are checked at once; segments are read as the iterator is consumed. Closed
    segments that lie entirely outside ``[from_ns, until_ns)`` according to the index are not read.
    A truncated tail of the last segment (a killed recorder) ends the iteration with a warning.

    Raises:
        RecordingFormatError: not a recording, a newer format version, or a damaged segment (the message
            says which file and at which byte offset).
        RecordingError: a file that cannot be read.
    """
    recording = _Recording(directory)
    return _read(recording, from_ns, until_ns)


def _read(recording: _Recording, from_ns: int | None, until_ns: int | None) -> Iterator[Record]:
    lo = -1 if from_ns is None else from_ns
    hi = _NEVER if until_ns is None else until_ns
    segments = recording.segments
    for n, path in enumerate(segments):
        entry = recording.index.get(path.name)
        if entry is not None and (entry.last_ns < lo or entry.first_ns >= hi):
            continue
        reader = _SegmentRead(path, last=n == len(segments) - 1)
        for batch in reader:
            if from_ns is None and until_ns is None:
                yield from batch
            else:
                for record in batch:
                    if lo <= record.recv_ns < hi:
                        yield record
        if entry is not None and entry.records != reader.records and not reader.truncated:
            raise RecordingFormatError(
                f"{path}: holds {reader.records} records but {INDEX_FILE} says {entry.records}"
            )


def recording_info(directory: str | Path) -> RecordingInfo:
    """Counts and time span of a recording: from the index for closed segments, by reading the others.

    Raises:
        RecordingFormatError: as :func:`read_recording`, for the segments it reads.
    """
    recording = _Recording(directory)
    records = 0
    truncated = 0
    first: int | None = None
    last: int | None = None
    segments = recording.segments
    for n, path in enumerate(segments):
        entry = recording.index.get(path.name)
        seg_first: int | None
        seg_last: int | None
        if entry is not None:
            seg_records, seg_first, seg_last = entry.records, entry.first_ns, entry.last_ns
        else:
            reader = _SegmentRead(path, last=n == len(segments) - 1, times=True)
            for _ in reader:
                pass
            truncated += reader.truncated
            seg_records, seg_first, seg_last = reader.records, reader.first_ns, reader.last_ns
        records += seg_records
        if seg_records and seg_first is not None and seg_last is not None:
            first = seg_first if first is None else min(first, seg_first)
            last = seg_last if last is None else max(last, seg_last)
    on_disk = sum(p.stat().st_size for p in recording.directory.iterdir() if p.is_file())
    return RecordingInfo(
        version=recording.meta.version,
        segments=len(segments),
        records=records,
        first_ns=first,
        last_ns=last,
        bytes_on_disk=on_disk,
        truncated_segments=truncated,
        created_ns=recording.meta.created_ns,
        meta=recording.meta.meta,
    )
