"""Prometheus metrics of running streams, recorders and fan-out collectors, read when scraped.

A :class:`StreamCollector` holds references to streams, recorders and fan-out collectors and, when
Prometheus scrapes, reads the counters they keep anyway (each session's messages, bytes, reconnects,
resyncs; each book's checks and status; each queue's drops; each recorder's records; each publisher's
acknowledgements): nothing is done per message for metrics beyond the counter increments in the sessions.
What a scrape costs grows with the books (one pass over them, about 5 ms for 45,600 books), never with
the message rate.

Every metric is named ``polyfeed_...`` and labelled with the ``stream`` it comes from (``market``,
``user``, ``nats`` for a :class:`polyfeed.fanout.NatsMarketStream`, then ``market-2``...: names given to
:meth:`StreamCollector.add_stream`), and with the ``channel`` (``market``, ``user``, ``nats``) and
``connection`` where it is a connection's. A fan-out collector's publishing (``polyfeed_fanout_...``) is
labelled with its ``fanout``, the JetStream stream it publishes to. Counters are monotonic for Prometheus'
``rate()`` even when books leave a stream (an all-markets stream drops resolved markets): a book's checks
are kept in the totals after it is gone. No label or value holds a secret: no credentials, no URL.

A scrape must run on the streams' event loop (:func:`polyfeed.metrics.serve_metrics` serves it there),
never on another thread: the books and sessions are read as they are, without a lock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from polyfeed.book import BookStatus, OrderBook
from polyfeed.book.status import CHECK_KINDS
from polyfeed.fanout.collector import Collector as FanoutCollector
from polyfeed.fanout.consumer import NatsMarketStream
from polyfeed.record.writer import Recorder
from polyfeed.session import MarketSession
from polyfeed.session.base import ChannelSession
from polyfeed.session.market import LAG_BUCKETS_MS
from polyfeed.session.user import RECONCILED_KINDS, UserSession
from polyfeed.stream.market import MarketStream
from polyfeed.stream.user import UserStream

__all__ = ["AnyStream", "StreamCollector", "channel_of", "sessions_of"]

AnyStream = MarketStream | UserStream | NatsMarketStream

_LAG_BOUNDS = [f"{ms / 1000:g}" for ms in LAG_BUCKETS_MS]
_CONNECTION = ("stream", "channel", "connection")


@dataclass
class _CheckTotals:
    """A market stream's checks, kept monotonic across books that leave it."""

    passed: list[int] = field(default_factory=lambda: [0] * len(CHECK_KINDS))
    failed: list[int] = field(default_factory=lambda: [0] * len(CHECK_KINDS))
    seen: dict[int, OrderBook] = field(default_factory=dict)
    """The books of the last scrape, by identity: one gone since (unsubscribed, dropped, or replaced by a
    new book of its token) leaves its last counts in the totals."""

    def read(self, books: dict[str, OrderBook]) -> tuple[list[int], list[int]]:
        current = {id(b): b for b in books.values()}
        for gone in self.seen.keys() - current.keys():  # set operations in C: 45,600 books in ~5 ms
            self._retire(self.seen[gone])
        self.seen = current
        counts = [b.checks for b in current.values()]
        passed_lists = [c.passed_by_index for c in counts]
        failed_lists = [c.failed_by_index for c in counts]
        # a column at a time, in C (zip(*lists) of 45,600 lists is ten times slower)
        passed = [n + sum(map(itemgetter(i), passed_lists)) for i, n in enumerate(self.passed)]
        failed = [n + sum(map(itemgetter(i), failed_lists)) for i, n in enumerate(self.failed)]
        return passed, failed

    def _retire(self, book: OrderBook) -> None:
        for i, n in enumerate(book.checks.passed_by_index):
            self.passed[i] += n
        for i, n in enumerate(book.checks.failed_by_index):
            self.failed[i] += n


