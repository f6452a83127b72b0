"""SyncMarketStream: the stream from synchronous code, against the local exchange in another thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from polyfeed import SyncMarketStream
from polyfeed.book import BookStatus
from polyfeed.errors import ConnectError
from polyfeed.net import Backoff
from polyfeed.session import BookUpdated, Event
from polyfeed.sim import Simulator

BOUND_S = 60.0
FAST = Backoff(initial_s=0.01, max_s=0.05)


@dataclass
class Venue:
    market_url: str
    rest_url: str
    assets: list[str]


@contextlib.contextmanager
def exchange_in_thread(markets: int = 2, events_per_s: float = 300) -> Iterator[Venue]:
    ready = threading.Event()
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    found: list[Venue] = []

    async def serve() -> None:
        async with Simulator(markets=markets, seed=6, events_per_s=events_per_s) as sim:
            found.append(Venue(sim.market_url, sim.rest_url, sim.exchange.asset_ids()))
            done = asyncio.Event()
            stop.append((asyncio.get_running_loop(), done))
            ready.set()
            await done.wait()

    server = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    server.start()
    assert ready.wait(BOUND_S)
    try:
        yield found[0]
    finally:
        loop, done = stop[0]
        loop.call_soon_threadsafe(done.set)
        server.join(BOUND_S)
        assert not server.is_alive()


def test_synchronous_iteration_sees_live_books() -> None:
    with (
        exchange_in_thread() as venue,
        SyncMarketStream(venue.assets, ws_url=venue.market_url, rest_url=venue.rest_url) as stream,
    ):
        updated = set()
        deadline = time.monotonic() + BOUND_S
        for event in stream:
            if isinstance(event, BookUpdated):
                updated.add(event.asset_id)
            if updated == set(venue.assets):
                break
            assert time.monotonic() < deadline, f"only {len(updated)} books updated"
        assert all(stream.books[a].status is BookStatus.LIVE for a in venue.assets)
        assert stream.books[venue.assets[0]].best_bid is not None


def test_events_are_kept_once_so_a_prompt_reader_loses_none_and_sees_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14, item 7: the inner async queue was never read, so past its size it warned falsely."""
    seen: list[Event] = []
    with (
        exchange_in_thread(events_per_s=1000) as venue,
        SyncMarketStream(
            venue.assets,
            ws_url=venue.market_url,
            rest_url=venue.rest_url,
            max_queue=1000,
            on_event=seen.append,
        ) as stream,
    ):
        assert stream._stream._queue.max_queue == 0, "the async stream keeps no second copy"
        taken = 0
        while taken < 5000:  # five times the queue's size, read as they come
            stream.get(timeout=BOUND_S)
            taken += 1
        assert stream.events_dropped == 0
        assert not [r for r in caplog.records if "slower than the stream" in r.getMessage()]
        assert len(seen) >= taken, "the caller's on_event saw every event too"


def test_a_reader_that_falls_behind_loses_the_oldest_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        exchange_in_thread(events_per_s=1000) as venue,
        SyncMarketStream(
            venue.assets, ws_url=venue.market_url, rest_url=venue.rest_url, max_queue=20
        ) as stream,
    ):
        deadline = time.monotonic() + BOUND_S
        while stream.events_dropped == 0:  # not reading at all
            assert time.monotonic() < deadline, "nothing was dropped"
            time.sleep(0.02)
        assert len(stream._events.events) == 20
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "slower" in r.getMessage()]
    assert warnings


def drain(stream: SyncMarketStream) -> None:
    deadline = time.monotonic() + BOUND_S
    for _ in stream:
        assert time.monotonic() < deadline, "iteration did not end"


def test_iteration_ends_with_the_error_of_a_stream_that_cannot_connect() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{unused.getsockname()[1]}/ws/market"
        with (
            exchange_in_thread() as venue,
            SyncMarketStream(
                venue.assets, ws_url=url, rest_url=venue.rest_url, backoff=FAST, max_connect_attempts=2
            ) as stream,
        ):
            with pytest.raises(ConnectError, match="connection refused"):
                drain(stream)  # ConnectFailed events, then the error
            assert isinstance(stream.error, ConnectError)
            with pytest.raises(ConnectError):
                stream.get(timeout=BOUND_S)


def test_get_times_out_with_queue_empty() -> None:
    with (
        exchange_in_thread(events_per_s=0.001) as venue,
        SyncMarketStream(venue.assets, ws_url=venue.market_url, rest_url=venue.rest_url) as stream,
    ):
        with contextlib.suppress(queue.Empty):
            while True:  # the initial books, then nothing: the exchange is all but silent
                stream.get(timeout=1.0)
        with pytest.raises(queue.Empty):
            stream.get(timeout=0.05)
