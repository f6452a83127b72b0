"""Reading recordings: :func:`read_recording` and :func:`recording_info`, for the format in
:mod:`polyfeed.record.format`.

Segments are read frame by frame (:mod:`polyfeed.record.segments`), and damage is survived rather than
fatal: a segment the index lists (or the numbering implies) that is missing, a zstd frame that does not
decode or whose checksum does not match, a closed segment cut short or holding fewer records than its
index line, are each reported as a :class:`~polyfeed.record.format.Damage` (to ``on_damage``, or
logged) and skipped: a damaged frame to the next frame that reads, a missing segment to the next one.
Where records were lost the reader yields a ``gap`` marker record, so that a replay treats the loss as a
live disconnect: every book goes stale until its next snapshot.

A truncated tail of the last segment (a recorder killed with SIGKILL) is no damage: the reading ends
there with a warning, as the format promises. Nothing here logs a payload.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from polyfeed.record.format import (
    INDEX_FILE,
    NEVER_NS,
    Channel,
    Damage,
    GapMarker,
    Record,
    RecordingInfo,
    RecordKind,
    SegmentIndex,
    encode_marker,
)
from polyfeed.record.segments import Recording, SegmentReader, Slot, Stretch

__all__ = ["read_recording", "recording_info"]

log = logging.getLogger(__name__)

_MARKER = int(RecordKind.MARKER)
_MARKET = int(Channel.MARKET)


def read_recording(
    directory: str | Path,
    *,
    from_ns: int | None = None,
    until_ns: int | None = None,
    on_damage: Callable[[Damage], None] | None = None,
) -> Iterator[Record]:
    """The records of a recording, in the order they were written.

    Args:
        directory: the recording's directory.
        from_ns: only records received at or after this time (ns since the epoch).
        until_ns: only records received before this time.
        on_damage: called with each loss found (a missing segment at once, a damaged one once it has
            been read through); ``None`` logs each as a warning.

    The meta and version are checked at once; segments are read as the iterator is consumed. Closed
    segments that lie entirely outside ``[from_ns, until_ns)`` according to the index are not read.
    A truncated tail of the last segment (a killed recorder) ends the iteration with a warning. Where
    records were lost, a ``gap`` marker record (market channel, connection 0, the time of the last
    record before the loss) comes before the records that follow it.

    Raises:
        RecordingFormatError: not a recording, or a newer format version.
        RecordingError: a file that cannot be read.
    """
    recording = Recording(directory)
    # Records come a frame's worth at a time, flattened in C: no generator resumed for each record.
    return itertools.chain.from_iterable(_read(recording, from_ns, until_ns, on_damage or _log_damage))


def _log_damage(damage: Damage) -> None:
    log.warning("%s", damage.describe())


def _gap_marker(losses: list[str], recv_ns: int) -> Record:
    """The record a reader yields where records were lost."""
    payload = encode_marker(GapMarker("; ".join(losses)))
    return Record(_MARKER, _MARKET, 0, recv_ns, payload)


def _read(
    recording: Recording, from_ns: int | None, until_ns: int | None, report: Callable[[Damage], None]
) -> Iterator[list[Record]]:
    """The records in batches (a zstd frame's, or a gap marker alone)."""
    lo = -1 if from_ns is None else from_ns
    hi = NEVER_NS if until_ns is None else until_ns
    windowed = from_ns is not None or until_ns is not None
    pending: list[str] = []  # losses since the last record yielded
    last_ns: int | None = None  # the last record yielded
    read_ns: int | None = None  # the last record read
    for slot in recording.slots():
        entry = slot.entry
        if entry is not None and (entry.last_ns < lo or entry.first_ns >= hi):
            continue
        if slot.path is None:
            if read_ns is not None and read_ns >= hi:
                continue  # a gap in the numbering after the window
            report(_missing(slot))
            pending.append(f"{slot.name} is missing")
            continue
        reader = SegmentReader(slot.path, last=slot.last)
        try:
            for item in reader:
                if isinstance(item, Stretch):
                    if read_ns is None or read_ns < hi:
                        pending.append(f"{slot.name} is damaged at byte {item.offset}")
                    continue
                read_ns = item[-1].recv_ns
                batch = [r for r in item if lo <= r.recv_ns < hi] if windowed else item
                if not batch:
                    continue
                if pending:
                    yield [_gap_marker(pending, batch[0].recv_ns if last_ns is None else last_ns)]
                    pending = []
                yield batch
                last_ns = batch[-1].recv_ns
        finally:
            if reader.stretches:
                report(_damaged(slot, reader))
        if entry is not None and not reader.stretches and reader.records != entry.records:
            if reader.records < entry.records:
                report(_short(slot, entry, reader))
                pending.append(f"{slot.name} ends early")
            else:
                log.warning(
                    "%s holds %d records but %s says %d", slot.path, reader.records, INDEX_FILE, entry.records
                )
    if pending and last_ns is not None:
        yield [_gap_marker(pending, last_ns)]


def _missing(slot: Slot) -> Damage:
    entry = slot.entry
    if entry is None:
        return Damage(slot.name, "missing", segments=slot.run)
    return Damage(
        slot.name, "missing", records_lost=entry.records, first_ns=entry.first_ns, last_ns=entry.last_ns
    )


def _damaged(slot: Slot, reader: SegmentReader) -> Damage:
    stretches = reader.stretches
    entry = slot.entry
    lost = max(0, entry.records - reader.records) if entry is not None and reader.complete else None
    return Damage(
        slot.name,
        "damaged",
        records_lost=lost,
        offset=stretches[0].offset,
        bytes_skipped=sum(s.size for s in stretches),
        rest_skipped=stretches[-1].rest,
        regions=len(stretches),
        detail=stretches[0].reason,
    )


def _short(slot: Slot, entry: SegmentIndex, reader: SegmentReader) -> Damage:
    return Damage(
        slot.name,
        "short",
        records_lost=entry.records - reader.records,
        detail=f"{reader.records:,} records; {reader.size:,} of {entry.bytes_on_disk:,} bytes",
    )


def recording_info(directory: str | Path) -> RecordingInfo:
    """Counts and time span of a recording: from the index for closed segments, by reading the others
    (what of them reads: damage is reported when the recording is read, or by ``polyfeed verify``).

    Raises:
        RecordingFormatError: not a recording, or a newer format version.
    """
    recording = Recording(directory)
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
            reader = SegmentReader(path, last=n == len(segments) - 1, stats=True)
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
