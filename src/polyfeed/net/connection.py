"""The connection driver: one sans-I/O session over a picows WebSocket.

It connects, sends what the session returns, feeds it every frame and timer tick, and reconnects with
exponential backoff and full jitter; :class:`MarketConnection` also fetches ``GET /book`` when its
:class:`polyfeed.session.MarketSession` asks for a resync (the user channel's driver, with its REST
reconciliation, is :class:`polyfeed.net.user.UserConnection`). It reconnects only for these causes,
never by catching ``Exception``:

- the connection could not be made: ``OSError`` (refused, reset, unreachable) or ``TimeoutError``;
- the handshake failed: ``picows.WSError`` (HTTP 429 on connect bursts, spec 1.4, among them);
- the server closed or reset the connection;
- the session's deadlines passed (no PONG, or no data: a zombie connection, spec 11.1);
- the stream broke the protocol: ``picows.WSError`` out of the open connection, a frame over
  :data:`MAX_MESSAGE_BYTES` among them (close 1009), or a fragmented message whose parts add up to more.

It gives up, raising :class:`polyfeed.errors.ConnectError` from :meth:`SessionConnection.run`, only
while it has never connected: when the handshake is answered with an HTTP 4xx other than 408 and 429 (a
wrong path or host, which no retry mends), or after ``max_connect_attempts`` failed tries in a row
(refused, unreachable). A connection that was made once is retried for as long as the stream runs, so
that a recorder outlives a venue outage.

A message may be at most :data:`MAX_MESSAGE_BYTES` (64 MiB) whether it comes whole or in fragments:
far above the largest real book (a few KB) or initial dump (500 books of deep ladders, a few MB), and a
bound on what a hostile or broken server can make the client buffer. Above it the connection is
replaced, at ERROR in the log and as the ``Disconnected`` event's reason.
"""

from __future__ import annotations

import asyncio
import http
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import msgspec
import picows

from polyfeed.errors import ConnectError, FrameDecodeError
from polyfeed.record.format import (
    TIMER_MARKER,
    BookMissingMarker,
    Channel,
    ConnectFailedMarker,
    DisconnectedMarker,
    Marker,
    RecordKind,
    ResyncedMarker,
    ResyncFailedMarker,
    StoppedMarker,
    encode_marker,
)
from polyfeed.session import Event, MarketSession
from polyfeed.session.base import CLOSED_BY_CLIENT
from polyfeed.venue import WS_SCHEMES, check_url
from polyfeed.wire import Book, decode_market

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Backoff",
    "FrameSink",
    "MarketConnection",
    "Session",
    "SessionConnection",
]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest message a connection takes, whole or in fragments (issue 12, items 1 and 12)."""

_FRAME = int(RecordKind.FRAME)
_SENT = int(RecordKind.SENT)
_MARKER = int(RecordKind.MARKER)
_REST = int(RecordKind.REST)


class FrameSink(Protocol):
    """Where a driver records what it receives and decides (:class:`polyfeed.record.Recorder`)."""

    def write(self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes) -> None: ...
    def tick(self, now_ns: int) -> None: ...


log = logging.getLogger(__name__)


def _handshake_status(exc: BaseException) -> int | None:
    """The HTTP status a rejected WebSocket handshake was answered with (``None``: no answer)."""
    response = getattr(exc, "response", None)  # picows >= 1.9: WSHandshakeError.response
    status = getattr(response, "status", None)
    if status is not None:
        return int(status)
    if isinstance(exc, picows.WSError):  # older picows: the status line is in the message
        found = re.search(r"HTTP/1\.[01] (\d{3})", str(exc))
        return int(found.group(1)) if found else None
    return None


def _connect_failure(exc: BaseException) -> str:
    """Why a connect failed, in words (``connection refused``, not ``[Errno 111] Connect call failed``)."""
    status = _handshake_status(exc)
    if status is not None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        return f"the WebSocket handshake was answered HTTP {status} {phrase}".rstrip()
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between reconnects."""

    initial_s: float = 0.25
    max_s: float = 30.0
    factor: float = 2.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_s, self.initial_s * self.factor**attempt))


_TEXT = picows.WSMsgType.TEXT


