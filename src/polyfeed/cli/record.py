"""``polyfeed record``: every raw frame of the market channel (and, with ``--user``, your user channel)
into a recording directory, until Ctrl-C or ``--seconds``.

The recording (``docs/recording-format.md``) holds the frames byte for byte with their receive times,
what polyfeed sent, the REST answers it used and the stream's markers (disconnects, resyncs), so that
``polyfeed replay`` rebuilds exactly the books seen live. A recorder killed outright loses at most the
last second. On a terminal a spinner counts records and bytes; piped, a line every ten seconds on
stderr. At the end the books are listed with a digest of their levels: ``polyfeed replay`` of the
recording lists the same digests.

A write that fails (a full disk, a file size limit) ends the command at once rather than streaming on
unrecorded: the segment is closed and indexed as far as it was written, one line names the file, the
error and what the recording holds, and the exit status is 1 (:class:`polyfeed.record.Recorder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from polyfeed.book import BookStatus
from polyfeed.cli.errors import EXIT_USAGE, CommandError, fail, run_command
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
    UserWsUrl,
    VenueOptions,
    WsUrl,
    gamma_cache,
    market_filter,
    open_venue,
    resolve_for_console,
)
from polyfeed.cli.recording import LABELS_META, labels_to_meta
from polyfeed.cli.serving import follow, with_metrics
from polyfeed.cli.terminal import err_console, out_console, spinner
from polyfeed.cli.view import BookLabel, WatchState
from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.record.format import META_FILE, REDACTED_API_KEY
from polyfeed.record.writer import Recorder
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.sinks.record import record
from polyfeed.stream import MarketStream
from polyfeed.wire import Credentials

__all__ = ["EPILOG", "record_command"]

EPILOG = """**Examples**

* `polyfeed record fed-decision-in-december --out rec/fed`
* `polyfeed record https://polymarket.com/event/fed-decision-in-december --out rec/fed --rotate-mb 64`
* `POLYMARKET_API_KEY=... POLYMARKET_API_SECRET=... POLYMARKET_API_PASSPHRASE=... polyfeed record
  fed-decision-in-december --user --out rec/mine`
