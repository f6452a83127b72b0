"""A recording's files as readers see them: the segments it should hold, and one segment read frame by
frame with its damaged stretches skipped."""

from __future__ import annotations

import json
from pathlib import Path

import zstandard

from polyfeed.record import Recorder
from polyfeed.record.format import RECORD_HEADER
from polyfeed.record.segments import Recording, SegmentReader, Stretch
from tests.record.recordings import flip, frame_offsets, index_lines, numbered, segment_files, write_all


def read(path: Path, *, last: bool = False) -> tuple[list[int], list[Stretch], SegmentReader]:
    reader = SegmentReader(path, last=last, stats=True)
    seqs: list[int] = []
    stretches: list[Stretch] = []
    for item in reader:
        if isinstance(item, Stretch):
            stretches.append(item)
        else:
            seqs += [json.loads(r.payload)["seq"] for r in item]
    return seqs, stretches, reader


def test_slots_are_the_segments_on_disk_the_index_lists_and_the_numbering_implies(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    recorder = Recorder(directory, rotate_bytes=20_000)
    write_all(recorder, numbered(1_000))
    recorder.flush()  # the last segment stays open: not indexed
    files = segment_files(directory)
    assert len(files) >= 6
    lines = index_lines(directory)
    files[1].unlink()  # listed, missing
    files[2].unlink()  # and the next one, unlisted too: a gap in the numbering
    files[3].unlink()
    kept = [line for line in lines if line["name"] not in (files[2].name, files[3].name)]
    (directory / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in kept))
    slots = Recording(directory).slots()
    assert [(s.name, s.path is not None, s.entry is not None, s.run, s.last) for s in slots] == [
        (files[0].name, True, True, 1, False),
        (files[1].name, False, True, 1, False),
        (files[2].name, False, False, 2, False),
        *((f.name, True, True, 1, False) for f in files[4:-1]),
        (files[-1].name, True, False, 1, True),
    ]
    recorder.close()


def test_a_damaged_frame_is_skipped_to_the_next_that_decodes_whole(tmp_path: Path) -> None:
    """Damaged bytes may hold zstd's magic number too: a candidate counts only once it decodes whole."""
    directory = tmp_path / "rec"
    with Recorder(directory, flush_s=0.05) as recorder:
        write_all(recorder, numbered(1_000))
    (segment,) = segment_files(directory)
    starts = frame_offsets(segment)
    assert len(starts) >= 6
    data = segment.read_bytes()
    magic = zstandard.MAGIC_NUMBER.to_bytes(4, "little")
    garbage = b"\x00" + magic + b"\x01" * 40 + magic + b"\xff" * 8  # two false starts
    segment.write_bytes(data[: starts[3]] + garbage + data[starts[3] :])
    seqs, stretches, reader = read(segment)
    assert stretches == [Stretch(starts[3], len(garbage), stretches[0].reason, rest=False)]
    assert seqs == list(range(1_000)), "nothing but the garbage was skipped"
    assert reader.frames == reader.checksummed == len(starts)

    segment.write_bytes(data)
    flip(segment, (starts[2] + starts[3]) // 2 - 8)
    seqs, stretches, reader = read(segment)
    (stretch,) = stretches
    assert (stretch.offset, stretch.size, stretch.rest) == (starts[2], starts[3] - starts[2], False)
    assert "checksum" in stretch.reason or "does not decode" in stretch.reason
    assert reader.frames == len(starts) - 1 and reader.complete
    lost_from = next(i for i, n in enumerate(seqs) if n != i)
    assert seqs[lost_from:] == list(range(seqs[lost_from], 1_000)), "the frames after it all read"

    segment.write_bytes(data[: starts[-1] + 5])  # a frame cut short, in a segment that is not the last
    seqs, stretches, _ = read(segment)
    assert stretches == [Stretch(starts[-1], 5, "the file ends inside a zstd frame", rest=True)]
    seqs, stretches, reader = read(segment, last=True)  # the same in the last one: a killed recorder
    assert stretches == [] and reader.truncated and reader.truncated_at == starts[-1]


def test_a_frame_that_decodes_but_holds_no_whole_records_is_skipped_alone(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, flush_s=0.05) as recorder:
        write_all(recorder, numbered(500))
    (segment,) = segment_files(directory)
    starts = frame_offsets(segment)
    data = segment.read_bytes()
    bogus = zstandard.ZstdCompressor(write_checksum=True).compress(b"\x05\x00\x00\x00\x01" + b"x" * 7)
    segment.write_bytes(data[: starts[2]] + bogus + data[starts[2] :])
    seqs, stretches, _ = read(segment)
    (stretch,) = stretches
    assert (stretch.offset, stretch.size, stretch.rest) == (starts[2], len(bogus), False)
    assert "is cut short" in stretch.reason
    assert seqs == list(range(500))


def test_a_frame_whose_last_payload_runs_past_its_end_is_skipped_alone(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    with Recorder(directory, flush_s=0.05) as recorder:
        write_all(recorder, numbered(500))
    (segment,) = segment_files(directory)
    starts = frame_offsets(segment)
    data = segment.read_bytes()
    whole = RECORD_HEADER.pack(3, 1, 0, 1, 5) + b'{"seq":-1}'[:3]
    past = RECORD_HEADER.pack(100, 1, 0, 1, 6) + b"x" * 10  # says 100 bytes, holds 10
    bogus = zstandard.ZstdCompressor(write_checksum=True).compress(whole + past)
    segment.write_bytes(data[: starts[2]] + bogus + data[starts[2] :])
    seqs, stretches, _ = read(segment)
    (stretch,) = stretches
    assert (stretch.offset, stretch.size, stretch.rest) == (starts[2], len(bogus), False)
    assert stretch.reason.startswith(f"record 1 of the frame at byte offset {starts[2]} is cut short")
    assert seqs == list(range(500)), "the record before it is not yielded either: the frame is damaged"
