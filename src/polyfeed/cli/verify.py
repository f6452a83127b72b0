"""``polyfeed verify DIR``: a recording checked through, segment by segment (every zstd frame decoded
and its checksum compared, every record header read, the index compared with each file), and how a
damaged recording shows in the commands that read one.

``replay`` and ``export`` read past damage (:func:`polyfeed.record.read_recording`): each loss is one
line on stderr as it is found (``polyfeed replay: seg-000002.pfr.zst is missing: 4,811 records lost
(per the index)``), the summary says how many records were lost, and the command exits with
:data:`EXIT_DAMAGED` (3) instead of 0, so that a script tells a complete run from one over a damaged
recording (1 stays "failed": nothing or not all of it was done).
"""

from __future__ import annotations

import datetime as dt
import sys

import typer

from polyfeed.cli.errors import EXIT_FAILURE, describe, fail
from polyfeed.cli.recording import RecordingDir
from polyfeed.cli.terminal import out_console
from polyfeed.errors import PolyfeedError
from polyfeed.record.format import Damage
from polyfeed.record.verify import SegmentCheck, verify_recording

__all__ = ["EPILOG", "EXIT_DAMAGED", "DamageReport", "verify_command"]

EPILOG = """**Examples**

* `polyfeed verify rec/fed`
* `polyfeed verify rec/fed && polyfeed export rec/fed --parquet pq/fed`
"""

EXIT_DAMAGED = 3
"""``replay`` and ``export`` ran to the end over a recording with losses (each reported on stderr)."""

_MIB = 1 << 20


def verify_command(directory: RecordingDir) -> None:
    """Check a recording: every segment's frames, checksums and records, and the index.

    Prints one line per segment (intact, MISSING or DAMAGED, and why) and a summary. Exits 0 when the
    recording is intact, 1 when a segment is missing or damaged. `polyfeed replay` and `export` read
    past damage, reporting each loss and exiting 3. A last segment cut short by a killed recorder is
    noted, not damage: the format promises it.
    """
    try:
        found = verify_recording(directory)
    except PolyfeedError as exc:
        raise fail("verify", describe(exc)) from None
    console = out_console()
    width = max((len(s.name) for s in found.segments), default=0)
    for check in found.segments:
        console.print(
            f"{check.name:<{width}}  {_state(check):<7}  {_details(check)}", markup=False, soft_wrap=True
        )
    bad = [s for s in found.segments if not s.intact]
    if not bad:
        count = sum(1 for s in found.segments if s.present)
        segments = "1 segment" if count == 1 else f"{count} segments"
        console.print(
            f"{directory}: intact: {segments}, {found.records:,} records", markup=False, soft_wrap=True
        )
        return
    lost = f", {found.records_lost:,} records lost (per the index)" if found.records_lost else ""
    missing = sum(s.segments for s in bad if not s.present)
    damaged = len(bad) - sum(1 for s in bad if not s.present)
    console.print(
        f"{directory}: NOT INTACT: {_segments(missing)} missing, {damaged} damaged; "
        f"{found.records:,} records read{lost}",
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILURE)


def _segments(count: int) -> str:
    return "1 segment" if count == 1 else f"{count} segments"


def _state(check: SegmentCheck) -> str:
    if check.intact:
        return "intact"
    return "DAMAGED" if check.present else "MISSING"


def _details(check: SegmentCheck) -> str:
    if not check.present:
        return "; ".join(check.problems)
    span = f", {_utc(check.first_ns)} to {_utc(check.last_ns)}" if check.first_ns and check.last_ns else ""
    frames = "1 frame" if check.frames == 1 else f"{check.frames:,} frames"
    read = (
        f"{frames}, {check.records:,} records, {_size(check.size)}{span}"
        if check.intact
        else f"{frames} and {check.records:,} records read"
    )
    parts = [*check.problems, read]
    if not check.intact and check.records_lost:
        parts.append(f"{check.records_lost:,} records lost (per the index)")
    parts += check.notes
    return "; ".join(parts)


def _size(size: int) -> str:
    return f"{size / _MIB:.1f} MiB" if size >= _MIB else f"{size / 1024:.1f} KiB"


def _utc(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class DamageReport:
    """What a command reading a recording (``replay``, ``export``) found lost: one line on stderr per
    loss as it is found (pass the report as ``on_damage``), a summary, and the exit code."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.losses: list[Damage] = []

    def __call__(self, damage: Damage) -> None:
        self.losses.append(damage)
        sys.stderr.write(f"polyfeed {self.command}: {damage.describe()}\n")
        sys.stderr.flush()

    def summary(self) -> str:
        """``2 losses in the recording: 4,890 records lost (per the index)`` (empty when none)."""
        if not self.losses:
            return ""
        count = len(self.losses)
        known = sum(d.records_lost or 0 for d in self.losses)
        unknown = sum(1 for d in self.losses if d.records_lost is None)
        losses = "1 loss" if count == 1 else f"{count} losses"
        text = f"{losses} in the recording: {known:,} records lost (per the index)"
        if unknown:
            text += f", and {unknown} of unknown size"
        return text

    def exit(self) -> None:
        """Exit with :data:`EXIT_DAMAGED` if anything was lost.

        Raises:
            typer.Exit: something was.
        """
        if self.losses:
            raise typer.Exit(EXIT_DAMAGED)
