"""``NatsMarketStream``: books and events from a fan-out on NATS JetStream, with ``MarketStream``'s face.

>>> async with NatsMarketStream("nats://127.0.0.1:4222", ["7667...1111"]) as stream:  # doctest: +SKIP
...     async for event in stream:
...         book = stream.books.get(getattr(event, "asset_id", ""))

The books are kept by the same session and book code as a live stream
(:class:`polyfeed.session.MarketSession`): the collector publishes the venue's own messages, narrowed to
a book, with the venue's hashes, and this stream feeds them to the session as frames, so every check runs
here as it runs live, independently of the collector. The driver maps the session's world onto JetStream:

- the connection is the JetStream consumer; the subscription's initial dump is the key-value bucket's
  snapshots, each with the stream sequence it includes (messages of its book at or before it are skipped);
- a resync (a hash that failed, a snapshot that never came) is answered from the bucket instead of REST;
- a collector's ``gap`` marks the book stale until the snapshot that follows it;
- the collectors' heartbeats count as data: the data-idle deadline means "no collector is heard", and
  closes the "connection" (every book stale) until one is heard again, when the bucket is read again;
- each heartbeat names its collector's shard: a book whose shard no collector has been heard from for
  ``config.max_idle_s`` (from the start, or since the last beat) turns stale while other shards beat on,
  and is read again from the bucket when its shard is heard again;
- a NATS disconnect is a lost connection too: the books are stale until NATS is back, and their
  snapshots are read again (the JetStream consumer resumes where it was: nothing is missed).

With ``durable=NAME`` the JetStream consumer is durable: a process that restarts with the same name resumes
at the first message it had not acknowledged. A message is acknowledged once every event it gave has
reached the program: taken by ``async for`` (or dropped from a full queue, counted in ``events_dropped``),
or handed to ``on_event`` when no queue is kept (``max_queue=0``); leaving the ``async with`` acknowledges
what was taken. Delivery is at least once: a message whose events were taken in part when the process
stopped is delivered again, whole. Its books start from the bucket; the messages between a book's
snapshot and that position are applied without their events (they were delivered before the restart),
and those between the position and a newer snapshot are delivered as events without being applied again
(the snapshot holds them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import BookError, FrameDecodeError
from polyfeed.fanout.jetstream import (
    FanoutError,
    StreamLayout,
    check_subjects,
    connect,
    require_jetstream,
)
from polyfeed.fanout.schema import (
    VENUE_KINDS,
    decode_envelope,
    decode_heartbeat,
    decode_snapshot_value,
    message_id_ms,
    shard_of,
    subject_token,
)
from polyfeed.net.connection import TIMER_RECHECK_S, TimerDeferral
from polyfeed.session import (
    Event,
    MarketSession,
    ResyncRequested,
    SessionConfig,
    StatusChanged,
)
from polyfeed.session.base import CLOSED_BY_CLIENT
from polyfeed.stream.queue import EventQueue, QueuedStream
from polyfeed.wire import Book, decode_market, timestamp_ms

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

__all__ = ["NatsMarketStream"]

log = logging.getLogger("polyfeed.fanout")

_CONSUMER_CONFIG = SessionConfig(
    # The collectors' heartbeats (1 s) are the data a quiet book set still brings: a source silent for
    # 5-10 s is gone, not quiet. Every hash is checked, at every burst: the consumer has time for it.
    min_idle_s=5.0,
    max_idle_s=10.0,
    idle_factor=5.0,
    max_quiet_idle_s=10.0,
    hash_interval_s=0.0,
)

_NS = 1_000_000_000

MAX_SNAPSHOT_AGE_S = 300.0
"""A bucket value older than this is no start: a collector rewrites the value of every live book at least
every minute (``Collector.quiet_refresh_s``), so an older one belongs to a book not live at its collector,
or to a collector gone."""

_CLOSE_BOUND_S = 5.0
_ACK_WAIT_S = 300.0

_Alternates = tuple[str | None, str | None]


class _Value(NamedTuple):
    """A bucket value, as a start."""

    seq: int
    """The stream sequence its book includes; -1 for a value too old to start from."""
    book: bytes
    alternates: _Alternates
    collector: str


def _ms(timestamp: str | None) -> int:
    """A venue timestamp in ms, 0 when it is missing or not one."""
    return timestamp_ms(timestamp) or 0


def _snapshot_ms(book: bytes) -> int:
    """The time of a ``book`` message (0: it does not decode; the session reports it)."""
    try:
        [snapshot] = decode_market(book)
    except (FrameDecodeError, ValueError):
        return 0
    return _ms(getattr(snapshot, "timestamp", None))


def _id_ms(msg: Msg, asset: str) -> int:
    """A venue message's time, from its JetStream message id (no decoding on the hot path); 0 without
    one (not a collector's: it is not judged by it)."""
    headers = msg.headers
    return message_id_ms(headers.get("Nats-Msg-Id", "") if headers else "", asset)


MAX_LOOKBACK = 100_000
"""How far back in the stream a consumer looks for the snapshot of a book the bucket has none of."""


class NatsMarketStream(QueuedStream):
    """Books and events of a fan-out (see the module's docstring).

    Args:
        nats_url: the NATS server (``nats://HOST:4222``).
        asset_ids: the books to follow; ``None``: every book the collectors publish.
        stream: the JetStream stream the collectors publish to.
        durable: a durable consumer's name: a restart with the same name resumes where it stopped.
        on_event, max_queue: as :class:`polyfeed.stream.MarketStream`.
        config: the session's timings (a data-idle deadline of 5-10 s by default: the collectors beat
            every second).
        batch: messages fetched from JetStream at a time.
    """

    def __init__(
        self,
        nats_url: str,
        asset_ids: Iterable[str] | None = None,
        *,
        stream: str = "POLYFEED",
        durable: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        max_queue: int = 100_000,
        config: SessionConfig | None = None,
        batch: int = 1_000,
    ) -> None:
        self.nats_url = nats_url
        self.asset_ids = None if asset_ids is None else list(dict.fromkeys(asset_ids))
        self.layout = StreamLayout(stream)
        self.durable = durable
        self.batch = batch
        self.config = config or _CONSUMER_CONFIG
        self._queue = EventQueue(on_event, max_queue)
        self._books: dict[str, OrderBook] = {}
        self.session = MarketSession(1, self.asset_ids or (), self._books, self.config)
        self.messages = 0
        """Messages taken from JetStream (skipped ones included)."""
        self.skipped = 0
        """Messages of a book at or before its snapshot's sequence (already in the book)."""
        self.undecodable = 0
        """Messages on the stream's subjects that do not decode as an envelope, or of unknown kind."""
        self.gaps = 0
        self.labels: dict[str, tuple[str, str]] = {}
        """Each book's market slug and outcome, as its collector published them with its snapshots (where
        the collector knew them: it followed slugs or every market)."""
        """``gap`` messages received."""
        self.snapshots_behind = 0
        """Snapshots older than a live book and different from it (another collector's, behind this
        stream: see :meth:`_when`), reported as messages and not applied."""
        self.messages_behind = 0
        """Venue messages the book's snapshot holds already, come after newer ones (a lagging collector's
        copies, stored after the newer snapshot of a collector that joined: see :meth:`_held`), reported
        as messages and not applied."""
        self.snapshots_ahead = 0
        """Snapshots newer than a live book and different from it (another collector's, ahead of the copies
        this stream follows: see :meth:`_when`): they replace the book without being compared with it."""
        self._snapshot_ms: dict[str, int] = {}  # asset -> the time of the snapshot that last took it forward
        self._snapshot_by: dict[str, str] = {}  # asset -> the collector of that snapshot
        self.last_seq = 0
        """The stream sequence of the last message taken."""
        self.snapshots_read = 0
        """Snapshots taken from the key-value bucket (on entering, after a lost connection, resyncs)."""
        self.resumed_at: int | None = None
        """With a durable consumer that existed already: the stream sequence it resumed at."""
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._sub: Any = None
        self._base: dict[str, int] = {}  # asset -> the sequence its book's snapshot includes
        self._fed: dict[str, int] = {}  # asset -> the sequence of its last message fed
        self._stream_pending = 0  # messages JetStream held for this consumer after the last one taken
        self.timer_deferrals = 0
        """Times the session's timer waited because JetStream still held messages for this consumer."""
        self._up = False  # whether the session's "connection" is made
        self._silent_until = 0  # messages up to this sequence are applied without their events
        self._tasks: set[asyncio.Task[None]] = set()
        # a durable consumer's messages not acknowledged yet, each with the count of events emitted once its
        # own were: acknowledged when the queue has given out that many
        self._unacked: deque[tuple[int, Msg]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._reopen = asyncio.Event()
        self._closing = False
        self._logged_undecodable = 0
        self._beats: dict[tuple[int, int] | None, int] = {}  # shard -> when a collector of it last beat
        self._silent: set[tuple[int, int] | None] = set()  # shards heard once and silent since
        self._shard_of: dict[tuple[str, int], int] = {}
        self._started_ns = 0
        self._next_watch_ns = 0

    @property
    def books(self) -> dict[str, OrderBook]:
        """Every followed book, by token id."""
        return self._books

    @property
    def sessions(self) -> list[MarketSession]:
        return [self.session]

    # -- entering and leaving -----------------------------------------------------------------------------

    async def __aenter__(self) -> NatsMarketStream:
        """Connect, read the bucket's snapshots, and start taking messages from their sequences.

        Raises:
            FanoutError: NATS unreachable, or no such stream there (no collector has published yet).
        """
        self._client = await connect(
            self.nats_url,
            name="polyfeed-consumer",
            on_disconnected=self._nats_lost,
            on_reconnected=self._nats_back,
        )
        try:
            self._js = await require_jetstream(self._client, self.nats_url)
            from nats.js.errors import NotFoundError

            missing = (
                f"NATS at {self.nats_url} has no stream {self.layout.stream} (or its bucket "
                f"{self.layout.bucket}): start a collector first (polyfeed publish ... --nats URL)"
            )
            try:
                info = await self._js.stream_info(self.layout.stream)
            except NotFoundError as exc:
                raise FanoutError(missing) from exc
            # another application's stream of that name holds no polyfeed messages
            check_subjects(info, self.layout, "it is not a polyfeed fan-out (--stream names the one to read)")
            try:
                self._kv = await self._js.key_value(self.layout.bucket)
            except NotFoundError as exc:
                raise FanoutError(missing) from exc
            start = await self._open(int(info.state.first_seq), int(info.state.last_seq))
            await self._subscribe(start)
            await self._client.subscribe(f"{self.layout.prefix}.heartbeat.*", cb=self._heartbeat)
        except BaseException:
            await self._client.close()
            raise
        self._started_ns = time.time_ns()
        self._pump = asyncio.create_task(self._take(), name="polyfeed-nats-consumer")
        self._timer = asyncio.create_task(self._run_timer(), name="polyfeed-nats-timer")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        tasks = [t for t in (self._pump, self._timer, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a cancellation swallowed below us (inside nats-py) must not hold the exit; the loops
            # see _closing and end at their next turn anyway.
            await asyncio.wait(tasks, timeout=_CLOSE_BOUND_S)
        if self._unacked and self._client is not None and self._client.is_connected:
            with contextlib.suppress(Exception):  # what the program took: the next run starts after it
                await self._ack_taken()
                await self._client.flush(timeout=int(_CLOSE_BOUND_S))
        if self._up:
            self._up = False
            self.session.connection_lost(time.time_ns(), CLOSED_BY_CLIENT)
            self._flush()
        if self._client is not None:
            with contextlib.suppress(Exception):
                if self._sub is not None and self.durable is None:
                    await self._sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self._client.close()

    # -- the "connection": the bucket's snapshots, then the stream ------------------------------------------

    async def _open(self, stream_first_seq: int = 0, stream_last_seq: int = 0) -> int:
        """Make the session's connection and feed it the bucket's snapshots (the initial dump); returns
        the sequence to take the stream from: after the oldest snapshot's, or, if a followed book has no
        snapshot in the bucket, at most :data:`MAX_LOOKBACK` messages back (a collector's first message of
        a book is its snapshot; one further back is not looked for: the book waits for its next one, or
        for a value in the bucket, which its resyncs read)."""
        now = time.time_ns()
        session = self.session
        session.connection_made(now)
        session.data_to_send()  # the subscription frames: the consumer's filter says it
        self._up = True
        values = await self._read_bucket(self.asset_ids)
        fed: dict[str, _Value] = {}
        for asset, value in values.items():
            if value.seq < self._fed.get(asset, 0) or value.seq < 0:
                continue  # the book has gone further than this snapshot: its messages carry it on
            if self.asset_ids is None and asset not in session.assets:
                session.subscribe([asset], now)
            fed[asset] = value
        self._feed_snapshots(fed, now)
        self._flush()
        if self.last_seq:
            return self.last_seq + 1
        starts = [value.seq + 1 for value in values.values() if value.seq >= 0]
        # Following every book, which books lack a value is unknown: the look back is always taken.
        if not starts or self.asset_ids is None or len(starts) < len(self.asset_ids):
            starts.append(max(stream_first_seq, stream_last_seq + 1 - MAX_LOOKBACK))
        return min(starts)

    async def _read_bucket(self, assets: list[str] | None) -> dict[str, _Value]:
        kv = self._kv
        assert kv is not None
        from nats.js.errors import NoKeysError, NotFoundError

        if assets is None:
            try:
                assets = list(await kv.keys())
            except NoKeysError:
                return {}
        values: dict[str, _Value] = {}
        for asset in assets:
            try:
                entry = await kv.get(asset)
            except NotFoundError:  # never written, or deleted (a closed book)
                continue
            value = self._snapshot_value(asset, entry.value)
            if value is not None:
                values[asset] = value
        return values

    def _snapshot_value(self, asset: str, data: bytes | None) -> _Value | None:
        """A bucket value as (sequence, book); the sequence is -1 for a value older than
        :data:`MAX_SNAPSHOT_AGE_S` (its collector gone, or its book not live there since): not a start."""
        try:
            value = decode_snapshot_value(data or b"")
        except msgspec.DecodeError as exc:
            self._undecodable(f"the bucket's value of {asset}", exc, data or b"")
            return None
        if value.slug:
            self.labels[asset] = (value.slug, value.outcome)
        too_old = value.written_ns and time.time_ns() - value.written_ns > MAX_SNAPSHOT_AGE_S * _NS
        alternates = (value.previous_trade_price, value.candidate_price)
        return _Value(-1 if too_old else value.seq, bytes(value.book), alternates, value.collector)

    def _subjects(self) -> list[str]:
        """The subjects of the books followed (every book's, ``asset_ids=None``)."""
        prefix = self.layout.prefix
        if self.asset_ids is None:
            return [f"{prefix}.book.>"]
        tokens = [subject_token(a) for a in self.asset_ids]
        return [f"{prefix}.book.*.{t}" for t in tokens] or [f"{prefix}.book.none.none"]

    async def _subscribe(self, start_seq: int) -> None:
        from nats.js import api

        js = self._js
        assert js is not None
        subjects = self._subjects()
        if self.durable is not None and not self.last_seq:
            # A restart. The durable consumer would resume at its first message never delivered and
            # redeliver the unacknowledged ones after ack_wait, out of order, which a book cannot take: it
            # is made again from its acknowledgement floor instead (everything up to it was handled).
            # The books come from the bucket, so the messages between a book's snapshot and the floor
            # are applied silently, and those between the floor and a newer snapshot shown unapplied.
            from nats.js.errors import NotFoundError

            try:
                info = await js.consumer_info(self.layout.stream, self.durable)
            except NotFoundError:
                pass
            else:
                floor = int(info.ack_floor.stream_seq) if info.ack_floor is not None else 0
                await js.delete_consumer(self.layout.stream, self.durable)
                self._silent_until = floor
                self.resumed_at = start_seq = floor + 1
                self._catch_up_from = min(self._base.values(), default=floor) + 1
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq),
            ack_policy=api.AckPolicy.ALL if self.durable else api.AckPolicy.NONE,
            filter_subjects=subjects if len(subjects) > 1 else None,
            inactive_threshold=None if self.durable else 300.0,
            max_ack_pending=-1 if not self.durable else 100_000,
            # a message is acknowledged once the program has taken its events: a program busy elsewhere for
            # a while must not have its messages given again (they would be skipped, but cost the wire)
            ack_wait=_ACK_WAIT_S if self.durable else None,
        )
        self._sub = await js.pull_subscribe(
            subjects[0], durable=self.durable, stream=self.layout.stream, config=config
        )
        if self._silent_until:
            await self._catch_up()

    _catch_up_from = 0

    async def _catch_up(self) -> None:
        """After a durable restart: the messages between the books' snapshots and the consumer's position,
        applied without their events (the process delivered them before it stopped)."""
        js = self._js
        assert js is not None
        if self._catch_up_from > self._silent_until:
            return
        from nats.js import api

        subjects = self._subjects()
        reader = await js.pull_subscribe(
            subjects[0],
            stream=self.layout.stream,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._catch_up_from,
                ack_policy=api.AckPolicy.NONE,
                filter_subjects=subjects if len(subjects) > 1 else None,
                inactive_threshold=30.0,
            ),
        )
        try:
            while True:
                try:
                    msgs = await reader.fetch(self.batch, timeout=1.0)
                except TimeoutError:
                    break
                now = time.time_ns()
                done = False
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq > self._silent_until:
                        done = True
                        break
                    self._handle(msg, seq, now)
                events = self.session.events_received()
                self._queue.emit([e for e in events if type(e) is StatusChanged])
                if done:
                    break
        finally:
            with contextlib.suppress(Exception):
                await reader.unsubscribe()

    # -- taking messages ----------------------------------------------------------------------------------

    async def _take(self) -> None:
        from nats.errors import ConnectionClosedError
        from nats.errors import TimeoutError as NatsTimeoutError

        while not self._closing:
            if self._reopen.is_set():
                await self._reconnect()
            try:
                msgs = await self._sub.fetch(self.batch, timeout=0.5)
            except (TimeoutError, NatsTimeoutError):
                self._stream_pending = 0
                if self._unacked:
                    await self._ack_taken()
                continue
            except ConnectionClosedError:
                return
            except Exception as exc:  # the consumer gone with a restarted server, a reconnect under way
                if self._closing:
                    return
                log.info("NATS consumer: %s; taking again", exc or type(exc).__name__)
                await asyncio.sleep(0.5)
                await self._resubscribe_if_gone()
                continue
            now = time.time_ns()
            if msgs:
                self._stream_pending = msgs[-1].metadata.num_pending
            if self.durable:
                self._take_durable(msgs, now)
                self._flush()
                await self._ack_taken()
            else:
                for msg in msgs:
                    self._handle(msg, msg.metadata.sequence.stream, now)
                self._flush()

    def _take_durable(self, msgs: list[Msg], now: int) -> None:
        """A durable consumer's batch: each message's events are emitted as it is handled, and the count of
        events emitted after them is noted with it (:meth:`_ack_taken` acknowledges it once the program
        has had that many)."""
        session = self.session
        queue = self._queue
        unacked = self._unacked
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= self.last_seq:
                # given again after ack_wait while the program was far behind: handled already (a book
                # cannot take a message twice); the acknowledgement of a later one covers it
                continue
            self._handle(msg, seq, now)
            events = session.events_received()
            if events:
                queue.emit(events)
            if unacked and unacked[-1][0] == queue.emitted:
                unacked[-1] = (queue.emitted, msg)  # no event of its own: it goes with the one before
            else:
                unacked.append((queue.emitted, msg))

    async def _ack_taken(self) -> None:
        """Acknowledge the last message all of whose events the program has had (AckPolicy.ALL: every
        message up to it)."""
        unacked = self._unacked
        consumed = self._queue.consumed
        last: Msg | None = None
        while unacked and unacked[0][0] <= consumed:
            last = unacked.popleft()[1]
        if last is not None:
            with contextlib.suppress(Exception):
                await last.ack()

    def _handle(self, msg: Msg, seq: int, now: int) -> None:
        self.messages += 1
        self.last_seq = seq
        try:
            envelope = decode_envelope(msg.data)
        except msgspec.DecodeError as exc:
            self._undecodable(f"message {seq} on {msg.subject}", exc, msg.data)
            return
        kind = envelope.kind
        asset = envelope.asset_id
        session = self.session
        if kind in VENUE_KINDS and envelope.message:
            if envelope.token and envelope.token in session.assets:
                return  # a print of another token followed here: its own subject brings it
            if asset not in session.assets:
                if self.asset_ids is not None:
                    return
                session.subscribe([asset], now)
            if seq <= self._base.get(asset, 0):
                self.skipped += 1
                if kind == "trade" and not envelope.token:
                    market, message = envelope.market, envelope.message
                    self._print_for_siblings(asset, market, seq, message, envelope.collector)
                if self._silent_until and seq > self._silent_until:
                    # a durable restart behind this book's snapshot: the event is owed, the change is held
                    session.receive_unapplied(bytes(envelope.message), now)
                return
            self._fed[asset] = seq
            collector = envelope.collector
            if kind != "snapshot" and self._held(asset, _id_ms(msg, asset), collector):
                self.messages_behind += 1
                if kind == "trade" and not envelope.token:
                    self._print_for_siblings(asset, envelope.market, seq, envelope.message, collector)
                session.receive_unapplied(bytes(envelope.message), now)
                return
            if kind == "snapshot" and envelope.slug:
                self.labels[asset] = (envelope.slug, envelope.outcome)
            if kind == "snapshot":
                when = self._when(asset, envelope.message, collector)
                if when < 0:
                    self.snapshots_behind += 1
                    session.receive_unapplied(bytes(envelope.message), now)
                    return
                self._started(asset, _snapshot_ms(envelope.message), collector)
                if when > 0:
                    self.snapshots_ahead += 1
                    session.receive_snapshot_ahead(bytes(envelope.message), now)
                    return
            session.receive_data(bytes(envelope.message), now)
        elif kind == "gap":
            self.gaps += 1
            log.warning(
                "book %s: the collector %s reports a gap: %s", asset, envelope.collector, envelope.reason
            )
            session.gap_reported([asset], f"the collector reports a gap: {envelope.reason}", now)
        elif kind == "status":
            # the collector's own view: this stream's books have their own status, but a book the collector
            # closed (its market resolved, or the venue has no book) gets no more messages to say so
            if envelope.new == BookStatus.CLOSED.value and asset in session.assets:
                session.books_closed([asset], f"closed by the collector: {envelope.reason}", now)
        else:
            self._undecodable(
                f"message {seq} on {msg.subject}", ValueError(f"unknown kind {kind!r}"), msg.data
            )

    def _print_for_siblings(
        self, asset: str, market: str, seq: int, message: msgspec.Raw, collector: str
    ) -> None:
        """A print its own book's snapshot holds, which the market's other books followed here may not:
        their snapshots are older (each book starts from its own), and the print settles their hashes
        too. It goes to those books alone (the session would give it to its own book again, and take
        that book's trade price back). Their copies of it, on their own subjects, are skipped as prints
        of a token followed here."""
        siblings = [
            (other, book)
            for other, book in self._books.items()
            if other != asset and book.market == market and self._base.get(other, 0) < seq
        ]
        if not siblings:
            return
        try:
            [trade] = decode_market(bytes(message))
        except (FrameDecodeError, ValueError):
            return
        trade_ms = _ms(getattr(trade, "timestamp", None))
        for other, book in siblings:
            if self._held(other, trade_ms, collector):
                continue  # that book's snapshot holds it too
            with contextlib.suppress(BookError):
                book.apply(trade)

    def _started(self, asset: str, snapshot_ms: int, collector: str) -> None:
        """A snapshot from the stream is about to be applied: one newer than the book (or a book's start)
        is where :meth:`_held` judges from, with its collector. The venue's own snapshot after a trade, of
        its burst's millisecond, is not: both collectors send it, and nothing older can follow it."""
        book = self._books.get(asset)
        if book is None or snapshot_ms > _ms(book.timestamp):
            self._snapshot_ms[asset] = snapshot_ms
            self._snapshot_by[asset] = collector

    def _held(self, asset: str, message_ms: int, collector: str) -> bool:
        """Whether a venue message (a change, a print, a tick) is one the book's snapshot holds already,
        come after newer ones: not newer than the snapshot that last took the book forward (a start, or
        one newer than the book: :meth:`_started`), and older than the book's last change.

        Two collectors of a shard: one joins (or resyncs from REST) while the other lags. The joiner's
        snapshot is stored before the laggard's copies of the changes before it, which the joiner never
        sends (it took its snapshot after them): they are first copies, stored after the snapshot and
        among the joiner's newer changes. Applied, they would take the book back in time (a print, its
        trade price) and fail its next hash.

        Only another collector's message is judged so: one collector's stream is in the venue's order,
        whose prints may come late (a print after the changes its book's hash already counted, spec 7.3):
        such a print, older than the book's last change, is applied as it comes."""
        if collector == self._snapshot_by.get(asset) or not 0 < message_ms <= self._snapshot_ms.get(asset, 0):
            return False
        book = self._books.get(asset)
        return book is not None and message_ms < _ms(book.timestamp)

    def _when(self, asset: str, message: msgspec.Raw, collector: str) -> int:
        """-1 for a snapshot older than a live book that differs from it, 1 for one newer than a live book
        that differs from it, 0 otherwise (the venue's own snapshot after a trade has its burst's
        millisecond: it is compared with the book as it comes).

        Older: another collector's, taken when it subscribed (or resynced) while the changes it had not
        seen yet were stored already, from the first collector (their copies are dropped as duplicates).
        Applied, it would take the book back in time, and nothing would bring it forward again.

        Newer: another collector's, taken while the collector whose copies this book follows lagged: the
        changes before it come after it in the stream (the other collector has no copy of them), and are
        not applied (:meth:`_handle`). The book is behind it, not wrong: it replaces the book without
        being compared with it. Only another collector's than the one whose snapshot the book last took:
        one collector's newer snapshot (its resync from REST) is compared as it comes."""
        book = self._books.get(asset)
        if book is None or book.status is not BookStatus.LIVE or book.timestamp is None:
            return 0
        try:
            [snapshot] = decode_market(bytes(message))
        except (FrameDecodeError, ValueError):
            return 0  # the session reports it
        if not isinstance(snapshot, Book) or not snapshot.timestamp.isdigit() or not book.timestamp.isdigit():
            return 0
        try:
            # Strictly older or newer only: one of the book's own millisecond may hold changes the book has
            # not had yet (the venue's snapshot after a trade, say): it is compared.
            snapshot_ms, book_ms = int(snapshot.timestamp), int(book.timestamp)
            if snapshot_ms == book_ms or book.same_levels(snapshot):
                return 0
            if snapshot_ms < book_ms:
                return -1
            return 1 if collector != self._snapshot_by.get(asset) else 0
        except BookError:
            return 0

    def _undecodable(self, what: str, exc: Exception, data: bytes) -> None:
        self.undecodable += 1
        self._logged_undecodable += 1
        if self._logged_undecodable <= 10:
            log.warning("skipped %s, which does not decode: %s: %r", what, exc, data[:200])

    async def _heartbeat(self, msg: Msg) -> None:
        now = time.time_ns()
        try:
            beat = decode_heartbeat(msg.data)
        except msgspec.DecodeError as exc:
            self._undecodable(f"a heartbeat on {msg.subject}", exc, msg.data)
            return
        shard = beat.shard
        self._beats[shard] = now
        if not self._up:
            self._reopen.set()  # a collector is heard again: read the bucket and go on
            return
        self.session.source_alive(now)
        if shard in self._silent:
            self._silent.discard(shard)
            log.info("a collector of shard %s is heard again: its books are read from the bucket", shard)
            self._spawn(self._revive(shard))

    def _covers(self, shard: tuple[int, int] | None, market: str) -> bool:
        if shard is None:
            return True
        index, count = shard
        key = (market, count)
        mine = self._shard_of.get(key)
        if mine is None:
            mine = self._shard_of[key] = shard_of(market, count)
        return mine == index

    def _watch_shards(self, now: int) -> None:
        """Books no collector of their shard has been heard for within ``max_idle_s`` turn stale."""
        if now < self._next_watch_ns:
            return
        self._next_watch_ns = now + _NS  # once a second: it reads every book
        deadline = now - int(self.config.max_idle_s * _NS)
        if now - self._started_ns < self.config.max_idle_s * _NS:
            return  # the first beats are on their way
        for shard, last in self._beats.items():
            if last < deadline:
                self._silent.add(shard)
        heard = [s for s, last in self._beats.items() if last >= deadline]
        if None in heard:
            return
        orphans = [
            asset
            for asset, book in self._books.items()
            if book.status is not BookStatus.STALE
            and book.status is not BookStatus.CLOSED
            and book.market
            and not any(self._covers(shard, book.market) for shard in heard)
        ]
        if orphans:
            log.warning(
                "%d books: no collector of their shard heard for %g s", len(orphans), self.config.max_idle_s
            )
            self.session.gap_reported(
                orphans, f"no collector of this book's shard heard for {self.config.max_idle_s:g} s", now
            )
            self._flush()

    async def _revive(self, shard: tuple[int, int] | None) -> None:
        """A shard heard again: its stale books start again from the bucket's snapshots."""
        stale = [
            a
            for a, b in self._books.items()
            if b.status is BookStatus.STALE and b.market and self._covers(shard, b.market)
        ]
        values = await self._read_bucket(stale)
        fed = {a: v for a, v in values.items() if v.seq >= self._fed.get(a, 0) and v.seq >= 0}
        self._feed_snapshots(fed, time.time_ns())
        self._flush()

    def _feed_snapshots(self, values: dict[str, _Value], now: int) -> None:
        """The bucket's snapshots into the session as one frame (as the venue's initial dump comes), each
        book's start: its stream sequence, the trade price alternates a snapshot does not carry, and its
        collector (:meth:`_held`)."""
        if not values:
            return
        self.snapshots_read += len(values)
        self.session.receive_data(b"[" + b",".join(v.book for v in values.values()) + b"]", now)
        for asset, value in values.items():
            self._base[asset] = value.seq
            self._started_from(asset, value)

    # -- the session's outputs and time ---------------------------------------------------------------------

    def _flush(self) -> None:
        session = self.session
        events = session.events_received()
        if events:
            self._queue.emit(events)
        for frame in session.data_to_send():
            if frame == b"PING" and self._client is not None and self._client.is_connected:
                session.receive_data(b"PONG", time.time_ns())  # NATS keeps the link alive by its own pings
        for request in session.requests_received():
            if type(request) is ResyncRequested:
                self._spawn(self._resync(request.asset_id))
        events = session.events_received()
        if events:
            self._queue.emit(events)

    async def _resync(self, asset: str) -> None:
        """A resync the session asked for, answered from the bucket."""
        from nats.js.errors import NotFoundError

        kv = self._kv
        assert kv is not None
        session = self.session
        try:
            entry = await kv.get(asset)
        except NotFoundError:  # never written, or deleted (a closed book)
            session.resync_failed(asset, time.time_ns())
            self._flush()
            return
        except Exception as exc:
            log.info("resync of %s from the bucket failed: %s", asset, exc or type(exc).__name__)
            session.resync_failed(asset, time.time_ns())
            self._flush()
            return
        value = self._snapshot_value(asset, entry.value)
        if value is None or value.seq < 0:
            session.resync_failed(asset, time.time_ns())
        else:
            self.snapshots_read += 1
            # the session re-applies the changes it buffered meanwhile that are newer than the snapshot
            session.resync_received(asset, value.book, time.time_ns())
            if asset not in session.resyncs.pending:
                # the book's time may be a buffered change's the session applied after the snapshot
                self._started_from(asset, value, _snapshot_ms(value.book))
        self._flush()

    def _started_from(self, asset: str, value: _Value, snapshot_ms: int | None = None) -> None:
        """A book the session took from a bucket value: its trade price alternates, and the snapshot
        :meth:`_held` judges from (``snapshot_ms``: by default the book's time, the snapshot's now)."""
        book = self._books.get(asset)
        if book is not None:
            book.restore_trade_price_alternates(*value.alternates)
            self._snapshot_ms[asset] = snapshot_ms if snapshot_ms is not None else _ms(book.timestamp)
            self._snapshot_by[asset] = value.collector

    async def _run_timer(self) -> None:
        session = self.session
        deferral = TimerDeferral()
        while not self._closing:
            # Messages JetStream still holds for this consumer are taken first: a consumer that fell behind
            # (a fetch ending inside a trade burst, its process short of CPU) must not judge its books by
            # the clock while the rest of a burst waits in the stream; judged in its middle, a trade burst
            # is crossed, its claims are the final ones, and its hash needs the print still to come (10
            # consumers starting on 2 cores failed 6 checks each in bench_fanout). As MarketConnection
            # waits while its socket holds unread bytes, and for at most as long.
            if deferral.holds(self._up and self._stream_pending > 0):
                self.timer_deferrals += 1
                await asyncio.sleep(TIMER_RECHECK_S)
                continue
            now = time.time_ns()
            if self._up:
                session.timer(now)
                self._flush()
                self._watch_shards(now)
                if session.close_reason is not None:
                    log.warning("NATS stream: %s; waiting for a collector", session.close_reason)
                    self._up = False
                    session.connection_lost(now, session.close_reason)
                    self._flush()
            wait_s = (session.next_timer_ns() - time.time_ns()) / _NS if self._up else 1.0
            await asyncio.sleep(min(1.0, max(0.01, wait_s)))

    async def _reconnect(self) -> None:
        self._reopen.clear()
        if self._up or self._closing:
            return
        await self._open()

    async def _nats_lost(self) -> None:
        if self._up and not self._closing:
            self._up = False
            self.session.connection_lost(time.time_ns(), "NATS connection lost")
            self._flush()

    async def _nats_back(self) -> None:
        self._reopen.set()

    async def _resubscribe_if_gone(self) -> None:
        """An ephemeral consumer does not outlive a server restart: made again from the next message."""
        if (
            self.durable is not None
            or self._js is None
            or self._client is None
            or not self._client.is_connected
        ):
            return
        with contextlib.suppress(Exception):
            await self._sub.consumer_info()
            return
        with contextlib.suppress(Exception):
            await self._subscribe(self.last_seq + 1)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
