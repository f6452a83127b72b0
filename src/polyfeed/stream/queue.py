"""Delivery of a stream's events: callbacks, then a bounded queue for ``async for``."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from polyfeed.session import Event

__all__ = ["EventQueue", "QueuedStream"]

log = logging.getLogger("polyfeed.stream")


class EventQueue:
    """Events for one consumer: ``on_event`` sees each, in order; ``async for`` takes them from a queue
    of at most ``max_queue`` (the oldest dropped beyond it, counted and logged; ``0`` keeps none).

    A deque and one waiter: ``asyncio.Queue`` costs about 2 us an event, this a tenth of that. An
    exception from ``on_event`` is logged and counted, never passed into the connection. :meth:`fail`
    ends the iteration with an error once the queued events are taken.
    """

    def __init__(self, on_event: Callable[[Event], None] | None, max_queue: int) -> None:
        self.on_event = on_event
        self.max_queue = max_queue
        self.dropped = 0
        self.callback_errors = 0
        self.emitted = 0
        """Events emitted so far."""
        self.taken = 0
        """Events ``async for`` took so far."""
        self.events: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._failure_waiters: list[asyncio.Future[BaseException]] = []

    def emit(self, events: list[Event]) -> None:
        self.emitted += len(events)
        on_event = self.on_event
        if on_event is not None:
            for event in events:
                try:
                    on_event(event)
                except Exception:
                    self.callback_errors += 1
                    log.exception("on_event raised on %s (the stream goes on)", type(event).__name__)
        if not self.max_queue:
            return
        queue = self.events
        queue.extend(events)
        overflow = len(queue) - self.max_queue
        if overflow > 0:
            for _ in range(overflow):
                queue.popleft()
            if self.dropped == 0 or (self.dropped + overflow) // 100_000 > self.dropped // 100_000:
                log.warning(
                    "%d events dropped so far: the consumer is slower than the stream (max_queue=%d)",
                    self.dropped + overflow,
                    self.max_queue,
                )
            self.dropped += overflow
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The stream cannot go on: the iterator raises ``error`` after the events already queued."""
        if self._error is None:
            self._error = error
        self._wake()
        for waiter in self._failure_waiters:
            if not waiter.done():
                waiter.set_result(self._error)
        self._failure_waiters.clear()

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def consumed(self) -> int:
        """Events that have reached the consumer, or never will: taken by ``async for`` or dropped from
        a full queue; every one emitted when no queue is kept (``max_queue=0``: ``on_event`` had them)."""
        return self.taken + self.dropped if self.max_queue else self.emitted

    async def failed(self) -> BaseException:
        """Wait until :meth:`fail` is called; returns its error."""
        if self._error is not None:
            return self._error
        waiter: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self._failure_waiters.append(waiter)
        return await waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Event:
        queue = self.events
        while not queue:
            if self._error is not None:
                raise self._error
            if not self.max_queue:
                raise RuntimeError(
                    "this stream keeps no events (max_queue=0): read its state or use on_event"
                )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.taken += 1
        return queue.popleft()


class QueuedStream:
    """What both streams offer over their :class:`EventQueue`: ``async for`` and its counters."""

    _queue: EventQueue

    @property
    def events_dropped(self) -> int:
        """Events the ``async for`` consumer lost by being slower than the stream."""
        return self._queue.dropped

    @property
    def callback_errors(self) -> int:
        """Exceptions ``on_event`` raised (logged; the stream went on)."""
        return self._queue.callback_errors

    @property
    def error(self) -> BaseException | None:
        """Why the stream gave up for good (``None`` while it runs): a
        :class:`polyfeed.errors.ConnectError` (the venue refused the WebSocket) or, on the user channel,
        an :class:`polyfeed.errors.AuthenticationError`. ``async for`` raises it after the events
        already queued."""
        return self._queue.error

    async def failed(self) -> BaseException:
        """Wait until the stream gives up for good, and return why (:attr:`error`): for programs that
        read ``books`` or use ``on_event`` rather than ``async for``, to end instead of waiting forever.

        >>> done, _ = await asyncio.wait([work, asyncio.ensure_future(stream.failed())],  # doctest: +SKIP
        ...                              return_when=asyncio.FIRST_COMPLETED)
        """
        return await self._queue.failed()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()
