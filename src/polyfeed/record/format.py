"""The recording format, version 1: every raw frame as received, with its receive time, and the gaps.

A recording is a directory (the full specification is ``docs/recording-format.md``)::

    meta.json            {"format": "polyfeed-recording", "version": 1, "created_ns": ..., ...}
    seg-000001.pfr.zst   zstd frames, one per flush; their content is a segment header, then records
    seg-000002.pfr.zst
    index.jsonl          one line per closed segment: name, first_ns, last_ns, records, bytes_in, ...

A record is an 18-byte little-endian header (payload length u32, kind u8, channel u8, connection u32,
recv_ns u64) and the payload bytes, exactly as given. Each zstd frame holds whole records; the first
frame of a segment starts with the segment header (magic ``PFRS``, format version u16, flags u16).

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
    "Channel",
    "Record",
    "RecordKind",
    "RecordingInfo",
    "SegmentIndex",
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
