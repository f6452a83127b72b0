"""``polyfeed replay DIR``: a recording through the same session code as live streaming, or served over
Polymarket's own WebSocket protocol.

- By default the recording is replayed as fast as it reads (``--speed max``) and the rebuilt books are
  listed with the digest of their levels: the digests ``polyfeed record`` printed at its end.
- ``--view watch`` draws the ``watch`` screen as the books change (at the recorded pace unless
  ``--speed`` says otherwise); ``--view jsonl`` writes every event as ``polyfeed stream`` does.
- ``--serve`` serves the recording as the venue until Ctrl-C or ``--seconds``: its market channel on
  ``ws://HOST:PORT/ws/market`` to any client (the quickstart's included) and the book REST calls on
  ``http://HOST:PORT`` (``/book``, ``/books``, ``/price``, ``/midpoint``, ``/tick-size``), both from one
  shared timeline (:mod:`polyfeed.replay.serve`).

A damaged recording (a segment missing, a frame that fails its checksum) is replayed past the damage:
each loss is a line on stderr, the books go stale there as after a live disconnect and are live again
at their next snapshot, the summary counts the records lost, and the exit status is 3
(:mod:`polyfeed.cli.verify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, RenderableType

from polyfeed.cli.errors import CommandError, describe, fail, run_command
from polyfeed.cli.recording import (
    FromTime,
    RecordingDir,
    UntilTime,
    book_order,
    books_table,
    labels_from_meta,
    resolve_window,
)
from polyfeed.cli.stream import discard_stdout
from polyfeed.cli.terminal import out_console, progress_to
from polyfeed.cli.verify import DamageReport
from polyfeed.cli.view import BookLabel, WatchState, render_screen
from polyfeed.cli.watch import Depth, draw
from polyfeed.errors import PolyfeedError
from polyfeed.record import RecordingInfo, recording_info
from polyfeed.replay.paced import replay_paced
from polyfeed.replay.replay import Replay
from polyfeed.replay.serve import RecordingServer
from polyfeed.session import Event, encode_event

__all__ = ["EPILOG", "ReplayView", "parse_speed", "replay_command"]

EPILOG = """**Examples**

