"""A synchronous wrapper for scripts and notebooks (the quickstart's users are synchronous).

The stream runs on its own event loop in a background thread; iteration blocks on a thread-safe
queue. Books are updated on that thread: read them through their methods (``best_bid``, ``bids()``),
which return fresh ``Level`` objects.

>>> with SyncMarketStream(["7667...1111"]) as stream:      # doctest: +SKIP
...     for event in stream:
...         print(event)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from polyfeed.book import OrderBook
from polyfeed.session import Event
from polyfeed.stream.loop import new_event_loop
from polyfeed.stream.market import MarketStream

__all__ = ["SyncMarketStream"]

_STARTUP_BOUND_S = 60.0


class SyncMarketStream:
    """:class:`MarketStream` for synchronous code; takes the same arguments."""

    def __init__(self, asset_ids: Iterable[str] = (), **kwargs: Any) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._stream = MarketStream(asset_ids, on_event=self._events.put, **kwargs)
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="polyfeed-stream", daemon=True)
        self._stopped = threading.Event()

    @classmethod
    def from_slugs(cls, slugs: Iterable[str], **kwargs: Any) -> SyncMarketStream:
        stream = cls((), **kwargs)
        stream._stream._slugs = list(slugs)
        return stream

    @property
    def books(self) -> dict[str, OrderBook]:
        return self._stream.books

    def __enter__(self) -> SyncMarketStream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._stream.__aenter__(), self._loop)
        try:
            future.result(_STARTUP_BOUND_S)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stream.__aexit__(None, None, None), self._loop)
        with contextlib.suppress(TimeoutError):
            future.result(_STARTUP_BOUND_S)
        self._shutdown()

    def _shutdown(self) -> None:
        self._stopped.set()

        async def cancel_leftovers() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(cancel_leftovers(), self._loop).result(_STARTUP_BOUND_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __iter__(self) -> Iterator[Event]:
        while not self._stopped.is_set():
            try:
                yield self._events.get(timeout=0.5)
            except queue.Empty:
                continue

    def get(self, timeout: float | None = None) -> Event:
        """The next event; ``queue.Empty`` after ``timeout`` seconds."""
        return self._events.get(timeout=timeout)
