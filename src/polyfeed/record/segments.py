"""A recording's files, for the readers: the directory (its meta, its index, its segments in order and
those missing) and one segment read frame by frame, damaged stretches skipped.

A damaged zstd frame (one that does not decode, or whose content checksum does not match) is skipped to
the next frame that reads: frames are not length-prefixed, but each starts with zstd's magic number,
and a candidate counts only once it decodes whole, checksum included. A frame that decodes but does not
hold whole records is skipped alone. The tail of the last segment, when it is what a killed recorder
leaves (a frame cut short, zeros), ends the segment instead: that is no damage.

:mod:`polyfeed.record.reader` reads recordings with these; :mod:`polyfeed.record.verify` checks them.
Nothing here logs a payload.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
    RECORD_HEADER,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    MetaDocument,
    Record,
    SegmentIndex,
    segment_name,
    segment_number,
)

__all__ = ["Recording", "SegmentReader", "Slot", "Stretch"]

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
_MAGIC = zstandard.MAGIC_NUMBER.to_bytes(4, "little")  # 28 b5 2f fd: every zstd frame starts with it
_HEADER_BYTES = 18  # the longest zstd frame header
_PREFETCH_BYTES = 256 << 10  # after a frame this large, the next is decompressed on the reader's thread


@dataclass(frozen=True)
class Slot:
    """A segment the recording should hold: on disk (``path``), listed in the index (``entry``), or
    neither (``run`` numbers in a row that the numbering skips)."""

    name: str
    path: Path | None
    entry: SegmentIndex | None
    last: bool = False
    """The last segment on disk and not indexed: the one a killed recorder was writing."""
    run: int = 1


class Recording:
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

    def slots(self) -> list[Slot]:
        """Every segment the recording should hold, in order: those on disk, those the index lists and
        the numbers the numbering skips (from 1 to the highest number known)."""
        on_disk: dict[int, Path] = {}
        for path in self.segments:
            number = segment_number(path.name)
            if number is not None:
                on_disk[number] = path
        listed: dict[int, SegmentIndex] = {}
        for entry in self.index.values():
            number = segment_number(entry.name)
            if number is not None:
                listed[number] = entry
        last = self.segments[-1] if self.segments else None
        slots: list[Slot] = []
        previous = 0
        for number in sorted(on_disk.keys() | listed.keys()):
            if number > previous + 1:
                slots.append(Slot(segment_name(previous + 1), None, None, run=number - previous - 1))
            previous = number
            file = on_disk.get(number)
            found = listed.get(number)
            name = file.name if file is not None else found.name if found is not None else ""
            slots.append(Slot(name, file, found, last=file is not None and file == last and found is None))
        return slots


@dataclass(frozen=True)
class Stretch:
    """A damaged stretch of a segment: from ``offset``, ``size`` bytes skipped (to the next frame that
    reads, or to the end of the file when ``rest``)."""

    offset: int
    size: int
    reason: str
    rest: bool


class _BadContentError(Exception):
    """A frame that decodes but whose content is not records (damage a checksum did not catch)."""


def _records(content: bytes, offset: int, first: bool) -> list[Record]:
    """The records in one frame's content; a frame always holds whole records.

    Raises:
        _BadContentError: a record cut short, or a segment header that is not one.
        RecordingFormatError: a segment of a newer format version.
    """
    pos = 0
    end = len(content)
    if first:
        if end < SEGMENT_HEADER.size:
            raise _BadContentError("the segment header is cut short")
        magic, version, _flags = SEGMENT_HEADER.unpack_from(content)
        if magic != SEGMENT_MAGIC:
            raise _BadContentError(f"not a polyfeed segment (magic {magic!r})")
        if version > FORMAT_VERSION or version < 1:
            raise RecordingFormatError(
                f"segment format version {version}; this polyfeed reads version {FORMAT_VERSION}"
            )
        pos = SEGMENT_HEADER.size
    unpack = RECORD_HEADER.unpack_from
    out: list[Record] = []
    append = out.append
    header_cut = False
    try:
        while pos < end:
            length, kind, channel, connection, recv_ns = unpack(content, pos)
            start = pos + 18
            pos = start + length
            append(Record(kind, channel, connection, recv_ns, content[start:pos]))
    except struct.error:
        header_cut = True
    if header_cut or pos > end:  # only the last record's payload can run past the end: the loop stops
        raise _BadContentError(
            f"record {len(out) if header_cut else len(out) - 1} of the frame at byte offset {offset} is "
            "cut short; frames hold whole records, so the file is damaged"
        )
    return out


_Decoded = tuple[int, list[bytes], str, int, bytes]
"""A frame decompressed: its offset, its content in pieces, why it failed (``""``: it did not), the
offset after it and the data read after it."""


class _Decoder:
    """Decompresses a segment's frames one at a time, reading the file as it goes."""

    def __init__(self, fh: BinaryIO, dctx: zstandard.ZstdDecompressor, stats: SegmentReader | None) -> None:
        self.fh = fh
        self.dctx = dctx
        self.stats = stats

    def next(self, offset: int, data: bytes) -> _Decoded | None:
        """The frame at ``offset`` (``data``: the file's bytes from there), or None at the end."""
        return self.next_frame(offset, data) if data else None

    def next_frame(self, offset: int, data: bytes) -> _Decoded:
        fh = self.fh
        start = offset
        if self.stats is not None:
            if len(data) < _HEADER_BYTES:
                data += fh.read(_READ_CHUNK)
            self.stats._count_checksum(data)
        obj = self.dctx.decompressobj()
        out = []
        reason = ""
        try:
            while True:
                out.append(obj.decompress(data))
                if obj.eof:
                    rest = obj.unused_data
                    offset += len(data) - len(rest)
                    data = rest or fh.read(_READ_CHUNK)
                    break
                offset += len(data)
                data = fh.read(_READ_CHUNK)
                if not data:
                    reason = "the file ends inside a zstd frame"
                    break
        except zstandard.ZstdError as exc:
            reason = f"zstd frame does not decode: {exc}"
        return start, out, reason, offset, data