class Session(Protocol):
    """What a driver needs of a sans-I/O session (:class:`polyfeed.session.MarketSession`,
    :class:`polyfeed.session.user.UserSession`)."""

    connection_id: int
    close_reason: str | None

    def connection_made(self, now_ns: int) -> list[bytes]: ...
    def data_received(self, data: bytes | str, now_ns: int) -> list[Event]: ...
    def connection_lost(self, now_ns: int, reason: str) -> list[Event]: ...
    def connect_failed(self, now_ns: int, reason: str) -> list[Event]: ...
    def timer(self, now_ns: int) -> tuple[list[bytes], list[Event]]: ...
    def next_timer_ns(self) -> int: ...


S = TypeVar("S", bound=Session)


class _Listener(picows.WSListener):
    def __init__(self, owner: SessionConnection[Any]) -> None:
        self.owner = owner
        self.fragments: list[bytes] = []
        self.fragment_bytes = 0

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.owner._connected(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        size = frame.payload_size
        if kind is _TEXT and frame.fin and not self.fragments and size <= MAX_MESSAGE_BYTES:  # nearly all
            self.owner._frame(frame.get_payload_as_bytes())
            return
        if kind == picows.WSMsgType.CLOSE:
            transport.disconnect()
            return
        if size > MAX_MESSAGE_BYTES:
            # picows refuses such a frame (its max_frame_size) but, when the whole frame is already in
            # its buffer, may hand it over all the same (seen under load): it is never decoded.
            self.fragments.clear()
            self.owner._broken_reason = f"a frame over {MAX_MESSAGE_BYTES} bytes (1009)"
            transport.disconnect()
            return
        if kind not in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY, picows.WSMsgType.CONTINUATION):
            return  # protocol pings are answered by picows (enable_auto_pong)
        payload = frame.get_payload_as_bytes()
        if self.fragments or not frame.fin:
            self.fragment_bytes += len(payload)
            if self.fragment_bytes > MAX_MESSAGE_BYTES:
                self.fragments.clear()
                self.owner._broken_reason = f"a fragmented message over {MAX_MESSAGE_BYTES} bytes (1009)"
                transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
                transport.disconnect()
                return
            if not frame.fin:
                self.fragments.append(payload)
                return
            payload = b"".join(self.fragments) + payload
            self.fragments.clear()
            self.fragment_bytes = 0
        self.owner._frame(payload)


