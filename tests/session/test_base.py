"""ChannelSession, what both channels' sessions share: the pulled outputs, sequence numbers, failed
connects, skipped frames, and the heartbeat (a PING on schedule, never before the subscription; a PONG
deadline; a data-idle one)."""

from __future__ import annotations

import logging

import pytest

from polyfeed.errors import FrameDecodeError
from polyfeed.session import ConnectFailed, DecodeFailed, Event, ResyncRequested
from polyfeed.session.base import ChannelSession
from polyfeed.wire import PING
from tests.driving import connect_failed, events

S = 1_000_000_000
T0 = 1_790_000_000 * S


def session(ping_interval_s: float = 10.0, pong_timeout_s: float = 5.0) -> ChannelSession:
    return ChannelSession(3, ping_interval_s, pong_timeout_s)


def skip(s: ChannelSession, exc: FrameDecodeError, now_ns: int) -> list[Event]:
    s._skipped(exc, now_ns)
    return events(s)


def beat(s: ChannelSession, now_ns: int, idle_s: float, idle_what: str) -> list[bytes]:
    """The heartbeat at ``now_ns``: the frames it sends."""
    s._heartbeat(now_ns, idle_s, idle_what)
    return s.data_to_send()


def test_outputs_are_pulled_once_each_in_order() -> None:
    s = session()
    s.connect_failed(T0, "connection refused")
    s._skipped(FrameDecodeError("frame is not valid JSON", b"{"), T0 + 1)
    request = ResyncRequested(recv_ns=T0 + 2, seq=s._next_seq(), connection_id=3, asset_id="a", reason="r")
    s._request(request)
    s._start_heartbeat(T0, ping_now=False)
    s._heartbeat(T0 + 10 * S, 60.0, "")
    assert [type(e).__name__ for e in s.events_received()] == [
        "ConnectFailed",
        "DecodeFailed",
        "ResyncRequested",
    ]
    assert s.events_received() == [], "pulled once"
    assert s.requests_received() == [request], "a request is an event and a request"
    assert s.requests_received() == []
    assert s.data_to_send() == [PING]
    assert s.data_to_send() == []


def test_a_pulled_list_is_the_callers_to_keep() -> None:
    s = session()
    s.connect_failed(T0, "connection refused")
    first = s.events_received()
    s.connect_failed(T0 + 1, "connection refused")
    assert len(first) == 1 and len(s.events_received()) == 1


def closing(s: ChannelSession) -> tuple[str | None, float | None]:
    """Why the session wants its connection closed, and the idle deadline that did it."""
    return s.close_reason, s._idle_expired_s


def test_a_new_session_has_no_failures_and_no_reason_to_close() -> None:
    s = session()
    assert (s.connection_id, s.close_reason, s.decode_failures, s.connect_failures) == (3, None, 0, 0)


def test_sequence_numbers_rise_by_one_from_1_across_all_events() -> None:
    s = session()
    failed = connect_failed(s, T0, "connection refused")
    skipped = skip(s, FrameDecodeError("frame is not valid JSON", b"{"), T0 + 1)
    assert [e.seq for e in failed + skipped] == [1, 2]
    assert s._next_seq() == 3


def test_each_failed_connect_is_an_event_that_counts_the_attempts() -> None:
    s = session()
    first = connect_failed(s, T0, "connection refused")
    second = connect_failed(s, T0 + S, "the WebSocket handshake was answered HTTP 429 Too Many Requests")
    assert first == [
        ConnectFailed(recv_ns=T0, seq=1, connection_id=3, reason="connection refused", attempt=1)
    ]
    (event,) = second
    assert isinstance(event, ConnectFailed) and event.attempt == 2 and event.recv_ns == T0 + S
    assert s.connect_failures == 2


def test_a_connection_made_starts_the_count_of_failed_connects_again() -> None:
    s = session()
    connect_failed(s, T0, "connection refused")
    connect_failed(s, T0, "connection refused")
    s._start_heartbeat(T0 + S, ping_now=False)
    assert s.connect_failures == 0
    (event,) = connect_failed(s, T0 + 2 * S, "connection refused")
    assert isinstance(event, ConnectFailed) and event.attempt == 1


def test_a_skipped_frame_is_counted_and_reported_with_its_raw_frame() -> None:
    s = session()
    raw = b'{"event_type": "book", "bids": [}'
    (event,) = skip(s, FrameDecodeError("frame is not valid JSON", raw), T0)
    assert event == DecodeFailed(recv_ns=T0, seq=1, connection_id=3, error="frame is not valid JSON", raw=raw)
    (text,) = skip(s, FrameDecodeError("frame is not valid JSON", "{"), T0)
    assert isinstance(text, DecodeFailed) and text.raw == "{"
    assert s.decode_failures == 2