class SegmentReader:
    """Reads one segment: yields its records a frame at a time, and a :class:`Stretch` for each damaged
    stretch it skipped. Counts what it read; ``stats`` also counts time spans, bytes and checksums, and
    leaves a truncated tail to the caller to report (it is logged otherwise)."""

    def __init__(self, path: Path, *, last: bool, stats: bool = False) -> None:
        self.path = path
        self.last = last
        self.stats = stats
        self.records = 0
        self.frames = 0
        self.checksummed = 0
        """Frames that carry a content checksum (counted with ``stats``)."""
        self.bytes_in = 0
        self.size = 0
        self.truncated = False
        """The last segment ends as a killed recorder leaves it (logged, unless ``stats``)."""
        self.truncated_at: int | None = None
        self.complete = False
        """Read to the end of the file."""
        self.stretches: list[Stretch] = []
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def __iter__(self) -> Iterator[list[Record] | Stretch]:
        path = self.path
        try:
            fh = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:  # removed after the directory was listed: nothing of it is read
            self.stretches.append(Stretch(0, 0, "the file is gone", rest=True))
            yield self.stretches[-1]
            self.complete = True
            return
        except OSError as exc:
            raise RecordingError(f"cannot read {path}: {exc}") from exc
        with fh:
            self.size = os.fstat(fh.fileno()).st_size
            yield from self._frames(fh)
        self.complete = True
        if self.records == 0 and not self.truncated and not self.stretches:
            if not self.last:
                self.stretches.append(Stretch(0, self.size, "a closed segment without records", True))
                yield self.stretches[-1]
                return
            # Created, then killed before its first frame was written.
            self.truncated = True
            self.truncated_at = 0
            if self.stats:
                return
            log.warning("%s: the recording ends in an empty segment; the recorder was probably killed", path)

    def _frames(self, fh: BinaryIO) -> Iterator[list[Record] | Stretch]:
        """The frames of the file in order. While the records of one frame are parsed and consumed, a
        thread of the reader's decompresses the next one (zstd releases the GIL): a replay's session
        work and the decompression run side by side. Only after a large frame (a busy stream's: small
        ones cost less to decompress than to hand over); ``stats`` reads on one thread."""
        executor: ThreadPoolExecutor | None = None
        ahead: Future[_Decoded] | None = None
        try:
            decoder = _Decoder(fh, zstandard.ZstdDecompressor(), self if self.stats else None)
            decoded: _Decoded | None = decoder.next(0, fh.read(_READ_CHUNK))
            while decoded is not None:
                start, out, reason, offset, data = decoded
                if not reason:
                    if data and not self.stats and sum(map(len, out)) >= _PREFETCH_BYTES:
                        if executor is None:
                            executor = ThreadPoolExecutor(1, thread_name_prefix="polyfeed-reader")
                        ahead = executor.submit(decoder.next_frame, offset, data)  # decompressed meanwhile
                        decoded = None
                    else:
                        decoded = decoder.next(offset, data)
                    try:
                        batch = _records(b"".join(out), start, start == 0)
                    except _BadContentError as exc:
                        reason = str(exc)
                    except RecordingFormatError as exc:
                        raise RecordingFormatError(f"{self.path}: {exc}") from None
                    else:
                        self.frames += 1
                        if batch:
                            self._count(batch)
                            yield batch
                    if reason:  # the frame decoded (its end is known): skip just this one
                        self.stretches.append(Stretch(start, offset - start, reason, rest=False))
                        yield self.stretches[-1]
                    if ahead is not None:
                        decoded = ahead.result()
                        ahead = None
                    continue
                if self.last and _is_crash_tail(fh, start):
                    self.truncated = True
                    self.truncated_at = start
                    if self.stats:  # the caller reports it
                        return
                    log.warning(
                        "%s: the recording ends in a truncated frame at byte offset %d (%d bytes ignored); "
                        "the recorder was probably killed",
                        self.path,
                        start,
                        self.size - start,
                    )
                    return
                following = _next_frame(fh, start + 1)
                end = self.size if following is None else following
                self.stretches.append(Stretch(start, end - start, reason, rest=following is None))
                yield self.stretches[-1]
                if following is None:
                    return
                fh.seek(following)
                decoded = decoder.next(following, fh.read(_READ_CHUNK))
        finally:
            if executor is not None:  # the file is closed after this: the thread must be done with it
                executor.shutdown(wait=True, cancel_futures=True)

    def _count(self, batch: list[Record]) -> None:
        self.records += len(batch)
        if not self.stats:
            return
        self.bytes_in += sum(18 + len(r.payload) for r in batch)
        lo = min(r.recv_ns for r in batch)
        hi = max(r.recv_ns for r in batch)
        self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
        self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)

    def _count_checksum(self, data: bytes) -> None:
        try:
            if zstandard.get_frame_parameters(data[:_HEADER_BYTES]).has_checksum:
                self.checksummed += 1
        except zstandard.ZstdError:
            pass  # not a frame header: the decoder says so next


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


def _next_frame(fh: BinaryIO, pos: int) -> int | None:
    """The offset of the next zstd frame at or after ``pos`` that decodes whole (checksum included),
    or None. A frame starts with zstd's magic number; damaged bytes may hold it too, hence the test."""
    while True:
        found = _find(fh, pos)
        if found is None:
            return None
        if _frame_reads(fh, found):
            return found
        pos = found + 1


def _find(fh: BinaryIO, pos: int) -> int | None:
    fh.seek(pos)
    carry = b""
    base = pos
    while True:
        chunk = fh.read(_READ_CHUNK)
        if not chunk:
            return None
        data = carry + chunk
        at = data.find(_MAGIC)
        if at >= 0:
            return base + at
        carry = data[-(len(_MAGIC) - 1) :]
        base += len(data) - len(carry)


def _frame_reads(fh: BinaryIO, offset: int) -> bool:
    fh.seek(offset)
    obj = zstandard.ZstdDecompressor().decompressobj()
    while True:
        chunk = fh.read(_READ_CHUNK)
        if not chunk:
            return False
        try:
            obj.decompress(chunk)
        except zstandard.ZstdError:
            return False
        if obj.eof:
            return True
