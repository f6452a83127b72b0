"""What every channel's session shares: sequence numbers, skipped frames, and the heartbeat (text
``PING`` on a schedule, never before the subscription; a ``PONG`` deadline; a data-idle deadline)."""

from __future__ import annotations

import logging

from polyfeed.errors import FrameDecodeError
from polyfeed.session.events import ConnectFailed, DecodeFailed, Event
from polyfeed.wire import PING

__all__ = ["CLOSED_BY_CLIENT", "ChannelSession"]

CLOSED_BY_CLIENT = "closed by the client"
"""The reason of the last ``Disconnected`` of a connection the stream closed itself (an orderly stop)."""

log = logging.getLogger("polyfeed.session")
NS = 1_000_000_000
_LOGGED_DECODE_FAILURES = 10


class ChannelSession:
    """Base of :class:`polyfeed.session.MarketSession` and :class:`polyfeed.session.user.UserSession`.

    Subclasses call :meth:`_start_heartbeat` when the connection is made, clear
    ``_ping_outstanding_ns`` on ``PONG``, keep ``_last_data_ns``, and build their ``timer`` on
    :meth:`_heartbeat` and their ``next_timer_ns`` on :meth:`_heartbeat_deadlines`. When the data-idle
    deadline closes a connection, ``_idle_expired_s`` holds that deadline until the next connection is
    made, so that a subclass can judge the silence once it knows more.
    """

    def __init__(self, connection_id: int, ping_interval_s: float, pong_timeout_s: float) -> None:
        self.connection_id = connection_id
        self.close_reason: str | None = None
        self.decode_failures = 0
        self.connect_failures = 0
        """Failed connection attempts since the last connection was made."""
        self._ping_interval_ns = int(ping_interval_s * NS)
        self._pong_timeout_s = pong_timeout_s
        self._seq = 0
        self._subscribed = False
        self._connected_ns = 0
        self._last_data_ns: int | None = None
        self._next_ping_ns = 0
        self._ping_outstanding_ns: int | None = None
        self._lost_after_data_ns: int | None = None
        self._idle_expired_s: float | None = None  # the data-idle deadline that closed this connection

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _start_heartbeat(self, now_ns: int, *, ping_now: bool) -> None:
        """The connection is made and its subscription sent (with a PING after it when ``ping_now``)."""
        self._subscribed = True
        self.connect_failures = 0
        self.close_reason = None
        self._connected_ns = now_ns
        self._last_data_ns = None  # the idle deadline runs from here until data arrives
        self._next_ping_ns = now_ns + self._ping_interval_ns
        self._ping_outstanding_ns = now_ns if ping_now else None
        self._idle_expired_s = None

    def connect_failed(self, now_ns: int, reason: str) -> list[Event]:
        """The driver could not make the connection (it retries after its backoff): reported, so that
        a user sees a refused connection or a rejected handshake instead of silence (issue 12, item 11)."""
        self.connect_failures += 1
        return [
            ConnectFailed(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                attempt=self.connect_failures,
            )
        ]

    def _skipped(self, exc: FrameDecodeError, now_ns: int) -> list[Event]:
        """A frame that does not decode: counted, logged (the first few), reported, never fatal."""
        self.decode_failures += 1
        if self.decode_failures <= _LOGGED_DECODE_FAILURES:
            log.warning("connection %d: skipped a frame that does not decode: %s", self.connection_id, exc)
        return [
            DecodeFailed(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                error=exc.reason,
                raw=exc.raw,
            )
        ]

    def _heartbeat_deadlines(self, idle_s: float) -> list[int]:
        last = self._last_data_ns if self._last_data_ns is not None else self._connected_ns
        deadlines = [self._next_ping_ns, last + int(idle_s * NS) + 1]
        if self._ping_outstanding_ns is not None:
            deadlines.append(self._ping_outstanding_ns + int(self._pong_timeout_s * NS) + 1)
        return deadlines

    def _heartbeat(self, now_ns: int, idle_s: float, idle_what: str) -> list[bytes]:
        """Sets ``close_reason`` past the PONG or data-idle deadline; returns a PING when one is due."""
        if (
            self._ping_outstanding_ns is not None
            and now_ns - self._ping_outstanding_ns > self._pong_timeout_s * NS
        ):
            self.close_reason = f"no PONG for {self._pong_timeout_s:g} s"
        last = self._last_data_ns if self._last_data_ns is not None else self._connected_ns
        if now_ns - last > idle_s * NS:
            self.close_reason = f"no data for {(now_ns - last) / NS:.1f} s{idle_what}"
            self._idle_expired_s = idle_s
        if now_ns < self._next_ping_ns:
            return []
        if self._ping_outstanding_ns is None:
            self._ping_outstanding_ns = now_ns
        self._next_ping_ns = now_ns + self._ping_interval_ns
        return [PING]
