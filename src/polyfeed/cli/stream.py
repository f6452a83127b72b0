"""``polyfeed stream``: every event of a market stream as one JSON line on stdout, for pipes.

Each line is one object, written by :func:`polyfeed.session.encode_event`: ``type`` (the event's class:
``MessageReceived``, ``BookUpdated``, ``StatusChanged``, ``Disconnected``, ``Reconnected``,
``ResyncRequested``, ``Resynced``, ``ConnectFailed``, ``DecodeFailed``), ``recv_ns``, ``seq``,
``connection_id`` and the event's own fields; a ``MessageReceived`` adds ``message_type`` (the wire
struct's class: ``Book``, ``PriceChange``, ...) and ``message``, the wire message with Polymarket's own
field names. ``msgspec.json.decode(line, type=polyfeed.session.AnyEvent)`` reads a line back. Lines are
flushed one by one; a reader that goes away (``| head``) ends the stream quietly with exit code 0.

``stream --nats URL`` writes the events of a :class:`polyfeed.fanout.NatsMarketStream` instead: the
books of the fan-out ``polyfeed publish`` fills, kept and checked here by the same session code, so the
lines are the same events (the venue's messages, ``BookUpdated``, ``StatusChanged``...). ``--durable
NAME`` makes its JetStream consumer durable: run again with the same name, it goes on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import sys
from collections.abc import Callable
from typing import Annotated, BinaryIO

import typer
from rich.console import Console

from polyfeed.book import BookStatus
from polyfeed.cli.errors import CommandError, discard_stdout, run_command
from polyfeed.cli.fanout import Durable, JetStreamName, NatsSource, check_nats, nats_targets, nats_where
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
from polyfeed.cli.serving import follow, with_metrics
from polyfeed.cli.terminal import err_console, spinner
from polyfeed.fanout import NatsMarketStream
from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.session import Event, encode_event
from polyfeed.stream import MarketStream

__all__ = ["EPILOG", "OutputFormat", "discard_stdout", "stream_command", "stream_events"]

EPILOG = """**Examples**

* `polyfeed stream fed-decision-in-december > events.jsonl`
* `polyfeed stream 7667...1111 --count 20 | jq -c 'select(.message_type == "PriceChange")'`
* `polyfeed stream sim-market-0 --local --seconds 5 | jq -r .type | sort | uniq -c`
* `polyfeed stream --all --min-volume 1000000 | jq -c 'select(.type == "StatusChanged")'`
* `polyfeed stream --nats nats://127.0.0.1:4222 --all | jq -c 'select(.type == "BookUpdated")'`: the
  books `polyfeed publish` fills
* `polyfeed stream --nats nats://127.0.0.1:4222 7667...1111 --durable bot-1 >> events.jsonl`: run again,
  it goes on where it stopped
"""


class OutputFormat(enum.StrEnum):
    """How events are written."""

    JSONL = "jsonl"
    """One JSON object a line."""


def stream_command(
    context: typer.Context,
    targets: OptionalTargets = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="How events are written: one JSON object a line.")
    ] = OutputFormat.JSONL,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
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
    nats: NatsSource = None,
    jetstream: JetStreamName = "POLYFEED",
    durable: Durable = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Every event as a JSON line on stdout, for jq and other languages.

    One object a line: `type` (MessageReceived, BookUpdated, StatusChanged, Disconnected,
    Reconnected, ResyncRequested, Resynced, DecodeFailed), `recv_ns`, `seq`, `connection_id` and the
    event's fields; a MessageReceived adds `message_type` and `message`, the wire message with
    Polymarket's field names. Ends quietly when the reader goes away (`| head`). With --nats, the
    events of the books the fan-out `polyfeed publish` fills, checked here with the venue's hashes.
    """
    if nats is not None:
        token_ids = nats_targets(context, targets, all_markets)
        job = _stream_nats(nats, jetstream, durable, token_ids, count, seconds, timeout)
    else:
        if durable is not None or jetstream != "POLYFEED":
            raise typer.BadParameter("--stream and --durable name the fan-out to read: they need --nats")
        universe = market_filter(targets, all_markets, tag, min_volume, ends_after, ends_before)
        venue = VenueOptions(ws_url, rest_url, gamma_url, local)
        cache = gamma_cache(no_cache) if universe is not None else None
        job = _stream(venue, targets or [], universe, cache, count, seconds, timeout)
    dropped = run_command("stream", with_metrics(job, metrics_port, metrics_host))
    if dropped:
        sys.stderr.write(
            f"polyfeed stream: {dropped} events dropped: stdout was read slower than the stream\n"
        )