class SessionConnection(Generic[S]):
    """Keeps one connection alive for a session; events go to ``emit`` in wire order.

    Args:
        session: the sans-I/O session this connection drives.
        ws_url: the channel URL (``wss://.../ws/market`` or ``.../ws/user``).
        emit: called with each batch of events, in order.
        backoff: reconnect pacing.
        seed: for the jitter (tests make it deterministic).
        ssl_context: for ``wss://`` URLs; ``None`` uses the system's defaults.
        recorder: records every frame received, the frames sent (secrets redacted), timer ticks,
            disconnects and the REST answers used, so that a replay drives the session exactly as live.
        max_connect_attempts: failed tries in a row, before the first connection, after which
            :meth:`run` raises :class:`polyfeed.errors.ConnectError` (``None``: try forever).

    Raises:
        InvalidURLError: ``ws_url`` is not a ``ws://`` or ``wss://`` URL.
    """

    channel = int(Channel.MARKET)

    def __init__(
        self,
        session: S,
        ws_url: str,
        emit: Callable[[list[Event]], None],
        *,
        backoff: Backoff | None = None,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> None:
        self.recorder = recorder
        self.ssl_context = ssl_context
        self.session = session
        self.ws_url = check_url(ws_url, WS_SCHEMES, "the WebSocket URL")
        self.max_connect_attempts = max_connect_attempts
        self.emit = emit
        self.backoff = backoff or Backoff()
        self.connects = 0
        self.failed_connects = 0
        self._rng = random.Random(seed)
        self._transport: picows.WSTransport | None = None
        self._stopping = False
        self._stop_recorded = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.error: Exception | None = None
        """Why the connection gave up for good (bad credentials); :meth:`run` raises it."""
        self._broken_reason: str | None = None

    # -- running ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and reconnect until :meth:`close`, or until the session gives up (:attr:`error`,
        raised here)."""
        attempt = 0
        while not self._stopping and self.error is None:
            try:
                transport, _ = await picows.ws_connect(
                    lambda: _Listener(self),
                    self.ws_url,
                    ssl_context=self.ssl_context,
                    websocket_handshake_timeout=10,
                    enable_auto_pong=True,
                    max_frame_size=MAX_MESSAGE_BYTES,
                )
            except (OSError, TimeoutError, picows.WSError) as exc:
                self.failed_connects += 1
                now = time.time_ns()
                failure = _connect_failure(exc)
                self._record_marker(ConnectFailedMarker(failure), now)
                self._dispatch(self.session.connect_failed(now, failure))
                fatal = self._give_up_connecting(exc, failure)
                if fatal is not None:
                    # raised to the stream, which reports it: logged once more only with -v
                    log.info("connection %d: %s", self.session.connection_id, fatal)
                    self.error = fatal
                    break
                delay = self.backoff.delay_s(attempt, self._rng)
                attempt += 1
                log.info(
                    "connection %d: connect failed (%s); retrying in %.2f s",
                    self.session.connection_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            timer = asyncio.create_task(self._run_timer(transport))
            reason = None
            try:
                await transport.wait_disconnected()
            except picows.WSError as exc:  # picows found the stream broke the protocol (a 12 MB frame)
                reason = f"protocol error: {exc}"
                log.error("connection %d: %s; reconnecting", self.session.connection_id, reason)
            finally:
                timer.cancel()
                # Here rather than in on_ws_disconnected: only now is a protocol error known, and the
                # books turn stale whatever ended the connection.
                self._disconnected(reason)
            if not self._stopping and self.error is None:
                await asyncio.sleep(self.backoff.delay_s(0, self._rng))
        if self.error is not None:
            raise self.error

    def _give_up_connecting(self, exc: BaseException, failure: str) -> ConnectError | None:
        """The error that ends :meth:`run` after this failed connect, if it must end (never once a
        connection was made: from then on the venue is out for a while, and the stream waits for it)."""
        if self.connects:
            return None
        status = _handshake_status(exc)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return ConnectError(self.ws_url, failure, status)
        if self.max_connect_attempts is not None and self.failed_connects >= self.max_connect_attempts:
            tries = "try" if self.failed_connects == 1 else f"{self.failed_connects} tries"
            return ConnectError(self.ws_url, f"{failure} ({tries}, never connected)", status)
        return None

    async def close(self) -> None:
        """Stop for good. An open connection is recorded as stopped by the client (a ``stopped``
        marker, before it closes) rather than lost, so that a replay ends with its books as they were;
        the live ``Disconnected`` says ``closed by the client``."""
        self._stopping = True
        if self._transport is not None:
            self._record_marker(StoppedMarker(CLOSED_BY_CLIENT), time.time_ns())
            self._stop_recorded = True
            self._transport.disconnect()
        for task in list(self._tasks):
            task.cancel()

    # -- callbacks from the listener ----------------------------------------------------------------------

    def _connected(self, transport: picows.WSTransport) -> None:
        self._transport = transport
        self.connects += 1
        now = time.time_ns()
        frames = self.session.connection_made(now)
        self._record_sent(frames, now)
        for frame in frames:
            transport.send(picows.WSMsgType.TEXT, frame)

    def _frame(self, payload: bytes) -> None:
        now = time.time_ns()
        if self.recorder is not None:
            self._record_frame(payload, now)
        self._dispatch(self.session.data_received(payload, now))

    def _disconnected(self, broke: str | None) -> None:
        reason = broke or self._broken_reason or self.session.close_reason or "closed by the server"
        if self._stopping:
            reason = CLOSED_BY_CLIENT
        self._broken_reason = None
        self._transport = None
        now = time.time_ns()
        if not self._stopping:
            self._record_marker(DisconnectedMarker(reason), now)
        elif not self._stop_recorded:  # connected while stopping: still an orderly stop
            self._record_marker(StoppedMarker(reason), now)
            self._stop_recorded = True
        self._dispatch(self.session.connection_lost(now, reason))

    # -- recording ----------------------------------------------------------------------------------------

    def _redact(self, frame: bytes) -> bytes | None:
        """The form of a sent frame that may be recorded (``None``: not recorded). PINGs are left out."""
        return None if frame == b"PING" else frame

    def _record_frame(self, payload: bytes, now_ns: int) -> None:
        assert self.recorder is not None
        self.recorder.write(_FRAME, self.channel, self.session.connection_id, now_ns, payload)

    def _record_sent(self, frames: list[bytes], now_ns: int) -> None:
        if self.recorder is not None:
            for frame in frames:
                safe = self._redact(frame)
                if safe is not None:
                    self.recorder.write(_SENT, self.channel, self.session.connection_id, now_ns, safe)

    def _record_marker(self, marker: Marker, now_ns: int) -> None:
        if self.recorder is not None:
            payload = encode_marker(marker)
            self.recorder.write(_MARKER, self.channel, self.session.connection_id, now_ns, payload)

    def _record_rest(self, answer: dict[str, object], now_ns: int) -> None:
        if self.recorder is not None:
            payload = msgspec.json.encode(answer)
            self.recorder.write(_REST, self.channel, self.session.connection_id, now_ns, payload)

    def _dispatch(self, events: list[Event]) -> None:
        if events:
            self.emit(events)
        self._after_dispatch()

    def _after_dispatch(self) -> None:
        """Work a subclass starts after events (a resync, a reconciliation)."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, frames: list[bytes]) -> None:
        """Send frames now (operations from subscribe/unsubscribe), if connected."""
        if self._transport is not None:
            self._record_sent(frames, time.time_ns())
            for frame in frames:
                self._transport.send(picows.WSMsgType.TEXT, frame)

    async def _run_timer(self, transport: picows.WSTransport) -> None:
        while True:
            # Frames already waiting in the socket are read first: a client that fell behind must not
            # judge its books by the clock while their messages wait (issue 12, item 14). Two turns of
            # the loop: the first polls the sockets, the second runs their reads before this resumes.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            now = time.time_ns()
            recorder = self.recorder
            if recorder is not None:  # a replay calls the timer where the live driver did
                recorder.write(_MARKER, self.channel, self.session.connection_id, now, TIMER_MARKER)
                recorder.tick(now)
            frames, events = self.session.timer(now)
            for frame in frames:
                transport.send(picows.WSMsgType.TEXT, frame)
            self._dispatch(events)
            if self.session.close_reason is not None:
                log.warning(
                    "connection %d: %s; reconnecting", self.session.connection_id, self.session.close_reason
                )
                transport.disconnect()
                return
            # Waking at least every second bounds how late a burst is closed after data moved its deadline.
            await asyncio.sleep(min(1.0, max(0.0, (self.session.next_timer_ns() - time.time_ns()) / 1e9)))