class StreamCollector(Collector):
    """A Prometheus collector of streams, recorders and fan-out collectors (register it on a registry of
    your own).

    Args:
        streams: :class:`polyfeed.stream.MarketStream`, :class:`polyfeed.stream.UserStream` or
            :class:`polyfeed.fanout.NatsMarketStream` objects, named ``market``, ``user``, ``nats``,
            ``market-2``... in order; a stream's recorder is added with it.
        recorders: recorders not already given by a stream (:class:`polyfeed.record.Recorder`).
        fanouts: fan-out collectors (:class:`polyfeed.fanout.Collector`, ``publish(on_open=...)`` gives
            it), named by the JetStream stream they publish to.

    >>> registry = CollectorRegistry(auto_describe=False)            # doctest: +SKIP
    >>> registry.register(StreamCollector([stream]))                 # doctest: +SKIP
    >>> prometheus_client.generate_latest(registry)                  # doctest: +SKIP
    """

    def __init__(
        self,
        streams: Iterable[AnyStream] = (),
        recorders: Iterable[Recorder] = (),
        fanouts: Iterable[FanoutCollector] = (),
    ) -> None:
        self.streams: dict[str, AnyStream] = {}
        self.recorders: dict[str, Recorder] = {}
        self.fanouts: dict[str, FanoutCollector] = {}
        self._checks: dict[str, _CheckTotals] = {}
        for stream in streams:
            self.add_stream(stream)
        for recorder in recorders:
            self.add_recorder(recorder)
        for fanout in fanouts:
            self.add_fanout(fanout)

    def add_stream(self, stream: AnyStream, name: str | None = None) -> str:
        """Collect ``stream`` (and its recorder) from now on; returns its ``stream`` label."""
        name = name or _free_name(channel_of(stream), self.streams)
        if name in self.streams:
            raise ValueError(f"a stream named {name!r} is collected already")
        self.streams[name] = stream
        self._checks[name] = _CheckTotals()
        if not isinstance(stream, NatsMarketStream) and isinstance(stream.recorder, Recorder):
            self.add_recorder(stream.recorder)
        return name

    def add_recorder(self, recorder: Recorder, name: str | None = None) -> str:
        """Collect ``recorder`` (once, however often it is given); returns its ``recording`` label (the
        directory's name by default)."""
        for known, other in self.recorders.items():
            if other is recorder:
                return known
        name = name or _free_name(recorder.directory.name or "recording", self.recorders)
        self.recorders[name] = recorder
        return name

    def add_fanout(self, fanout: FanoutCollector, name: str | None = None) -> str:
        """Collect a fan-out collector's publishing (once, however often it is given); returns its
        ``fanout`` label (the JetStream stream's name by default: ``POLYFEED``)."""
        for known, other in self.fanouts.items():
            if other is fanout:
                return known
        name = name or _free_name(fanout.layout.stream, self.fanouts)
        self.fanouts[name] = fanout
        return name

    def collect(self) -> Iterator[Metric]:
        """Read every counter now: what Prometheus' registry calls at each scrape."""
        families = _Families()
        now_ns = time.time_ns()
        for name, stream in self.streams.items():
            families.stream(name, stream)
            if isinstance(stream, UserStream):
                families.user(name, stream)
            else:
                families.market(name, stream, self._checks[name], now_ns)
            if isinstance(stream, NatsMarketStream):
                families.consumer(name, stream)
        for name, recorder in self.recorders.items():
            families.recording(name, recorder)
        for name, fanout in self.fanouts.items():
            families.fanout(name, fanout)
        yield from families.all()


