"""``polyfeed publish``: follow markets on the venue and publish their books to NATS JetStream, for every
process and machine to read (``polyfeed watch --nats``, ``polyfeed stream --nats``,
:class:`polyfeed.fanout.NatsMarketStream`, or any NATS client: ``docs/fanout.md``).

The job is :func:`polyfeed.fanout.publish`: per book, the venue's messages with their hashes on
``polyfeed.book.<condition_id>.<token_id>``, its snapshots, statuses and gaps, and its latest verified
snapshot in the key-value bucket ``POLYFEED_books``. ``--shard I/N`` keeps the I-th of N collectors'
share of the markets; two collectors of one shard store each message once. A NATS outage is ridden out
(reconnect, buffer, then count what could not be published and resnapshot those books).

While it runs, a spinner on a terminal (a line every ten seconds on stderr otherwise) counts the books
live, the messages published, acknowledged, waiting for their acknowledgement, failed, left unpublished,
and the gaps announced. Ctrl-C, SIGTERM or ``--seconds`` stop it in order (what is buffered is sent, the
books' last state written to the bucket) and a summary is printed on stdout: the counts, then the books
with a digest of their levels (:func:`polyfeed.cli.recording.book_digest`), which a consumer's books
have too when they equal the collector's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

import typer
from rich.console import Console

from polyfeed.book import BookStatus
from polyfeed.cli.errors import CommandError, run_command
from polyfeed.cli.fanout import NATS_PANEL, JetStreamName, NatsUrl, check_nats, nats_where
from polyfeed.cli.jobs import BackgroundJob, first
from polyfeed.cli.options import (
    AllMarkets,
    EndsAfter,
    EndsBefore,
    GammaUrl,
    Local,
    MetricsHost,
    MetricsPort,
    MinVolume,
    NoCache,
    OptionalTargets,
    RestUrl,
    Seconds,
    Tag,
    Timeout,
    VenueOptions,
    WsUrl,
    gamma_cache,
    market_filter,
    open_venue,
    resolve_for_console,
)
from polyfeed.cli.serving import follow, follow_fanout, with_metrics
from polyfeed.cli.terminal import err_console, out_console, spinner
from polyfeed.cli.view import BookLabel, WatchState
from polyfeed.fanout import Collector, publish
from polyfeed.fanout.collector import default_collector_name
from polyfeed.fanout.schema import parse_shard
from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.stream import MarketStream

__all__ = ["EPILOG", "publish_command"]

EPILOG = """**Examples**

* `polyfeed publish fed-decision-in-december --nats nats://127.0.0.1:4222`
* `polyfeed publish sim-market-0 sim-market-1 --local --nats nats://127.0.0.1:4222 --seconds 60`, then
  `polyfeed stream --nats nats://127.0.0.1:4222 --all` in another terminal
* `polyfeed publish --all --nats nats://nats.internal:4222 --shard 0/3 --metrics-port 9108` (and `--shard
  1/3`, `--shard 2/3` on two other machines: one namespace for the consumers)
* `polyfeed publish --all --tag 21 --nats nats://nats.internal:4222 --collector a` beside the same with
  `--collector b` elsewhere: two collectors of one shard, each message stored once
