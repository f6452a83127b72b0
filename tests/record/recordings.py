"""Helpers for the recording tests: numbered records, and a look at a recording's files."""

from __future__ import annotations

import json
from pathlib import Path

from polyfeed.record import Channel, Record, Recorder, RecordKind

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
