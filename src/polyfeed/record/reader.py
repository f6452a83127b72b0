"""Reading recordings: :func:`read_recording` and :func:`recording_info`, for the format in
:mod:`polyfeed.record.format`.

Segments are read frame by frame. A truncated tail of the last segment (a recorder killed with SIGKILL)
ends the reading with a warning; any other damage, or an index that disagrees with a segment, raises
:class:`~polyfeed.errors.RecordingFormatError` naming the file and the byte offset.

Nothing here logs a payload.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec
import zstandard

from polyfeed.errors import RecordingError, RecordingFormatError
from polyfeed.record.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    NEVER_NS,
    RECORD_HEADER,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    MetaDocument,
    Record,
    RecordingInfo,
    SegmentIndex,
    segment_number,
)

__all__ = ["read_recording", "recording_info"]

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


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
            self.meta = msgspec.json.decode(raw, type=MetaDocument)
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
            number = segment_number(path.name)
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
        if end < SEGMENT_HEADER.size:
            raise RecordingFormatError(f"{path}: the segment header is cut short")
        magic, version, _flags = SEGMENT_HEADER.unpack_from(content)
        if magic != SEGMENT_MAGIC:
            raise RecordingFormatError(f"{path}: not a polyfeed segment (magic {magic!r})")
        if version > FORMAT_VERSION or version < 1:
            raise RecordingFormatError(
                f"{path}: segment format version {version}; this polyfeed reads version {FORMAT_VERSION}"
            )
        pos = SEGMENT_HEADER.size
    unpack = RECORD_HEADER.unpack_from
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
    hi = NEVER_NS if until_ns is None else until_ns
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
