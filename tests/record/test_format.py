"""The recording format: lossless round trips through the writer and the reader."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfeed.record import Channel, Record, Recorder, RecordKind, read_recording, recording_info
from polyfeed.record.format import (
    TIMER_MARKER,
    BookMetadata,
    BookMissingMarker,
    ConnectFailedMarker,
    DisconnectedMarker,
    Marker,
    MetadataMarker,
    ResyncedMarker,
    ResyncFailedMarker,
    StoppedMarker,
    TimerMarker,
    decode_marker,
    encode_marker,
)
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


@pytest.mark.parametrize(
    ("marker", "written_before"),
    [
        (TimerMarker(), b'{"marker":"timer"}'),
        (
            DisconnectedMarker("closed by the server"),
            b'{"marker":"disconnected","reason":"closed by the server"}',
        ),
        (
            ConnectFailedMarker("connection refused"),
            b'{"marker":"connect_failed","reason":"connection refused"}',
        ),
        (StoppedMarker("closed by the client"), b'{"marker":"stopped","reason":"closed by the client"}'),
        (BookMissingMarker("7"), b'{"marker":"book_missing","asset_id":"7"}'),
        (ResyncFailedMarker("7"), b'{"marker":"resync_failed","asset_id":"7"}'),
        (ResyncedMarker("7"), b'{"marker":"resynced","asset_id":"7"}'),
        (
            MetadataMarker([BookMetadata("7", "5", "0.01", False)]),
            b'{"marker":"metadata","books":[{"asset_id":"7","min_order_size":"5","tick_size":"0.01",'
            b'"neg_risk":false}]}',
        ),
    ],
)
def test_markers_are_the_json_objects_earlier_versions_wrote(marker: Marker, written_before: bytes) -> None:
    """Issue 14, item 5: markers were ad-hoc dicts read by string checks; as tagged structs they write
    the same bytes, so old recordings read with them and new ones read in an older polyfeed."""
    assert encode_marker(marker) == written_before
    assert decode_marker(written_before) == marker


def test_old_and_unknown_markers() -> None:
    old_metadata = b'{"marker":"metadata","books":[{"asset_id":"7","min_order_size":"5","neg_risk":true}]}'
    assert decode_marker(old_metadata) == MetadataMarker([BookMetadata("7", "5", None, True)])
    assert decode_marker(b'{"marker":"disconnected","reason":"end","assets":[]}') == DisconnectedMarker("end")
    assert decode_marker(b'{"marker":"from-the-future"}') is None
    assert decode_marker(b'{"marker":"resynced"}') is None, "a marker missing what it must hold"
    assert decode_marker(b"not json") is None
    assert encode_marker(TimerMarker()) == TIMER_MARKER