* `polyfeed replay rec/fed`
* `polyfeed replay rec/fed --from +10m --until +20m --view watch --speed 10`
* `polyfeed replay rec/fed --from 2026-11-30T14:00:00Z --view jsonl | jq -c .type`
* `polyfeed replay rec/fed --serve --port 8765`
"""

_PROGRESS_EVERY = 8192  # records between progress updates


class ReplayView(enum.StrEnum):
    """What a replay shows."""

    SUMMARY = "summary"
    """Counts and the books at the end (with their digests)."""
    WATCH = "watch"
    """The ``watch`` screen as the books change."""
    JSONL = "jsonl"
    """Every event as a JSON line on stdout (as ``polyfeed stream``)."""


def parse_speed(text: str) -> float | None:
    """``max`` (``None``: as fast as possible) or a positive factor of the recorded pace.

    Raises:
        typer.BadParameter: neither.
    """
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise typer.BadParameter(f"{text!r} is not a speed: give a factor such as 1, 10 or 0.5, or max")
    return value


def _speed_option(value: str | None) -> str | None:
    if value is not None:
        parse_speed(value)
    return value


def replay_command(
    directory: RecordingDir,
    from_time: FromTime = None,
    until_time: UntilTime = None,
    speed: Annotated[
        str | None,
        typer.Option(
            "--speed",
            metavar="X|max",
            callback=_speed_option,
            help="Times the recorded pace, or max (default: max; 1 for --view watch and --serve).",
            show_default=False,
        ),
    ] = None,
    view: Annotated[
        ReplayView,
        typer.Option(
            "--view", help="summary: the books at the end; watch: the live screen; jsonl: every event."
        ),
    ] = ReplayView.SUMMARY,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Serve the market channel and the book REST calls as the venue instead, until Ctrl-C.",
        ),
    ] = False,
    host: Annotated[
        str, typer.Option("--host", help="With --serve: the address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="With --serve: the port (0: any free one).")
    ] = 8765,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds", min=0.0, help="With --serve: stop after this many seconds.", show_default=False
        ),
    ] = None,
    depth: Depth = None,
) -> None:
    """Replay a recording: the books rebuilt exactly, or served to any client.

    The recording drives the same session code as live streaming, so every book, status and check is
    what it was live at each moment. Lists the books at the end with the digests `polyfeed record`
    printed; `--view watch` draws them as they change; `--serve` serves the market channel on
    ws://HOST:PORT/ws/market, byte for byte at the recorded pace (or --speed), and the book REST calls
    on http://HOST:PORT, to unmodified clients.

    A damaged recording is replayed past the damage: each missing or damaged segment is a line on
    stderr, the books go stale there as after a disconnect and are live again at their next snapshot,
    and the exit status is 3 (`polyfeed verify DIR` checks a recording).
    """
    try:
        info = recording_info(directory)
    except PolyfeedError as exc:
        raise fail("replay", describe(exc)) from None
    from_ns, until_ns = resolve_window("replay", info, from_time, until_time)
    default_speed = "1" if serve or view is ReplayView.WATCH else "max"
    pace = parse_speed(speed or default_speed)
    if serve:
        run_command("replay", _serve(directory, info, host, port, pace, from_ns, until_ns, seconds))
        return
    job = _Replay(directory, info, from_ns, until_ns, pace)
    console = out_console()
    if view is ReplayView.JSONL:
        run_command("replay", job.jsonl())
        job.damage.exit()
        return
    coro = job.watch(console, depth) if view is ReplayView.WATCH else job.run(console)
    run_command("replay", coro)
    job.print_summary(console)
    job.damage.exit()


class _Replay:
    """One replay: the state it rebuilds and what it counted (kept when Ctrl-C ends it)."""

    def __init__(
        self,
        directory: Path,
        info: RecordingInfo,
        from_ns: int | None,
        until_ns: int | None,
        speed: float | None,
    ) -> None:
        self.directory = directory
        self.info = info
        self.from_ns = from_ns
        self.until_ns = until_ns
        self.speed = speed
        self.replay = Replay()
        self.damage = DamageReport("replay")
        self.state = WatchState()
        self.labels: dict[str, BookLabel] = labels_from_meta(info.meta)
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.started = time.perf_counter()
        self.elapsed = 0.0

    async def _records(self, each: Callable[[list[Event]], None] | None = None) -> None:
        """Replay, counting events into :attr:`state` and handing each record's to ``each`` (the caller
        reads :attr:`replay`'s books)."""
        on_event = self.state.on_event
        self.started = time.perf_counter()
        try:
            async for record, events in replay_paced(
                self.directory,
                speed=self.speed,
                from_ns=self.from_ns,
                until_ns=self.until_ns,
                state=self.replay,
                on_damage=self.damage,
            ):
                for event in events:
                    on_event(event)
                if each is not None and events:
                    each(events)
                if self.first_ns is None:
                    self.first_ns = record.recv_ns
                self.last_ns = record.recv_ns
        finally:
            self.elapsed = time.perf_counter() - self.started

    async def run(self, console: Console) -> None:
        """Replay with a progress bar (on a terminal)."""
        with progress_to(console, f"replaying {self.directory}", self.info.records) as done:
            ticker = asyncio.create_task(self._tick(done))
            try:
                await self._records()
            finally:
                ticker.cancel()

    async def _tick(self, report: Callable[[int], None]) -> None:
        while True:
            report(self.replay.records)
            await asyncio.sleep(0.1)

    async def watch(self, console: Console, depth: int | None) -> None:
        """Replay while drawing the ``watch`` screen; the last frame stays."""
        order = self.order

        def frame() -> RenderableType:
            now_ns = time.monotonic_ns()
            terminal = console.is_terminal
            return render_screen(
                self.replay.books,
                order(),
                self.labels,
                self.state,
                width=console.width,
                height=console.height - 1 if terminal else None,
                depth=depth,
                now_ns=now_ns,
                rate=self.state.rate(now_ns),
                interactive=terminal,
            )

        stop = asyncio.Event()
        drawing = asyncio.create_task(draw(console, frame, seconds=None, stop=stop))
        try:
            await self._records()
        except BaseException:
            drawing.cancel()
            raise
        finally:
            stop.set()  # the last frame shows the books as the replay left them
            with contextlib.suppress(asyncio.CancelledError):
                await drawing

    async def jsonl(self) -> None:
        """Every event as a JSON line on stdout; a reader that goes away ends the replay quietly."""
        out = sys.stdout.buffer
        paced = self.speed is not None

        def write(events: list[Event]) -> None:
            out.write(b"".join(encode_event(e) + b"\n" for e in events))
            if paced:
                out.flush()

        try:
            await self._records(write)
            out.flush()
        except BrokenPipeError:
            discard_stdout()

    def order(self) -> list[str]:
        return book_order(self.replay.books, self.labels)

    def print_summary(self, console: Console) -> None:
        state, replay = self.state, self.replay
        span = (self.last_ns - self.first_ns) / 1e9 if self.first_ns and self.last_ns else 0.0
        records = replay.records - replay.gaps  # the gap markers are the reader's, not the recording's
        rate = records / self.elapsed if self.elapsed else 0.0
        console.print(
            f"replayed {records:,} records ({span:.1f} s recorded) in {self.elapsed:.2f} s: "
            f"{rate:,.0f} records/s",
            soft_wrap=True,
        )
        console.print(
            f"{state.messages:,} messages, {state.disconnects} disconnects, {state.resyncs} resyncs, "
            f"{state.decode_failures} frames not decoded, {replay.skipped} records skipped",
            soft_wrap=True,
        )
        if self.damage.losses:
            console.print(f"{self.damage.summary()}, each named on stderr", markup=False, soft_wrap=True)
        books = replay.books
        if books:
            console.print(books_table(books, self.order(), self.labels))
        user = replay.user
        if replay.user_sessions:
            console.print(
                f"user channel: {len(user.orders)} orders, {len(user.trades)} trades", soft_wrap=True
            )


async def _serve(
    directory: Path,
    info: RecordingInfo,
    host: str,
    port: int,
    speed: float | None,
    from_ns: int | None,
    until_ns: int | None,
    seconds: float | None,
) -> None:
    console = out_console()
    server = RecordingServer(directory, host=host, port=port, speed=speed, from_ns=from_ns, until_ns=until_ns)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(server)
        except OSError as exc:  # the port is taken, or the address is not this machine's
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        pace = "as fast as clients read" if speed is None else f"at {speed:g}x the recorded pace"
        console.print(
            f"serving {directory} ({info.records:,} records) on {server.ws_url}/ws/market {pace}, "
            f"REST on {server.rest_url}; Ctrl-C stops",
            soft_wrap=True,
        )
        sys.stdout.flush()
        try:
            await asyncio.sleep(seconds if seconds else float("inf"))
        finally:
            console.print(f"served {server.clients} clients", soft_wrap=True)
