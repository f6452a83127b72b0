"""Recordings: every raw frame with its receive time, channel and connection, and the stream's markers.

The format (version 1, ``docs/recording-format.md``) is written by :class:`Recorder` and read by
:func:`read_recording`; :func:`recording_info` summarises one. No parsing happens here: payloads are
the bytes as received, so a parser fix applies to old recordings. The Parquet export is in
:mod:`polyfeed.record.export` (it needs the ``parquet`` extra).
"""

from polyfeed.record.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Channel,
    Record,
    Recorder,
    RecordingInfo,
    RecordKind,
    SegmentIndex,
    read_recording,
    recording_info,
)

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