class MarketConnection(SessionConnection[MarketSession]):
    """A market-channel connection: fetches ``GET /book`` when the session asks for a resync.

    Args:
        session: the session whose assets this connection carries.
        ws_url: the market channel URL (``wss://.../ws/market``).
        emit: called with each batch of events, in order.
        http: an aiohttp session for REST resyncs (``None``: resyncs are not fetched).
        rest_url: base URL of the CLOB REST API.
        backoff: reconnect pacing.
        seed: for the jitter (tests make it deterministic).
        ssl_context: for ``wss://`` URLs; ``None`` uses the system's defaults.
    """

    def __init__(
        self,
        session: MarketSession,
        ws_url: str,
        emit: Callable[[list[Event]], None],
        *,
        http: aiohttp.ClientSession | None = None,
        rest_url: str = "",
        backoff: Backoff | None = None,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> None:
        super().__init__(
            session,
            ws_url,
            emit,
            backoff=backoff,
            seed=seed,
            ssl_context=ssl_context,
            recorder=recorder,
            max_connect_attempts=max_connect_attempts,
        )
        self.http = http
        self.rest_url = rest_url.rstrip("/")

    def _after_dispatch(self) -> None:
        pending = self.session.pending_resyncs
        if pending:
            assets = list(pending)
            pending.clear()
            if self.http is None:
                return
            for asset in assets:
                self._spawn(self._resync(asset))

    async def _resync(self, asset_id: str) -> None:
        assert self.http is not None
        url = f"{self.rest_url}/book"
        try:
            async with self.http.get(url, params={"token_id": asset_id}) as response:
                if response.status == 404:  # "No orderbook exists for the requested token id" (spec 8.1)
                    now = time.time_ns()
                    self._record_marker(BookMissingMarker(asset_id), now)
                    self._dispatch(self.session.book_missing(asset_id, now))
                    return
                if response.status != 200:
                    raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
                body = await response.read()
            (snapshot,) = decode_market(body)
            if not isinstance(snapshot, Book):
                raise FrameDecodeError("GET /book did not return a book", body)
        except (aiohttp.ClientError, TimeoutError, FrameDecodeError, ValueError) as exc:
            log.warning("connection %d: resync of %s failed: %s", self.session.connection_id, asset_id, exc)
            now = time.time_ns()
            self._record_marker(ResyncFailedMarker(asset_id), now)
            self.session.resync_failed(asset_id, now)
            return
        now = time.time_ns()
        self._record_rest({"asset_id": asset_id, "body": body.decode()}, now)
        self._dispatch(self.session.resync_received(snapshot, now))
        self._record_marker(ResyncedMarker(asset_id), now)
