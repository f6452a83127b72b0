"""Helpers for the recording tests: numbered records, a look at a recording's files and frames, damage
made on purpose, and what a reader yields and reports."""

from __future__ import annotations

import json
from pathlib import Path

import zstandard

from polyfeed.record import Channel, Record, Recorder, RecordKind, read_recording
from polyfeed.record.format import Damage

S = 1_000_000_000
T0 = 1_790_000_000 * S


def write_all(recorder: Recorder, records: list[Record]) -> None:
    for r in records:
        recorder.write(r.kind, r.channel, r.connection, r.recv_ns, r.payload)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.pfr.zst"))


def index_lines(directory: Path) -> list[dict[str, int | str]]:
    return [json.loads(line) for line in (directory / "index.jsonl").read_text().splitlines()]


def numbered(n: int, *, start_ns: int = T0, step_ns: int = 1_000_000, size: int = 100) -> list[Record]:
    """Records whose payload says their position, for order checks."""
    return [
        Record(
            int(RecordKind.FRAME),
            int(Channel.MARKET),
            n % 3,
            start_ns + i * step_ns,
            f'{{"seq":{i}}}'.encode().ljust(size, b" "),
        )
        for i in range(n)
    ]


def read_all(directory: Path, **window: int) -> tuple[list[Record], list[Damage]]:
    """Every record a reader yields (gap markers included) and the losses it reported."""
    damages: list[Damage] = []
    records = list(read_recording(directory, on_damage=damages.append, **window))
    return records, damages


def is_gap(record: Record) -> bool:
    return record.kind == RecordKind.MARKER and json.loads(record.payload).get("marker") == "gap"


def without_gaps(records: list[Record]) -> list[Record]:
    return [r for r in records if not is_gap(r)]


def frame_offsets(path: Path) -> list[int]:
    """Where each zstd frame of a segment starts (read with zstd itself, not with polyfeed's reader)."""
    data = path.read_bytes()
    offsets = []
    position = 0
    while position < len(data):
        offsets.append(position)
        obj = zstandard.ZstdDecompressor().decompressobj()
        obj.decompress(data[position:])
        position = len(data) - len(obj.unused_data)
    return offsets


def flip(path: Path, at: int, count: int = 16) -> None:
    """Invert ``count`` bytes of a file from ``at`` on."""
    data = bytearray(path.read_bytes())
    for i in range(at, at + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
