"""What every channel's session shares: the contract with its driver, sequence numbers, skipped frames,
and the heartbeat (text ``PING`` on a schedule, never before the subscription; a ``PONG`` deadline; a
data-idle deadline).

The contract has the shape of the ``websockets`` library's sans-I/O protocols: **inputs return nothing,
outputs are pulled.** The driver feeds the session what happened (``connection_made``,
``receive_data``, ``timer``, ``connection_lost``, ``connect_failed``, and the answers to its requests),
each with the time it happened, then pulls three outputs:

- :meth:`ChannelSession.data_to_send`: frames for the socket (subscriptions, operations, ``PING``);
- :meth:`ChannelSession.events_received`: events for the user, in order;
- :meth:`ChannelSession.requests_received`: what the session needs done outside it, as typed events
  (:data:`polyfeed.session.events.AnyRequest`: a ``GET /book`` resync, a REST reconciliation, giving up
  on rejected credentials). Each is also among the events, where the user sees it.

``close_reason`` set after an input asks the driver to close the connection. Because every decision is
made inside an input from the times passed in, a recording of the inputs (:mod:`polyfeed.session.tap`)
replayed into a fresh session rebuilds it exactly.
"""

from __future__ import annotations

import logging

from polyfeed.errors import FrameDecodeError
from polyfeed.session.events import AnyRequest, ConnectFailed, DecodeFailed, Event
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
        # Counters for polyfeed.metrics, read when scraped: one increment where the thing happens.
        self.messages_received = 0
        """Messages decoded from the frames received (``PONG`` included)."""
        self.bytes_received = 0
        """Payload bytes of the frames received, whether or not they decoded."""
        self.connections_made = 0
        """Connections made (the first, then each reconnect)."""
        self.connects_failed = 0
        """Failed connection attempts, ever (``connect_failures`` counts those since the last success)."""
        self.idle_timeouts = 0
        """Connections this session closed for silence past the data-idle deadline."""
        self.pong_timeouts = 0
        """Connections this session closed for want of a ``PONG``."""
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
        self._events: list[Event] = []
        self._to_send: list[bytes] = []
        self._requests: list[AnyRequest] = []

    # -- outputs, pulled by the driver after each input ---------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The frames to send since the last call, in order (the driver sends them as they are)."""
        frames = self._to_send
        if frames:
            self._to_send = []
        return frames

    def events_received(self) -> list[Event]:
        """The events since the last call, in order. The list is the caller's to keep."""
        events = self._events
        if events:
            self._events = []
        return events

    def requests_received(self) -> list[AnyRequest]:
        """What the session asked the driver to do since the last call (each also among the events)."""
        requests = self._requests
        if requests:
            self._requests = []
        return requests

    # -- inputs every channel takes (``connect_failed`` is here; subclasses give the others) -------------

    def connection_made(self, now_ns: int) -> None:
        """The socket is open: the subscription frame is to be sent."""
        raise NotImplementedError

    def receive_data(self, data: bytes | str, now_ns: int) -> None:
        """A frame was received."""
        raise NotImplementedError

    def connection_lost(self, now_ns: int, reason: str) -> None:
        """The socket is gone (``reason``: why, in words)."""
        raise NotImplementedError

    def timer(self, now_ns: int) -> None:
        """Time passed: deadlines, heartbeat (called at :meth:`next_timer_ns`, or sooner)."""
        raise NotImplementedError

    def next_timer_ns(self) -> int:
        """When :meth:`timer` next has something to do."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """Whether the connection is up: made, subscribed, and not lost since."""
        return self._subscribed

    def _request(self, request: AnyRequest) -> None:
        self._events.append(request)
        self._requests.append(request)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _start_heartbeat(self, now_ns: int, *, ping_now: bool) -> None:
        """The connection is made and its subscription sent (with a PING after it when ``ping_now``)."""
        self._subscribed = True
        self.connections_made += 1
        self.connect_failures = 0
        self.close_reason = None
        self._connected_ns = now_ns
        self._last_data_ns = None  # the idle deadline runs from here until data arrives
        self._next_ping_ns = now_ns + self._ping_interval_ns
        self._ping_outstanding_ns = now_ns if ping_now else None
        self._idle_expired_s = None

    def connect_failed(self, now_ns: int, reason: str) -> None:
        """The driver could not make the connection (it retries after its backoff): reported, so that
        a user sees a refused connection or a rejected handshake instead of silence (issue 12, item 11)."""
        self.connect_failures += 1
        self.connects_failed += 1
        self._events.append(
            ConnectFailed(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                reason=reason,
                attempt=self.connect_failures,
            )
        )

    def _skipped(self, exc: FrameDecodeError, now_ns: int) -> None:
        """A frame that does not decode: counted, logged (the first few), reported, never fatal."""
        self.decode_failures += 1
        if self.decode_failures <= _LOGGED_DECODE_FAILURES:
            log.warning("connection %d: skipped a frame that does not decode: %s", self.connection_id, exc)
        self._events.append(
            DecodeFailed(
                recv_ns=now_ns,
                seq=self._next_seq(),
                connection_id=self.connection_id,
                error=exc.reason,
                raw=exc.raw,
            )
        )

    def _heartbeat_deadlines(self, idle_s: float) -> list[int]:
        last = self._last_data_ns if self._last_data_ns is not None else self._connected_ns
        deadlines = [self._next_ping_ns, last + int(idle_s * NS) + 1]
        if self._ping_outstanding_ns is not None:
            deadlines.append(self._ping_outstanding_ns + int(self._pong_timeout_s * NS) + 1)
        return deadlines

    def _heartbeat(self, now_ns: int, idle_s: float, idle_what: str) -> None:
        """Sets ``close_reason`` past the PONG or data-idle deadline; sends a PING when one is due."""
        if (
            self._ping_outstanding_ns is not None
            and now_ns - self._ping_outstanding_ns > self._pong_timeout_s * NS
        ):
            self.pong_timeouts += self.close_reason is None  # once a connection: the close follows
            self.close_reason = f"no PONG for {self._pong_timeout_s:g} s"
        last = self._last_data_ns if self._last_data_ns is not None else self._connected_ns
        if now_ns - last > idle_s * NS:
            self.idle_timeouts += self.close_reason is None
            self.close_reason = f"no data for {(now_ns - last) / NS:.1f} s{idle_what}"
            self._idle_expired_s = idle_s
        if now_ns < self._next_ping_ns:
            return
        if self._ping_outstanding_ns is None:
            self._ping_outstanding_ns = now_ns
        self._next_ping_ns = now_ns + self._ping_interval_ns
        self._to_send.append(PING)
