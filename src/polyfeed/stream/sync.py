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
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from polyfeed.book import OrderBook
from polyfeed.session import Event
from polyfeed.stream.loop import new_event_loop
from polyfeed.stream.market import MarketStream

__all__ = ["SyncMarketStream"]

_STARTUP_BOUND_S = 60.0

_POLL_S = 0.5  # how soon iteration sees the stream give up (or the stream closed from elsewhere)

log = logging.getLogger("polyfeed.stream")


class _ThreadQueue:
    """Events handed from the stream's thread to the caller's: at most ``max_queue`` (the oldest dropped
    beyond, counted and logged, as :class:`polyfeed.stream.queue.EventQueue` does; ``0``: unbounded)."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.events: deque[Event] = deque()
        self.dropped = 0
        self._ready = threading.Condition()

    def put(self, event: Event) -> None:
        with self._ready:
            self.events.append(event)
            if self.max_queue and len(self.events) > self.max_queue:
                self.events.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100_000 == 0:
                    log.warning(
                        "%d events dropped so far: the consumer is slower than the stream (max_queue=%d)",
                        self.dropped,
                        self.max_queue,
                    )
            self._ready.notify()

    def get(self, timeout: float | None) -> Event | None:
        """The next event, or ``None`` after ``timeout`` seconds (``None``: wait as long as it takes)."""
        with self._ready:
            if not self.events:
                self._ready.wait(timeout)
            return self.events.popleft() if self.events else None

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()


class SyncMarketStream:
    """:class:`MarketStream` for synchronous code; takes the same arguments.

    Events travel once, from the stream's thread into one thread-safe queue of ``max_queue`` (the
    stream's own queue is off); ``on_event`` still runs on the stream's thread, before the queue.
    Iteration ends with the stream's :attr:`error` (a :class:`polyfeed.errors.ConnectError`, say) once
    the events before it are taken.
    """

    def __init__(self, asset_ids: Iterable[str] = (), **kwargs: Any) -> None:
        self._events = _ThreadQueue(int(kwargs.pop("max_queue", 100_000)))
        user_callback = kwargs.pop("on_event", None)
        put = self._events.put
        if user_callback is None:
            on_event = put
        else:

            def on_event(event: Event) -> None:
                try:
                    user_callback(event)
                finally:
                    put(event)

        self._stream = self._make_stream(asset_ids, on_event, kwargs)
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="polyfeed-stream", daemon=True)
        self._stopped = threading.Event()

    def _make_stream(
        self, asset_ids: Iterable[str], on_event: Callable[[Event], None], kwargs: dict[str, Any]
    ) -> MarketStream:
        """The stream this wraps (a subclass wraps another stream of the same face: the fan-out's)."""
        return MarketStream(asset_ids, on_event=on_event, max_queue=0, **kwargs)

    @classmethod
    def from_slugs(cls, slugs: Iterable[str], **kwargs: Any) -> SyncMarketStream:
        stream = cls((), **kwargs)
        stream._stream._slugs = list(slugs)
        return stream

    @property
    def books(self) -> dict[str, OrderBook]:
        return self._stream.books

    @property
    def events_dropped(self) -> int:
        """Events the caller lost by reading slower than the stream (beyond ``max_queue``)."""
        return self._events.dropped

    @property
    def error(self) -> BaseException | None:
        """Why the stream gave up for good (``None`` while it runs); iteration raises it."""
        return self._stream.error

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
        self._events.wake()

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
            error = self._stream.error
            event = self._events.get(_POLL_S if error is None else 0)
            if event is not None:
                yield event
            elif error is not None:
                raise error

    def get(self, timeout: float | None = None) -> Event:
        """The next event; ``queue.Empty`` after ``timeout`` seconds (the stream's :attr:`error` if it
        gave up, once the events before it are taken)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            error = self._stream.error
            left = _POLL_S if deadline is None else min(_POLL_S, max(0.0, deadline - time.monotonic()))
            event = self._events.get(0 if error is not None else left)
            if event is not None:
                return event
            if error is not None:
                raise error
            if deadline is not None and time.monotonic() >= deadline:
                raise queue.Empty
