"""The recording format, version 1: every raw frame as received, with its receive time, and the gaps.

A recording is a directory (the full specification is ``docs/recording-format.md``)::

    meta.json            {"format": "polyfeed-recording", "version": 1, "created_ns": ..., ...}
    seg-000001.pfr.zst   zstd frames, one per flush; their content is a segment header, then records
    seg-000002.pfr.zst
    index.jsonl          one line per closed segment: name, first_ns, last_ns, records, bytes_in, ...

A record is an 18-byte little-endian header (payload length u32, kind u8, channel u8, connection u32,
recv_ns u64) and the payload bytes, exactly as given. Each zstd frame holds whole records and carries
its content checksum; the first frame of a segment starts with the segment header (magic ``PFRS``,
format version u16, flags u16).

This module holds what the two sides share: the constants, the record and index types, segment names.
:mod:`polyfeed.record.writer` writes recordings (:class:`~polyfeed.record.writer.Recorder`);
:mod:`polyfeed.record.reader` reads them (:func:`~polyfeed.record.reader.read_recording`,
:func:`~polyfeed.record.reader.recording_info`).

Nothing here parses a payload or logs one: callers redact secrets from what they write (``SENT``
frames of the user channel carry API credentials).
"""

from __future__ import annotations

import enum
import struct
from typing import Any

import msgspec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GAP_MARKER",
    "REDACTED_API_KEY",
    "TIMER_MARKER",
    "AnyMarker",
    "BookMetadata",
    "BookMissingMarker",
    "Channel",
    "ConnectFailedMarker",
    "Damage",
    "DisconnectedMarker",
    "GapMarker",
    "Marker",
    "MetadataMarker",
    "Record",
    "RecordKind",
    "RecordingInfo",
    "ResyncFailedMarker",
    "ResyncedMarker",
    "SegmentIndex",
    "StoppedMarker",
    "TimerMarker",
    "decode_marker",
    "encode_marker",
]

FORMAT_NAME = "polyfeed-recording"
FORMAT_VERSION = 1
META_FILE = "meta.json"
INDEX_FILE = "index.jsonl"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".pfr.zst"

SEGMENT_MAGIC = b"PFRS"
SEGMENT_HEADER = struct.Struct("<4sHH")  # magic, format version, flags (0)
RECORD_HEADER = struct.Struct("<IBBIQ")  # payload length, kind, channel, connection, recv_ns
RECORD_HEADER_SIZE = RECORD_HEADER.size  # 18
NEVER_NS = 1 << 64  # after every u64 recv_ns
REDACTED_API_KEY = "<redacted-api-key>"
"""What a recording holds where the venue sent your API key (the secret and passphrase are never in it)."""
GAP_MARKER = "gap"
"""The marker a reader yields where records were lost (a missing or damaged segment); never written."""
STOPPED_MARKER = "stopped"
"""The marker a connection writes when the stream closes it (an orderly stop, not a lost connection)."""


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


# -- markers: what the stream writes about itself (``RecordKind.MARKER`` payloads) ----------------------
#
# One tagged struct a marker kind, the tag in ``"marker"``: ``msgspec.json.encode(TimerMarker())`` is
# ``{"marker":"timer"}``, byte for byte what earlier versions wrote as hand-built JSON objects, so old
# recordings read with these types and new ones read in old readers. Adding a kind: a struct here with
# its tag, added to ``AnyMarker``; a reader that meets a tag it does not know gets ``None`` from
# :func:`decode_marker` and skips the record (counted).


class Marker(msgspec.Struct, frozen=True, tag_field="marker"):
    """Base of every marker."""


class TimerMarker(Marker, frozen=True, tag="timer"):
    """The driver ran the session's timer here (a replay runs it at the same moment)."""


class DisconnectedMarker(Marker, frozen=True, tag="disconnected"):
    """The connection was lost (closed by the venue, reset, a zombie, a protocol error)."""

    reason: str = ""


class StoppedMarker(Marker, frozen=True, tag="stopped"):
    """The stream closed the connection itself: an orderly stop, the books left as they were."""

    reason: str = ""


class ConnectFailedMarker(Marker, frozen=True, tag="connect_failed"):
    """A connection could not be made (refused, a handshake rejected)."""

    reason: str = ""


class GapMarker(Marker, frozen=True, tag="gap"):
    """Records were lost here (a missing or damaged segment): yielded by the reader, never written."""

    reason: str = "records lost"


class BookMissingMarker(Marker, frozen=True, tag="book_missing"):
    """``GET /book`` answered 404 for this token: the venue has no book for it (resolved)."""

    asset_id: str


class ResyncFailedMarker(Marker, frozen=True, tag="resync_failed"):
    """A ``GET /book`` for this token failed (it is retried later)."""

    asset_id: str


class ResyncedMarker(Marker, frozen=True, tag="resynced"):
    """Written by recordings made before the recording tap (issue 14) after the ``REST`` record of a
    resync; that record is what the session was fed, so readers skip this one."""

    asset_id: str