"""


def _shard(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_shard(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="Publish only the I-th of N collectors' share of the markets (0/3, 1/3, 2/3 on three "
        "machines), split by condition id: the consumers see one namespace.",
        callback=_shard,
        show_default=False,
        rich_help_panel=NATS_PANEL,
    ),
]
CollectorName = Annotated[
    str | None,
    typer.Option(
        "--collector",
        metavar="NAME",
        help="This collector's name, in every message, its heartbeats and the bucket's values "
        "(default: HOST-PID).",
        show_default=False,
        rich_help_panel=NATS_PANEL,
    ),
]
SnapshotInterval = Annotated[
    float,
    typer.Option(
        "--snapshot-interval",
        metavar="SECONDS",
        min=0.0,
        help="Rewrite a changed live book's snapshot in the key-value bucket at most this often (a "
        "consumer that starts late begins from it).",
        rich_help_panel=NATS_PANEL,
    ),
]


def publish_command(
    nats_url: NatsUrl,
    targets: OptionalTargets = None,
    jetstream: JetStreamName = "POLYFEED",
    shard: Shard = None,
    collector: CollectorName = None,
    snapshot_interval: SnapshotInterval = 10.0,
    seconds: Seconds = None,
    ws_url: WsUrl = None,
    rest_url: RestUrl = None,
    gamma_url: GammaUrl = None,
    local: Local = False,
    timeout: Timeout = 30.0,
    all_markets: AllMarkets = False,
    tag: Tag = None,
    min_volume: MinVolume = None,
    ends_after: EndsAfter = None,
    ends_before: EndsBefore = None,
    no_cache: NoCache = False,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Publish books to NATS JetStream, for every process and machine to read.

    Follows the markets on the venue and publishes, per book, the venue's messages with their hashes
    (consumers check the books themselves), its snapshots, statuses and gaps on
    polyfeed.book.CONDITION_ID.TOKEN_ID, and its latest verified snapshot in the key-value bucket
    POLYFEED_books. Read them with `polyfeed watch --nats` or `polyfeed stream --nats`. Runs until
    Ctrl-C or --seconds, then sends what is buffered and prints what was published.
    """
    universe = market_filter(targets, all_markets, tag, min_volume, ends_after, ends_before)
    venue = VenueOptions(ws_url, rest_url, gamma_url, local)
    job = _Publishing(
        nats_url,
        jetstream,
        targets or [],
        universe,
        parse_shard(shard) if shard is not None else None,
        collector or default_collector_name(),
        snapshot_interval,
    )
    job.cache = gamma_cache(no_cache) if universe is not None else None
    run_command("publish", with_metrics(job.run(venue, seconds, timeout), metrics_port, metrics_host))
    if job.collector is not None:  # also after Ctrl-C: what was buffered was sent first
        _print_summary(out_console(), job)


