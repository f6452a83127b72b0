"""Recording and replaying as whole jobs, for the command line and for programs.

:func:`record` follows assets (and, with credentials, your user channel) and writes everything to a
recording until it is cancelled or ``seconds`` pass; :func:`replay_paced` drives a recording through the
live session code at a chosen speed and yields what the live stream emitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.record.writer import Recorder
from polyfeed.session import Event
from polyfeed.stream.market import MarketStream
from polyfeed.stream.user import UserStream
from polyfeed.venue import Venue
from polyfeed.wire import Credentials

__all__ = ["RecordSummary", "record"]


@dataclass
class RecordSummary:
    """What a recording run wrote."""

    directory: Path
    records: int
    bytes_in: int
    bytes_written: int
    assets: int
    seconds: float


async def record(
    out: str | Path,
    asset_ids: Iterable[str] = (),
    *,
    slugs: Iterable[str] = (),
    all_markets: MarketFilter | None = None,
    gamma_cache: GammaCache | None = None,
    venue: Venue | None = None,
    ws_url: str | None = None,
    rest_url: str | None = None,
    gamma_url: str | None = None,
    user_credentials: Credentials | None = None,
    user_ws_url: str | None = None,
    address: str = "",
    seconds: float | None = None,
    rotate_bytes: int = 256 << 20,
    rotate_s: float = 3600.0,
    ssl_context: ssl.SSLContext | None = None,
    on_event: Callable[[Event], None] | None = None,
    meta: Mapping[str, object] | None = None,
    on_open: Callable[[Recorder, MarketStream], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    on_user: Callable[[UserStream], None] | None = None,
) -> RecordSummary:
    """Record the market channel of ``asset_ids`` and ``slugs`` (and the user channel when
    ``user_credentials`` are given) into ``out`` until cancelled (Ctrl-C) or ``seconds`` pass, from
    ``venue`` (``None``: Polymarket; ``ws_url``, ``rest_url``, ``gamma_url`` and ``user_ws_url`` in place
    of its URLs).

    The recording is closed properly however the run ends; a process killed outright loses at most the
    last second (see ``docs/recording-format.md``). The streams' orderly stop is recorded (a
    ``stopped`` marker for each connection), so that a replay ends with the books as they were.

    With ``all_markets`` (a :class:`polyfeed.net.gamma.MarketFilter`; ``MarketFilter()`` for no filter),
    every open market is recorded instead (:meth:`polyfeed.stream.MarketStream.all_markets`, with Gamma's
    listing cached in ``gamma_cache`` if given), and ``asset_ids`` and ``slugs`` are not used.

    ``meta`` is added to the recording's ``meta.json`` (the command line stores the books' names there);
    ``on_open`` is called with the recorder and the market stream once both channels are open (to show
    progress, say); ``on_user`` with the user stream just before it opens (to serve its metrics, its
    connection down until made); ``on_stop`` once the run ends, before the streams close (their books as
    they were: closing turns them stale).

    Raises:
        RecordingError: the recording could not be created, or writing to it failed (a full disk): the
            run ends at once, the recording closed as far as it was written, and the message names the
            file, the error and what the recording holds.
        AuthenticationError: the user channel refused the credentials (the run ends at once, the
            recording closed).
        ConnectError: the venue refused a channel's WebSocket (see :class:`polyfeed.stream.MarketStream`).
        VenueError: the venue's REST API or Gamma answered with an error or could not be reached.
        InvalidURLError: a URL of the wrong scheme for its use.
    """
    started = time.monotonic()
    urls = (venue or Venue.polymarket()).with_urls(
        market_url=ws_url, user_url=user_ws_url, rest_url=rest_url, gamma_url=gamma_url
    )
    about: dict[str, object] = {"ws_url": urls.market_url, "rest_url": urls.rest_url, "slugs": list(slugs)}
    about.update(meta or {})
    stop = asyncio.Event()  # set when writing fails: the run ends at once
    recorder = Recorder(
        out, rotate_bytes=rotate_bytes, rotate_s=rotate_s, meta=about, on_failure=lambda _: stop.set()
    )
    with recorder:
        if all_markets is not None:  # every open market, followed as markets open and resolve
            market = MarketStream.all_markets(
                all_markets,
                gamma_cache=gamma_cache,
                venue=urls,
                on_event=on_event,
                max_queue=0,
                ssl_context=ssl_context,
                recorder=recorder,
            )
        else:
            market = MarketStream.from_slugs(
                list(slugs),
                venue=urls,
                on_event=on_event,
                max_queue=0,
                ssl_context=ssl_context,
                recorder=recorder,
            )
            market.asset_ids = list(dict.fromkeys(asset_ids))  # the slugs' tokens join these on entering
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(market)
            if user_credentials is not None:
                user = UserStream(
                    user_credentials,
                    address=address,
                    venue=urls,
                    on_event=on_event,
                    max_queue=0,
                    ssl_context=ssl_context,
                    recorder=recorder,
                )
                if on_user is not None:
                    on_user(user)
                await stack.enter_async_context(user)
            if on_open is not None:
                on_open(recorder, market)
            streams: list[MarketStream | UserStream] = [market]
            if user_credentials is not None:
                streams.append(user)
            watchers = [asyncio.ensure_future(s.failed()) for s in streams]
            for watcher in watchers:
                watcher.add_done_callback(lambda _: stop.set())
            try:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(stop.wait(), seconds)
            finally:
                for watcher in watchers:
                    watcher.cancel()
                if on_stop is not None:
                    on_stop()
            for stream in streams:  # a stream that gave up (credentials refused, a URL rejected)
                if stream.error is not None:
                    raise stream.error
        assets = len(market.books)
        summary = RecordSummary(
            Path(out),
            recorder.records,
            recorder.bytes_in,
            recorder.bytes_written,
            assets,
            time.monotonic() - started,
        )
    return summary
