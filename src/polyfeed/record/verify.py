"""Checking a recording through: :func:`verify_recording`, behind ``polyfeed verify DIR``.

Every segment is read to its end as a reader would (:mod:`polyfeed.record.reader`): its zstd frames
decode and their content checksums match, the records in each frame are whole, and what the index says
of it (records, first and last receive time, uncompressed bytes, size on disk) is what the file holds.
Segments the index lists, or the numbering implies, must be there. A truncated tail of the last segment
(a killed recorder) and frames written without a checksum (by a writer that did not add them) are noted,
not counted as damage: the first is what the format promises for a crash, the second cannot be checked.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from polyfeed.record.format import INDEX_FILE, SegmentIndex
from polyfeed.record.segments import Recording, SegmentReader, Slot

__all__ = ["SegmentCheck", "Verification", "verify_recording"]


class SegmentCheck(msgspec.Struct, frozen=True):
    """What :func:`verify_recording` found in one segment.

    Attributes:
        name: the segment's file name (the first of ``segments`` missing ones in a row).
        present: whether the file is there.
        intact: read through without damage, and in agreement with its index line.
        problems: what is wrong, one phrase each (empty when intact).
        notes: what is worth knowing but no damage (a killed recorder's tail, frames without checksum).
        frames: zstd frames that read; ``checksummed`` of them carry a content checksum.
        records: records read.
        records_lost: records the index counts that could not be read (``None``: it does not say).
        first_ns: the first receive time read (``None``: no record).
        last_ns: the last.
        size: the file's size in bytes.
        segments: missing segments in a row (a gap in the numbering), this one the first.
    """

    name: str
    present: bool
    intact: bool
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    frames: int = 0
    checksummed: int = 0
    records: int = 0
    records_lost: int | None = None
    first_ns: int | None = None
    last_ns: int | None = None
    size: int = 0
    segments: int = 1


class Verification(msgspec.Struct, frozen=True):
    """What :func:`verify_recording` found: one :class:`SegmentCheck` a segment, in order."""

    directory: str
    segments: tuple[SegmentCheck, ...]

    @property
    def intact(self) -> bool:
        """Every segment is there and reads through, in agreement with the index."""
        return all(s.intact for s in self.segments)

    @property
    def records(self) -> int:
        """Records that read."""
        return sum(s.records for s in self.segments)

    @property
    def records_lost(self) -> int:
        """Records the index counts that could not be read (losses it does not count are not in it)."""
        return sum(s.records_lost or 0 for s in self.segments)


def verify_recording(directory: str | Path) -> Verification:
    """Read every segment of a recording through and compare it with the index.

    Raises:
        RecordingFormatError: not a recording, a newer format version.
        RecordingError: a file that cannot be read (permissions).
    """
    recording = Recording(directory)
    return Verification(str(recording.directory), tuple(_check(slot) for slot in recording.slots()))


def _check(slot: Slot) -> SegmentCheck:
    entry = slot.entry
    if slot.path is None:
        if entry is None:
            run = "s in a row" if slot.run > 1 else ""
            problem = f"missing: a gap in the numbering ({slot.run} segment{run}, not in {INDEX_FILE})"
            return SegmentCheck(
                slot.name, present=False, intact=False, problems=(problem,), segments=slot.run
            )
        problem = f"missing: {INDEX_FILE} lists it with {entry.records:,} records"
        return SegmentCheck(
            slot.name,
            present=False,
            intact=False,
            problems=(problem,),
            records_lost=entry.records,
            first_ns=entry.first_ns,
            last_ns=entry.last_ns,
        )
    reader = SegmentReader(slot.path, last=slot.last, stats=True)
    for _ in reader:
        pass
    problems = [
        f"damaged at byte {s.offset} ({s.reason}): "
        + (f"the rest, {s.size:,} bytes, skipped" if s.rest else f"{s.size:,} bytes skipped")
        for s in reader.stretches
    ]
    notes = []
    if reader.truncated:
        notes.append("ends in a frame cut short, as a killed recorder leaves it")
    if reader.checksummed < reader.frames:
        notes.append(
            f"{reader.frames - reader.checksummed} of {reader.frames} frames carry no checksum: damage "
            "inside them may go unnoticed"
        )
    lost: int | None = None
    if entry is None:
        if not slot.last:
            notes.append(f"not in {INDEX_FILE}")
    else:
        if not problems:  # a damaged segment disagrees with its index line, of course
            problems += _disagreements(entry, reader)
        lost = max(0, entry.records - reader.records)
    return SegmentCheck(
        slot.name,
        present=True,
        intact=not problems,
        problems=tuple(problems),
        notes=tuple(notes),
        frames=reader.frames,
        checksummed=reader.checksummed,
        records=reader.records,
        records_lost=lost,
        first_ns=reader.first_ns,
        last_ns=reader.last_ns,
        size=reader.size,
    )


def _disagreements(entry: SegmentIndex, reader: SegmentReader) -> list[str]:
    found = {
        "records": reader.records,
        "first_ns": reader.first_ns,
        "last_ns": reader.last_ns,
        "bytes_in": reader.bytes_in,
        "bytes_on_disk": reader.size,
    }
    said = msgspec.structs.asdict(entry)
    return [
        f"{INDEX_FILE} says {key} {said[key]}, the file has {value}"
        for key, value in found.items()
        if said[key] != value
    ]