def _free_name(base: str, taken: Mapping[str, object]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def channel_of(stream: AnyStream) -> str:
    """The ``channel`` of a stream's connections, and its default ``stream`` label: ``market``,
    ``user``, or ``nats`` (a :class:`polyfeed.fanout.NatsMarketStream`: its "connection" is its
    JetStream consumer)."""
    if isinstance(stream, MarketStream):
        return "market"
    if isinstance(stream, NatsMarketStream):
        return "nats"
    return "user"


def sessions_of(stream: AnyStream) -> list[tuple[str, ChannelSession]]:
    if isinstance(stream, UserStream):
        return [("user", stream.connection.session)] if stream.connection is not None else []
    channel = channel_of(stream)
    return [(channel, s) for s in stream.sessions]


class _Families:
    """The metric families of one scrape, filled stream by stream."""

    def __init__(self) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = _CONNECTION) -> CounterMetricFamily:
            return CounterMetricFamily(f"polyfeed_{name}", doc, labels=labels)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = _CONNECTION) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"polyfeed_{name}", doc, labels=labels)

        # connections, both channels
        self.messages = counter("messages_received", "Messages decoded from the frames received.")
        self.bytes = counter("received_bytes", "Payload bytes of the frames received.")
        self.undecodable = counter("undecodable_frames", "Frames that did not decode (skipped, logged).")
        self.up = gauge("connection_up", "1 while the connection is made and subscribed, else 0.")
        self.connects = counter("connects", "Connections made: the first, then each reconnect.")
        self.reconnects = counter("reconnects", "Connections made after the first.")
        self.connect_failures = counter("connect_failures", "Connection attempts that failed.")
        self.idle_timeouts = counter(
            "idle_timeouts", "Connections closed for silence past the data-idle deadline."
        )
        self.pong_timeouts = counter("pong_timeouts", "Connections closed for want of a PONG.")
        self.open = gauge("connections_open", "Connections up now.", ("stream", "channel"))
        # the market channel's connections
        market = ("stream", "connection")
        self.zombies = counter(
            "zombies_detected", "Data-idle closes after which the books had missed updates.", market
        )
        self.quiet = counter(
            "quiet_silences", "Data-idle closes after which the books were unchanged.", market
        )
        self.idle_deadline = gauge(
            "idle_deadline_seconds", "The connection's data-idle deadline now.", market
        )
        self.resyncs = counter(
            "resyncs",
            "GET /book resyncs by outcome: requested, completed, failed, deferred.",
            (*market, "outcome"),
        )
        self.resyncs_pending = gauge("resyncs_pending", "Resyncs asked of REST and not yet answered.", market)
        self.budget = gauge("resync_budget", "Resyncs the connection's REST budget allows now.", market)
        self.missing = counter("books_missing", "Tokens REST has no book for (closed).", market)
        # streams
        stream = ("stream",)
        self.books = gauge("books", "Books followed, by status.", ("stream", "status"))
        self.checks = counter(
            "book_checks", "Book integrity checks run, by kind and result.", ("stream", "kind", "result")
        )
        self.lag = HistogramMetricFamily(
            "polyfeed_lag_seconds",
            "Receive time minus the venue's timestamp, once per venue timestamp a connection sees.",
            labels=stream,
        )
        self.dropped = counter(
            "events_dropped", "Events lost by an async-for consumer slower than the stream.", stream
        )
        self.callback_errors = counter(
            "callback_errors", "Exceptions raised by on_event (logged; the stream went on).", stream
        )
        self.failed = gauge(
            "stream_failed", "1 once the stream gave up for good (credentials refused, URL rejected).", stream
        )
        self.markets = gauge("universe_markets", "Markets an all-markets stream follows.", stream)
        self.polls = counter(
            "universe_polls", "Walks of Gamma by an all-markets stream, by result.", ("stream", "result")
        )
        # the user channel
        self.orders_open = gauge("user_orders_open", "Your orders open now.", stream)
        self.trades = gauge("user_trades", "Your trades known, by status.", ("stream", "status"))
        self.reconciliations = counter(
            "user_reconciliations", "Reconciliations with REST after a (re)connection.", stream
        )
        self.reconciled = counter(
            "user_reconciled", "What the reconciliations changed, by kind.", ("stream", "change")
        )
        # recordings
        recording = ("recording",)
        self.records = counter("recording_records", "Records written (buffered ones included).", recording)
        self.recorded_bytes = counter(
            "recording_bytes", "Uncompressed bytes written (headers and payloads).", recording
        )
        self.written_bytes = counter(
            "recording_written_bytes", "Compressed bytes written to segments.", recording
        )
        self.segments = counter("recording_segments", "Segments started.", recording)
        self.write_errors = counter(
            "recording_write_errors", "Writes that failed (the recording stops at the first).", recording
        )
        self.lost = counter(
            "recording_records_lost", "Records not in the recording because a write had failed.", recording
        )
        # a fan-out collector's publishing to JetStream (polyfeed publish)
        fanout = ("fanout",)
        self.fanout_published = counter(
            "fanout_published",
            "Messages the collector handed to its publisher: venue messages, snapshots, statuses, gaps.",
            fanout,
        )
        self.fanout_acked = counter(
            "fanout_acked",
            "Messages and key-value snapshots JetStream acknowledged (duplicates included).",
            fanout,
        )
        self.fanout_duplicates = counter(
            "fanout_duplicates",
            "Acknowledged messages JetStream held already (another collector of the shard sent them).",
            fanout,
        )
        self.fanout_failed = counter(
            "fanout_failed",
            "Messages JetStream refused or did not acknowledge in time (their book awaits a snapshot).",
            fanout,
        )
        self.fanout_unpublished = counter(
            "fanout_unpublished",
            "Messages not sent: their book awaited a fresh snapshot, or the buffer was full.",
            fanout,
        )
        self.fanout_snapshots = counter(
            "fanout_snapshots_written", "Key-value snapshots JetStream acknowledged.", fanout
        )
        self.fanout_gaps = counter(
            "fanout_gaps_published",
            "gap messages published: a venue connection lost, or messages that could not be published.",
            fanout,
        )
        self.fanout_pending = gauge(
            "fanout_pending", "Messages sent and waiting for their acknowledgement.", fanout
        )
        self.fanout_buffered = gauge(
            "fanout_buffered", "Messages waiting to be sent (NATS away, or the window full).", fanout
        )
        self.fanout_dirty = gauge(
            "fanout_dirty_books",
            "Books whose messages await a fresh snapshot after a failure to publish.",
            fanout,
        )
        self.fanout_up = gauge(
            "fanout_nats_connected", "1 while the collector's NATS connection is up, else 0.", fanout
        )
        # a NATS stream's intake from JetStream (watch --nats, stream --nats)
        self.fanout_received = counter(
            "fanout_received", "Messages taken from JetStream (skipped ones included).", stream
        )
        self.fanout_skipped = counter(
            "fanout_skipped", "Messages taken that their book's key-value snapshot held already.", stream
        )
        self.fanout_undecodable = counter(
            "fanout_undecodable",
            "Messages or bucket values that did not decode, or of an unknown kind (skipped, logged).",
            stream,
        )
        self.fanout_gaps_received = counter(
            "fanout_gaps_received",
            "gap messages received: a collector lost a book's data (stale until a snapshot).",
            stream,
        )
        self.fanout_snapshots_read = counter(
            "fanout_snapshots_read",
            "Snapshots read from the key-value bucket: on entering, after a lost connection, resyncs.",
            stream,
        )
        self.fanout_sequence = gauge(
            "fanout_sequence", "The JetStream stream sequence of the last message taken.", stream
        )

    def all(self) -> Iterator[Metric]:
        yield from (m for m in vars(self).values() if isinstance(m, Metric))

    def stream(self, name: str, stream: AnyStream) -> None:
        self.dropped.add_metric([name], stream.events_dropped)
        self.callback_errors.add_metric([name], stream.callback_errors)
        self.failed.add_metric([name], int(stream.error is not None))
        open_by_channel: Counter[str] = Counter()
        for channel, session in sessions_of(stream):
            labels = [name, channel, str(session.connection_id)]
            self.messages.add_metric(labels, session.messages_received)
            self.bytes.add_metric(labels, session.bytes_received)
            self.undecodable.add_metric(labels, session.decode_failures)
            self.up.add_metric(labels, int(session.connected))
            self.connects.add_metric(labels, session.connections_made)
            self.reconnects.add_metric(labels, max(0, session.connections_made - 1))
            self.connect_failures.add_metric(labels, session.connects_failed)
            self.idle_timeouts.add_metric(labels, session.idle_timeouts)
            self.pong_timeouts.add_metric(labels, session.pong_timeouts)
            open_by_channel[channel] += session.connected
        channel = channel_of(stream)
        self.open.add_metric([name, channel], open_by_channel[channel])

    def market(
        self, name: str, stream: MarketStream | NatsMarketStream, checks: _CheckTotals, now_ns: int
    ) -> None:
        books = stream.books
        statuses = [b.status for b in books.values()]
        for status in BookStatus:  # list.count compares by identity first: an Enum's hash is Python code
            self.books.add_metric([name, status.value], statuses.count(status))
        passed, failed = checks.read(books)
        for kind, n_passed, n_failed in zip(CHECK_KINDS, passed, failed, strict=True):
            self.checks.add_metric([name, kind.value, "passed"], n_passed)
            self.checks.add_metric([name, kind.value, "failed"], n_failed)
        lag = [0] * (len(LAG_BUCKETS_MS) + 1)
        lag_sum_ms = 0
        for session in stream.sessions:
            self._market_session(name, session, now_ns)
            for i, n in enumerate(session.lag_counts):
                lag[i] += n
            lag_sum_ms += session.lag_sum_ms
        cumulative, buckets = 0, []
        for bound, n in zip([*_LAG_BOUNDS, "+Inf"], lag, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        self.lag.add_metric([name], buckets, lag_sum_ms / 1000)
        universe = stream.universe if isinstance(stream, MarketStream) else None
        if universe is not None:
            self.markets.add_metric([name], len(universe.markets))
            self.polls.add_metric([name, "ok"], universe.polls - universe.polls_failed)
            self.polls.add_metric([name, "failed"], universe.polls_failed)

    def _market_session(self, name: str, session: MarketSession, now_ns: int) -> None:
        labels = [name, str(session.connection_id)]
        self.zombies.add_metric(labels, session.zombies_detected)
        self.quiet.add_metric(labels, session.quiet_confirmed)
        self.idle_deadline.add_metric(labels, session.idle_deadline_s)
        resyncs = session.resyncs
        for outcome, n in (
            ("requested", resyncs.requested),
            ("completed", resyncs.completed),
            ("failed", resyncs.failed),
            ("deferred", resyncs.deferred),
        ):
            self.resyncs.add_metric([*labels, outcome], n)
        self.resyncs_pending.add_metric(labels, len(resyncs.pending))
        self.budget.add_metric(labels, resyncs.budget(now_ns))
        self.missing.add_metric(labels, session.books_missing)

    def user(self, name: str, stream: UserStream) -> None:
        state = stream.state
        self.orders_open.add_metric([name], sum(o.is_open for o in state.orders.values()))
        by_status = Counter(t.status for t in state.trades.values())
        for status, n in sorted(by_status.items()):
            self.trades.add_metric([name, status], n)
        session: UserSession | None = stream.connection.session if stream.connection is not None else None
        self.reconciliations.add_metric([name], session.reconciliations if session is not None else 0)
        for kind in RECONCILED_KINDS:
            self.reconciled.add_metric([name, kind], session.reconciled[kind] if session is not None else 0)

    def recording(self, name: str, recorder: Recorder) -> None:
        self.records.add_metric([name], recorder.records)
        self.recorded_bytes.add_metric([name], recorder.bytes_in)
        self.written_bytes.add_metric([name], recorder.bytes_written)
        self.segments.add_metric([name], recorder.segments)
        self.write_errors.add_metric([name], int(recorder.failed is not None))
        self.lost.add_metric([name], recorder.records_lost)

    def fanout(self, name: str, fanout: FanoutCollector) -> None:
        publisher = fanout.publisher
        labels = [name]
        self.fanout_published.add_metric(labels, fanout.published)
        self.fanout_acked.add_metric(labels, publisher.acked)
        self.fanout_duplicates.add_metric(labels, publisher.duplicates)
        self.fanout_failed.add_metric(labels, publisher.failed)
        self.fanout_unpublished.add_metric(labels, publisher.unpublished)
        self.fanout_snapshots.add_metric(labels, publisher.snapshots_written)
        self.fanout_gaps.add_metric(labels, fanout.gaps)
        self.fanout_pending.add_metric(labels, publisher.pending)
        self.fanout_buffered.add_metric(labels, publisher.buffered)
        self.fanout_dirty.add_metric(labels, len(publisher.dirty))
        self.fanout_up.add_metric(labels, int(publisher.client.is_connected))

    def consumer(self, name: str, stream: NatsMarketStream) -> None:
        labels = [name]
        self.fanout_received.add_metric(labels, stream.messages)
        self.fanout_skipped.add_metric(labels, stream.skipped)
        self.fanout_undecodable.add_metric(labels, stream.undecodable)
        self.fanout_gaps_received.add_metric(labels, stream.gaps)
        self.fanout_snapshots_read.add_metric(labels, stream.snapshots_read)
        self.fanout_sequence.add_metric(labels, stream.last_seq)