async def _stream(
    options: VenueOptions,
    targets: list[str],
    universe: MarketFilter | None,
    cache: GammaCache | None,
    count_limit: int | None,
    seconds: float | None,
    timeout_s: float,
) -> int:
    console = err_console()
    async with open_venue(options) as venue:
        received = [0]

        def count(_: Event) -> None:
            received[0] += 1

        if universe is None:
            token_ids, _ = await resolve_for_console(
                console, venue.gamma_url, targets, timeout_s, name_tokens=False
            )
            stream = MarketStream(token_ids, venue=venue, on_event=count)
        else:  # every open market, followed as markets open and resolve
            stream = MarketStream.all_markets(universe, gamma_cache=cache, venue=venue, on_event=count)
        return await _write(
            stream, console, received, venue.market_url, venue.rest_url, count_limit, seconds, timeout_s
        )
    return 0  # pragma: no cover - mypy cannot see that the block always returns


async def _stream_nats(
    nats_url: str,
    jetstream: str,
    durable: str | None,
    token_ids: list[str] | None,
    count_limit: int | None,
    seconds: float | None,
    timeout_s: float,
) -> int:
    """``stream --nats``: the events of a fan-out's books (``token_ids``; ``None``: every book)."""
    console = err_console()
    where = nats_where(nats_url, jetstream)
    with spinner(console, f"connecting to {where}"):
        await check_nats(nats_url, timeout_s)
    received = [0]

    def count(_: Event) -> None:
        received[0] += 1

    stream = NatsMarketStream(nats_url, token_ids, stream=jetstream, durable=durable, on_event=count)
    no_data = (
        f"no data from {where} within {timeout_s:g} s: no collector publishes these tokens, or none runs "
        "(polyfeed publish ... --nats URL; --timeout 0 waits for ever)"
    )
    return await _write(stream, console, received, where, where, count_limit, seconds, timeout_s, no_data)


async def _write(
    stream: MarketStream | NatsMarketStream,
    console: Console,
    received: list[int],
    opening: str,
    who: str,
    count_limit: int | None,
    seconds: float | None,
    timeout_s: float,
    no_data: str | None = None,
) -> int:
    """Enter ``stream`` (the spinner says it connects to ``opening``; ``who`` did not answer if that takes
    too long) and write its events on stdout; returns the events dropped."""
    follow(stream)
    async with contextlib.AsyncExitStack() as stack:
        with spinner(console, f"connecting to {opening}"):
            try:
                async with asyncio.timeout(timeout_s or None):
                    await stack.enter_async_context(stream)
            except TimeoutError:
                raise CommandError(f"{who} did not answer within {timeout_s:g} s") from None
        # progress on stderr only while stdout goes elsewhere (a file, a pipe): never into the data
        with spinner(console, "waiting for the first books", enabled=not _stdout_is_terminal()) as say:
            reporter = asyncio.create_task(_report_progress(stream, received, say))
            try:
                await stream_events(
                    stream,
                    sys.stdout.buffer,
                    count=count_limit,
                    seconds=seconds,
                    timeout_s=timeout_s,
                    no_data=no_data,
                )
            finally:
                reporter.cancel()
        return stream.events_dropped
    return 0  # pragma: no cover - mypy cannot see that the block always returns


async def stream_events(
    stream: MarketStream | NatsMarketStream,
    out: BinaryIO,
    *,
    count: int | None = None,
    seconds: float | None = None,
    timeout_s: float = 30.0,
    no_data: str | None = None,
) -> int:
    """Write ``stream``'s events to ``out``, a line each, until ``count`` events or ``seconds`` pass or the
    reader goes away; returns the number of lines written.

    Raises:
        CommandError: no event at all within ``timeout_s`` (``no_data`` says it: by default, that the
            venue of a :class:`polyfeed.stream.MarketStream` sent nothing).
    """
    written = 0
    loop = asyncio.get_running_loop()
    if no_data is None:
        source = stream.ws_url if isinstance(stream, MarketStream) else "the stream"
        no_data = (
            f"no market data from {source} within {timeout_s:g} s: the venue knows none of these tokens, "
            "or sends nothing yet (--timeout 0 waits for ever)"
        )
    try:
        async with asyncio.timeout_at(loop.time() + seconds if seconds else None):
            try:
                async with asyncio.timeout(timeout_s or None):
                    event = await anext(stream)
            except TimeoutError:
                raise CommandError(no_data) from None
            while True:
                out.write(encode_event(event) + b"\n")
                out.flush()
                written += 1
                if count is not None and written >= count:
                    break
                event = await anext(stream)
    except TimeoutError:  # --seconds passed
        pass
    except BrokenPipeError:
        discard_stdout()
    return written


async def _report_progress(
    stream: MarketStream | NatsMarketStream, received: list[int], say: Callable[[str], None]
) -> None:
    while True:
        books = stream.books.values()
        live = sum(1 for b in books if b.status is BookStatus.LIVE)
        say(f"{received[0]:,} events · {live} of {len(books)} books live")
        await asyncio.sleep(0.5)


def _stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a test's capture): not a terminal
        return False