* `polyfeed record sim-market-0 sim-market-1 --local --seconds 30 --out rec/local`
* `polyfeed record --all --out rec/everything` (every open market, followed as markets open and resolve)
* `polyfeed record --all --tag 21 --min-volume 100000 --out rec/crypto`
"""

_MIB = 1 << 20


def record_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="The recording's directory: created, and it must not hold a recording already.",
            file_okay=False,
            show_default=False,
        ),
    ],
    targets: OptionalTargets = None,
    seconds: Seconds = None,
    rotate_mb: Annotated[
        int, typer.Option("--rotate-mb", min=1, help="Start a new segment past this many MiB on disk.")
    ] = 256,
    rotate_minutes: Annotated[
        float, typer.Option("--rotate-minutes", min=0.01, help="Start a new segment after this many minutes.")
    ] = 60.0,
    user: Annotated[
        bool,
        typer.Option(
            "--user",
            help="Record your user channel too, with the API credentials in POLYMARKET_API_KEY, "
            "POLYMARKET_API_SECRET and POLYMARKET_API_PASSPHRASE (the local exchange's own with "
            "--local). The key is redacted from the recording; secret and passphrase are never in it.",
        ),
    ] = False,
    address: Annotated[
        str,
        typer.Option(
            "--address",
            envvar="POLYMARKET_ADDRESS",
            help="Your signer address (the POLY_ADDRESS header of --user's REST calls).",
            show_default=False,
        ),
    ] = "",
    ws_url: WsUrl = None,
    user_ws_url: UserWsUrl = None,
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
    """Record markets losslessly into a directory, for replay, serving and export.

    Every frame is kept byte for byte with its receive time, with the stream's disconnects and
    resyncs, in zstd segments rotated by size and time. Runs until Ctrl-C or --seconds; a recorder
    killed outright loses at most the last second. Ends by listing the books with a digest of their
    levels, which `polyfeed replay DIR` shows again.

    A write that fails (a full disk) stops the recording at once: the segment is closed and indexed as
    far as it was written, one line names the file and the error, and the exit status is 1.
    """
    universe = market_filter(targets, all_markets, tag, min_volume, ends_after, ends_before)
    credentials: Credentials | None = None
    if user and not local and ws_url is not None and user_ws_url is None:
        # the user channel of another venue than --ws-url's would be recorded beside its market channel
        raise fail(
            "record", "--user with --ws-url needs --user-ws-url, the same venue's user channel", EXIT_USAGE
        )
    if user and local:
        credentials, address = SIM_CREDENTIALS, address or SIM_ADDRESS
    elif user:
        try:
            credentials = Credentials.from_env()
        except KeyError as exc:
            raise fail("record", f"--user needs your API credentials: {exc.args[0]}", EXIT_USAGE) from None
    venue = VenueOptions(ws_url, rest_url, gamma_url, local, user_ws_url)
    rotate_s = rotate_minutes * 60.0
    job = _Recording(out, targets or [], credentials, address, rotate_mb * _MIB, rotate_s, universe)
    job.cache = gamma_cache(no_cache) if universe is not None else None
    run_command("record", with_metrics(job.run(venue, seconds, timeout), metrics_port, metrics_host))
    if job.recorder is not None:  # also after Ctrl-C: the recording was closed properly
        _print_summary(out_console(), job)


class _Recording(BackgroundJob):
    """One run of the command: what it follows and what it wrote (kept when Ctrl-C ends the run)."""

    command = "record"

    def __init__(
        self,
        out: Path,
        targets: list[str],
        credentials: Credentials | None,
        address: str,
        rotate_bytes: int,
        rotate_s: float,
        universe: MarketFilter | None = None,
    ) -> None:
        self.universe = universe
        self.cache: GammaCache | None = None
        """Gamma's listing on disk, for ``--all``."""
        self.out = out
        self.targets = targets
        self.credentials = credentials
        self.address = address
        self.rotate_bytes = rotate_bytes
        self.rotate_s = rotate_s
        self.state = WatchState()
        self.labels: dict[str, BookLabel] = {}
        self.recorder: Recorder | None = None
        self.stream: MarketStream | None = None
        self.final_statuses: dict[str, BookStatus] = {}
        """The books' statuses when the recording stopped (closing the stream turns them stale)."""
        self.started = time.monotonic()

    async def run(self, options: VenueOptions, seconds: float | None, timeout_s: float) -> None:
        """Resolve the targets, then record until ``seconds`` pass or the task is cancelled.

        Raises:
            CommandError: the venue did not open the streams, or sent no market data, within
                ``timeout_s`` (the recording is closed properly first).
        """
        console = err_console()
        async with open_venue(options) as venue:
            if self.universe is None:
                gamma = venue.gamma_url
                token_ids, infos = await resolve_for_console(console, gamma, self.targets, timeout_s)
                self.labels = {t: BookLabel(i.market_slug, i.outcome) for t, i in infos.items()}
                targets: list[str] = self.targets
            else:  # labels of a whole market would weigh megabytes in meta.json: token ids name the books
                token_ids, targets = [], [f"--all (filters: {self.universe})"]
            opened = asyncio.Event()

            def on_open(recorder: Recorder, stream: MarketStream) -> None:
                self.recorder, self.stream = recorder, stream
                follow(stream)
                opened.set()

            self.started = time.monotonic()
            existed = self.out.exists()
            job = asyncio.ensure_future(
                record(
                    self.out,
                    token_ids,
                    venue=venue,
                    user_credentials=self.credentials,
                    address=self.address,
                    seconds=seconds or None,  # 0: until Ctrl-C
                    rotate_bytes=self.rotate_bytes,
                    rotate_s=self.rotate_s,
                    on_event=self.state.on_event,
                    all_markets=self.universe,
                    gamma_cache=self.cache,
                    meta={LABELS_META: labels_to_meta(self.labels), "targets": targets},
                    on_open=on_open,
                    on_stop=self._stopped,
                    on_user=follow,  # its orders, trades and reconciliations; its connection in /healthz
                )
            )
            try:
                doing = "listing every open market on Gamma, " if self.universe is not None else ""
                with spinner(console, f"{doing}connecting to {venue.market_url}"):
                    if not await first(job, opened.wait(), timeout_s):
                        raise CommandError(f"{venue.rest_url} did not answer within {timeout_s:g} s")
                    if not await first(job, self.data(), timeout_s):
                        raise CommandError(
                            f"no market data from {venue.market_url} within {timeout_s:g} s (unreachable, or "
                            f"the venue knows none of these tokens); {self.out} holds what was sent"
                        )
                reporter = asyncio.create_task(self.report(console))
                try:
                    await job
                finally:
                    reporter.cancel()
            finally:
                if not job.done():  # a failure above, or Ctrl-C: close the recording properly
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await job
                if self.recorder is None and not existed:  # failed to open: leave no empty recording
                    _remove_if_empty(self.out)

    def _stopped(self) -> None:
        if self.stream is not None:
            self.final_statuses = {a: b.status for a, b in self.stream.books.items()}

    def status(self) -> str:
        recorder, stream = self.recorder, self.stream
        assert recorder is not None and stream is not None
        books = stream.books.values()
        live = sum(1 for b in books if b.status is BookStatus.LIVE)
        return (
            f"recording to {self.out}: {recorder.records:,} records · "
            f"{recorder.bytes_written / _MIB:.1f} MiB on disk · {live} of {len(books)} books live · "
            f"{self.state.reconnects} reconnects"
        )


def _remove_if_empty(directory: Path) -> None:
    """Remove a recording that holds no record (only its meta and empty files), so that the same
    command can be run again once the venue answers."""
    if not directory.is_dir():
        return
    files = list(directory.iterdir())
    if all(p.is_file() and (p.name == META_FILE or not p.stat().st_size) for p in files):
        shutil.rmtree(directory, ignore_errors=True)


def _print_summary(console: Console, job: _Recording) -> None:
    recorder, state = job.recorder, job.state
    assert recorder is not None
    books = job.stream.books if job.stream is not None else {}
    written = recorder.bytes_written
    ratio = f", {recorder.bytes_in / written:.1f}x" if written else ""
    console.print(
        f"recorded {recorder.records:,} records ({recorder.bytes_in / _MIB:.1f} MiB, "
        f"{written / _MIB:.2f} MiB on disk{ratio}) of {len(books)} books in "
        f"{time.monotonic() - job.started:.1f} s into {job.out}",
        soft_wrap=True,
    )
    console.print(
        f"{state.messages:,} messages, {state.reconnects} reconnects, {state.resyncs} resyncs",
        soft_wrap=True,
    )
    job.print_books(console)
    if job.credentials is not None:
        console.print(f"user channel recorded (its API key stored as {REDACTED_API_KEY})", soft_wrap=True)
