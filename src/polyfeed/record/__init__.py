"""Recordings: every raw frame with its receive time, channel and connection, and the stream's markers.

The format (version 1, ``docs/recording-format.md``; its constants and types in
:mod:`polyfeed.record.format`) is written by :class:`Recorder` (:mod:`polyfeed.record.writer`) and read
by :func:`read_recording` (:mod:`polyfeed.record.reader`); :func:`recording_info` summarises one. No
parsing happens here: payloads are the bytes as received, so a parser fix applies to old recordings.
The Parquet export is in :mod:`polyfeed.replay.export` (it needs the ``parquet`` extra).
"""

from polyfeed.record.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Channel,
    Record,
    RecordingInfo,
    RecordKind,
    SegmentIndex,
)
from polyfeed.record.reader import read_recording, recording_info
from polyfeed.record.writer import Recorder

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