def test_only_the_first_ten_skipped_frames_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    s = session()
    with caplog.at_level(logging.WARNING, logger="polyfeed.session"):
        for i in range(25):
            skip(s, FrameDecodeError("frame is not valid JSON", b"x%d" % i), T0 + i)
    assert s.decode_failures == 25
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[0].startswith("connection 3: skipped a frame that does not decode: frame is not valid JSON")
    assert "x9" in lines[-1]


def test_pings_come_every_interval_from_the_subscription_on() -> None:
    s = session(ping_interval_s=10.0)
    s._start_heartbeat(T0, ping_now=False)
    assert beat(s, T0 + 9 * S, idle_s=60.0, idle_what="") == []
    assert beat(s, T0 + 10 * S, idle_s=60.0, idle_what="") == [PING]
    s._ping_outstanding_ns = None  # the PONG came
    assert beat(s, T0 + 15 * S, idle_s=60.0, idle_what="") == []
    assert beat(s, T0 + 20 * S, idle_s=60.0, idle_what="") == [PING]
    assert s.close_reason is None


def test_a_ping_sent_with_the_subscription_is_outstanding_at_once() -> None:
    s = session(ping_interval_s=10.0, pong_timeout_s=5.0)
    s._start_heartbeat(T0, ping_now=True)
    assert s._ping_outstanding_ns == T0
    beat(s, T0 + 5 * S, idle_s=60.0, idle_what="")
    assert s.close_reason is None, "at the deadline, not yet past it"
    beat(s, T0 + 5 * S + 1, idle_s=60.0, idle_what="")
    assert s.close_reason == "no PONG for 5 s"


def test_no_pong_within_the_timeout_closes() -> None:
    s = session(ping_interval_s=10.0, pong_timeout_s=5.0)
    s._start_heartbeat(T0, ping_now=False)
    assert beat(s, T0 + 10 * S, idle_s=60.0, idle_what="") == [PING]
    assert s._ping_outstanding_ns == T0 + 10 * S
    s._last_data_ns = T0 + 14 * S  # data keeps coming: the PONG deadline holds regardless
    beat(s, T0 + 14 * S, idle_s=60.0, idle_what="")
    assert s.close_reason is None
    beat(s, T0 + 16 * S, idle_s=60.0, idle_what="")
    assert s.close_reason == "no PONG for 5 s"


def test_a_second_ping_does_not_move_the_pong_deadline() -> None:
    s = session(ping_interval_s=2.0, pong_timeout_s=5.0)
    s._start_heartbeat(T0, ping_now=False)
    assert beat(s, T0 + 2 * S, idle_s=60.0, idle_what="") == [PING]
    assert beat(s, T0 + 4 * S, idle_s=60.0, idle_what="") == [PING]
    assert s._ping_outstanding_ns == T0 + 2 * S, "the deadline runs from the first unanswered PING"


def test_silence_past_the_idle_deadline_closes_and_keeps_the_deadline() -> None:
    s = session(ping_interval_s=100.0)
    s._start_heartbeat(T0, ping_now=False)
    beat(s, T0 + 30 * S, idle_s=30.0, idle_what=" on 2 assets")
    assert s.close_reason is None, "idle from the connection until data comes: not yet past"
    beat(s, T0 + 30 * S + 1, idle_s=30.0, idle_what=" on 2 assets")
    assert closing(s) == ("no data for 30.0 s on 2 assets", 30.0)
    s._start_heartbeat(T0 + 40 * S, ping_now=False)
    assert closing(s) == (None, None), "the next connection starts clean"


def test_data_moves_the_idle_deadline() -> None:
    s = session(ping_interval_s=100.0)
    s._start_heartbeat(T0, ping_now=False)
    s._last_data_ns = T0 + 25 * S
    beat(s, T0 + 50 * S, idle_s=30.0, idle_what="")
    assert s.close_reason is None
    beat(s, T0 + 56 * S, idle_s=30.0, idle_what="")
    assert s.close_reason == "no data for 31.0 s"


def test_the_deadlines_are_the_next_ping_the_idle_one_and_an_outstanding_pong() -> None:
    s = session(ping_interval_s=10.0, pong_timeout_s=5.0)
    s._start_heartbeat(T0, ping_now=False)
    assert s._heartbeat_deadlines(30.0) == [T0 + 10 * S, T0 + 30 * S + 1]
    s._last_data_ns = T0 + 4 * S
    beat(s, T0 + 10 * S, idle_s=30.0, idle_what="")  # sends a PING
    assert s._heartbeat_deadlines(30.0) == [T0 + 20 * S, T0 + 34 * S + 1, T0 + 15 * S + 1]