class BookMetadata(msgspec.Struct, frozen=True):
    """What the venue's hash covers and the WebSocket never sends, from ``POST /books``."""

    asset_id: str
    min_order_size: str | None = None
    tick_size: str | None = None  # since 2026-12; older metadata markers lack it
    neg_risk: bool | None = None


class MetadataMarker(Marker, frozen=True, tag="metadata"):
    """The books' metadata as the stream loaded it, before their subscription."""

    books: list[BookMetadata] = msgspec.field(default_factory=list)


AnyMarker = (
    TimerMarker
    | DisconnectedMarker
    | StoppedMarker
    | ConnectFailedMarker
    | GapMarker
    | BookMissingMarker
    | ResyncFailedMarker
    | ResyncedMarker
    | MetadataMarker
)
"""Every marker kind, for :func:`decode_marker`."""

_MARKER_DECODER = msgspec.json.Decoder(AnyMarker)
_MARKER_ENCODER = msgspec.json.Encoder()
TIMER_MARKER = _MARKER_ENCODER.encode(TimerMarker())
"""The timer marker's payload, encoded once (the driver writes one at every timer run)."""


def encode_marker(marker: Marker) -> bytes:
    """A marker as the payload of a ``MARKER`` record."""
    return _MARKER_ENCODER.encode(marker)


def decode_marker(payload: bytes) -> AnyMarker | None:
    """A ``MARKER`` record's payload as its struct; ``None`` for one this polyfeed does not know (a
    newer kind, or a damaged payload): readers skip it, counted."""
    try:
        return _MARKER_DECODER.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


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
    """What :func:`~polyfeed.record.reader.recording_info` finds: counts from the index, and from reading
    unindexed segments."""

    version: int
    segments: int
    records: int
    first_ns: int | None
    last_ns: int | None
    bytes_on_disk: int
    truncated_segments: int
    created_ns: int
    meta: dict[str, Any]


class Damage(msgspec.Struct, frozen=True):
    """A loss a reader found: a segment missing, or a stretch of one that cannot be read.

    ``problem`` is ``"missing"`` (the index lists the segment, or the numbering skips it, and the file
    is not there), ``"damaged"`` (a zstd frame that does not decode or whose checksum does not match, a
    file cut short inside a frame, a frame whose records do not parse) or ``"short"`` (every frame reads,
    but the segment holds fewer records than its index line says).

    Attributes:
        segment: the segment's file name (the first of ``segments`` missing ones in a row).
        problem: ``"missing"``, ``"damaged"`` or ``"short"``.
        records_lost: how many records are lost, from the index; ``None`` when it does not say.
        offset: where the damage starts, in bytes from the start of the file (damaged only).
        bytes_skipped: the bytes of the file not read (damaged only).
        rest_skipped: no readable frame followed the damage: the rest of the segment was skipped.
        regions: damaged stretches in the segment (each skipped to the next frame that reads).
        segments: missing segments in a row (a gap in the numbering), this one the first.
        first_ns: the lost records' first receive time, from the index (``None``: unknown).
        last_ns: their last receive time, from the index.
        detail: what was wrong (the decoder's words, say).
    """

    segment: str
    problem: str
    records_lost: int | None = None
    offset: int | None = None
    bytes_skipped: int = 0
    rest_skipped: bool = False
    regions: int = 0
    segments: int = 1
    first_ns: int | None = None
    last_ns: int | None = None
    detail: str = ""

    def describe(self) -> str:
        """One line for a person: ``seg-000002.pfr.zst is missing: 4,811 records lost (per the index)``."""
        lost = (
            f"{self.records_lost:,} records lost (per the index)"
            if self.records_lost is not None
            else "how many records were lost is unknown (the segment has no index line)"
        )
        if self.problem == "missing":
            if self.segments > 1:
                return (
                    f"{self.segments} segments from {self.segment} on are missing (a gap in the "
                    "numbering): how many records were lost is unknown"
                )
            return f"{self.segment} is missing: {lost}"
        if self.problem == "short":
            return f"{self.segment} ends early ({self.detail}): {lost}"
        if self.rest_skipped and self.regions <= 1:
            skipped = f"the rest of the segment skipped ({self.bytes_skipped:,} bytes)"
        else:
            regions = "1 damaged stretch" if self.regions == 1 else f"{self.regions} damaged stretches"
            skipped = f"{regions} skipped ({self.bytes_skipped:,} bytes)"
        return f"{self.segment} is damaged at byte {self.offset} ({self.detail}): {skipped}, {lost}"


class MetaDocument(msgspec.Struct, frozen=True):
    """The content of ``meta.json``."""

    format: str
    version: int
    created_ns: int
    polyfeed: str = ""
    meta: dict[str, Any] = {}


def segment_name(number: int) -> str:
    """``seg-000001.pfr.zst`` for 1; the number widens past 999,999 (readers sort by the number)."""
    return f"{SEGMENT_PREFIX}{number:06d}{SEGMENT_SUFFIX}"


def segment_number(name: str) -> int | None:
    """The number in a segment file's name, or None for a file that is not a segment."""
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    return int(digits) if digits.isdigit() else None