class _Publishing(BackgroundJob):
    """One run of the command: what it follows and publishes (kept when Ctrl-C ends the run)."""

    command = "publish"

    def __init__(
        self,
        nats_url: str,
        jetstream: str,
        targets: list[str],
        universe: MarketFilter | None,
        shard: tuple[int, int] | None,
        name: str,
        snapshot_interval_s: float,
    ) -> None:
        self.nats_url = nats_url
        self.jetstream = jetstream
        self.targets = targets
        self.universe = universe
        self.shard = shard
        self.name = name
        self.snapshot_interval_s = snapshot_interval_s
        self.cache: GammaCache | None = None
        """Gamma's listing on disk, for ``--all``."""
        self.state = WatchState()
        self.labels: dict[str, BookLabel] = {}
        self.stream: MarketStream | None = None
        self.collector: Collector | None = None
        self.final_statuses: dict[str, BookStatus] = {}
        """The books' statuses when publishing stopped (closing the stream turns them stale)."""
        self.started = time.monotonic()

    @property
    def where(self) -> str:
        return nats_where(self.nats_url, self.jetstream)

    async def run(self, options: VenueOptions, seconds: float | None, timeout_s: float) -> None:
        """Resolve the targets, then publish until ``seconds`` pass or the task is cancelled.

        Raises:
            FanoutError: NATS unreachable, without JetStream, or a stream of that name with other
                subjects.
            CommandError: the venue did not answer, or sent no market data, within ``timeout_s``; no
                market to publish (the shard holds none of them).
        """
        console = err_console()
        async with open_venue(options) as venue:
            token_ids: list[str] = []
            if self.universe is None:
                gamma = venue.gamma_url
                token_ids, infos = await resolve_for_console(console, gamma, self.targets, timeout_s)
                self.labels = {t: BookLabel(i.market_slug, i.outcome) for t, i in infos.items()}
            with spinner(console, f"connecting to {self.where}"):
                await check_nats(self.nats_url, timeout_s)
            opened = asyncio.Event()
            stop = asyncio.Event()

            def on_open(stream: MarketStream, collector: Collector) -> None:
                self.stream, self.collector = stream, collector
                follow(stream)
                follow_fanout(collector)
                opened.set()

            self.started = time.monotonic()
            job = asyncio.ensure_future(
                publish(
                    self.nats_url,
                    token_ids,
                    all_markets=self.universe,
                    gamma_cache=self.cache,
                    venue=venue,
                    stream=self.jetstream,
                    shard=self.shard,
                    collector=self.name,
                    snapshot_interval_s=self.snapshot_interval_s,
                    on_event=self.state.on_event,
                    on_open=on_open,
                    stop=stop,
                    labels={t: (label.name, label.outcome) for t, label in self.labels.items()},
                )
            )
            try:
                doing = "listing every open market on Gamma, " if self.universe is not None else ""
                with spinner(console, f"{doing}connecting to {venue.market_url}"):
                    if not await first(job, opened.wait(), timeout_s):
                        raise CommandError(f"{venue.rest_url} did not answer within {timeout_s:g} s")
                    empty = self.stream is not None and not self.stream.books
                    if empty and self.universe is None:
                        raise CommandError(f"nothing to publish: {self._none_kept()}")
                    if empty:  # --all follows markets as they open: a shard may be empty for a while
                        console.print(f"polyfeed publish: {self._none_kept()} yet", soft_wrap=True)
                    elif not await first(job, self.data(), timeout_s):
                        raise CommandError(
                            f"no market data from {venue.market_url} within {timeout_s:g} s (unreachable, or "
                            "the venue knows none of these tokens)"
                        )
                reporter = asyncio.create_task(self.report(console))
                try:
                    await first(job, asyncio.sleep(seconds) if seconds else asyncio.Event().wait(), 0)
                finally:
                    reporter.cancel()
            finally:
                if self.stream is not None:
                    self.final_statuses = {a: b.status for a, b in self.stream.books.items()}
                if not job.done():  # --seconds passed, a failure above, or Ctrl-C: stop in order
                    if opened.is_set():
                        stop.set()  # the books' last state into the bucket, what is buffered sent
                    else:
                        job.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await job

    def _none_kept(self) -> str:
        these = "these markets" if self.universe is None else "the open markets"
        if self.shard is not None:
            i, n = self.shard
            return f"shard {i}/{n} holds none of {these} (split by condition id)"
        return "no open market passes the filters"

    def status(self) -> str:
        stream, collector = self.stream, self.collector
        assert stream is not None and collector is not None
        publisher = collector.publisher
        books = stream.books.values()
        live = sum(1 for b in books if b.status is BookStatus.LIVE)
        line = (
            f"publishing to {self.where}: {live} of {len(books)} books live · {collector.published:,} "
            f"published · {publisher.acked:,} acked · {publisher.pending:,} pending · "
            f"{publisher.failed:,} failed · {publisher.unpublished:,} unpublished · {collector.gaps:,} gaps"
        )
        if not publisher.client.is_connected:
            line += f" · NATS disconnected, {publisher.buffered:,} buffered"
        return line


def _print_summary(console: Console, job: _Publishing) -> None:
    collector, state = job.collector, job.state
    assert collector is not None
    publisher = collector.publisher
    books = job.stream.books if job.stream is not None else {}
    console.print(
        f"published {collector.published:,} messages of {len(books)} books in "
        f"{time.monotonic() - job.started:.1f} s to {job.where} as collector {collector.collector}",
        soft_wrap=True,
    )
    unsent = publisher.pending + publisher.buffered  # NATS away at the stop, or slower than the drain
    console.print(
        f"{publisher.acked:,} acknowledged ({publisher.duplicates:,} duplicates, "
        f"{publisher.snapshots_written:,} snapshots written to the bucket), {publisher.failed:,} failed, "
        f"{publisher.unpublished:,} unpublished, {collector.gaps:,} gaps"
        + (f", {unsent:,} not acknowledged when it stopped" if unsent else ""),
        soft_wrap=True,
    )
    console.print(
        f"{state.messages:,} messages from the venue, {state.reconnects} reconnects, {state.resyncs} resyncs",
        soft_wrap=True,
    )
    job.print_books(console)
