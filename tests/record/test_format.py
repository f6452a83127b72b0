"""The recording format: lossless round trips through the writer and the reader."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from polyfeed.record import Channel, Record, Recorder, RecordKind, read_recording, recording_info
from tests.record.recordings import segment_files, write_all

records_strategy = st.lists(
    st.builds(
        Record,
        kind=st.sampled_from(list(RecordKind)).map(int),
        channel=st.sampled_from(list(Channel)).map(int),
        connection=st.integers(min_value=0, max_value=2**32 - 1),
        recv_ns=st.integers(min_value=0, max_value=2**64 - 1),
        payload=st.binary(max_size=3000),
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(records=records_strategy, rotate_bytes=st.integers(min_value=1, max_value=20_000))
def test_any_records_come_back_exactly_and_in_order(records: list[Record], rotate_bytes: int) -> None:
    """Whatever the kinds, channels, times (even out of order) and payloads (binary, empty), and
    wherever segments rotate, a reader gets back exactly the records written."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "rec"
        with Recorder(directory, rotate_bytes=rotate_bytes, flush_s=0.001) as recorder:
            write_all(recorder, records)
        assert list(read_recording(directory)) == records
        info = recording_info(directory)
        assert info.records == len(records) == recorder.records
        assert info.segments == len(segment_files(directory))
        assert info.truncated_segments == 0
        if records:
            assert info.first_ns == min(r.recv_ns for r in records)
            assert info.last_ns == max(r.recv_ns for r in records)
        else:
            assert info.segments == 0, "a recorder that wrote nothing leaves no segment behind"
