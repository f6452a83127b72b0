"""EventQueue: every event to the callback, the newest ``max_queue`` to ``async for`` (the oldest dropped,
counted and logged), callback errors counted, and a failure that ends the iteration after what is queued."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from polyfeed.session import BookUpdated, Event
from polyfeed.stream.queue import EventQueue, QueuedStream

T = TypeVar("T")
BOUND_S = 60


def run(main: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(main, BOUND_S))


def updated(seq: int) -> BookUpdated:
    return BookUpdated(recv_ns=seq, seq=seq, connection_id=1, asset_id="7")


def events(first: int, last: int) -> list[Event]:
    return [updated(seq) for seq in range(first, last + 1)]


class GaveUpError(Exception):
    """What a stream fails with (a ConnectError, an AuthenticationError: any exception does)."""


def drops_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropped so far" in r.getMessage()]


def test_the_callback_sees_every_event_and_the_queue_gives_them_in_order() -> None:
    seen: list[Event] = []
    queue = EventQueue(seen.append, max_queue=10)
    queue.emit(events(1, 3))
    queue.emit([])
    queue.emit(events(4, 5))
    assert [e.seq for e in seen] == [1, 2, 3, 4, 5]

    async def take(n: int) -> list[int]:
        return [(await queue.get()).seq for _ in range(n)]

    assert run(take(5)) == [1, 2, 3, 4, 5]
    assert queue.dropped == 0 and queue.callback_errors == 0


def test_beyond_max_queue_the_oldest_are_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []
    queue = EventQueue(seen.append, max_queue=3)
    with caplog.at_level(logging.WARNING, logger="polyfeed.stream"):
        queue.emit(events(1, 5))
        queue.emit(events(6, 6))
    assert [e.seq for e in queue.events] == [4, 5, 6], "the newest three are kept"
    assert queue.dropped == 3
    assert len(seen) == 6, "the callback is never the one that loses events"
    assert drops_logged(caplog) == [
        "2 events dropped so far: the consumer is slower than the stream (max_queue=3)"
    ], "the first drop is logged, not every one after it"


def test_drops_are_logged_again_each_100000(caplog: pytest.LogCaptureFixture) -> None:
    queue = EventQueue(None, max_queue=1)
    one = updated(1)
    with caplog.at_level(logging.WARNING, logger="polyfeed.stream"):
        queue.emit([one, one])  # 1 dropped: logged
        queue.emit([one] * 99_998)  # 99,999 in all: not logged again
        queue.emit([one])  # 100,000: logged
        queue.emit([one] * 50_000)  # 150,000: not
        queue.emit([one] * 60_000)  # 210,000: past 200,000, logged
    assert queue.dropped == 210_000
    assert [m.split(" ")[0] for m in drops_logged(caplog)] == ["1", "100000", "210000"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_a_callback_that_raises_is_counted_and_logged_and_the_events_still_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def on_event(event: Event) -> None:
        if event.seq % 2 == 0:
            raise ValueError(f"consumer bug at {event.seq}")
        seen.append(event.seq)

    queue = EventQueue(on_event, max_queue=10)
    with caplog.at_level(logging.ERROR, logger="polyfeed.stream"):
        queue.emit(events(1, 5))
    assert seen == [1, 3, 5], "the events after a failing one still reach the callback"
    assert queue.callback_errors == 2
    assert [e.seq for e in queue.events] == [1, 2, 3, 4, 5]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["on_event raised on BookUpdated (the stream goes on)"] * 2
    assert all(r.exc_info is not None and "consumer bug" in str(r.exc_info[1]) for r in errors)


def test_max_queue_0_keeps_nothing_and_says_so_to_async_for(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []
    queue = EventQueue(seen.append, max_queue=0)
    with caplog.at_level(logging.WARNING, logger="polyfeed.stream"):
        queue.emit(events(1, 1000))
    assert len(seen) == 1000
    assert not queue.events and queue.dropped == 0, "nothing kept is nothing dropped"
    assert drops_logged(caplog) == []

    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"keeps no events \(max_queue=0\)"):
            await queue.get()

    run(main())


def test_a_waiting_consumer_wakes_for_the_next_events() -> None:
    async def main() -> list[int]:
        queue = EventQueue(None, max_queue=10)
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        assert not getter.done()
        queue.emit(events(1, 2))
        first = await getter
        second = await queue.get()
        return [first.seq, second.seq]

    assert run(main()) == [1, 2]


def test_a_cancelled_wait_leaves_the_queue_usable() -> None:
    async def main() -> int:
        queue = EventQueue(None, max_queue=10)
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        queue.emit(events(1, 1))
        return (await queue.get()).seq

    assert run(main()) == 1


def test_fail_ends_the_iteration_after_the_queued_events() -> None:
    error = GaveUpError("the venue refused")

    async def main() -> None:
        queue = EventQueue(None, max_queue=10)
        assert queue.error is None
        queue.emit(events(1, 2))
        queue.fail(error)
        queue.fail(GaveUpError("later"))  # the first error stays
        assert queue.error is error
        assert [(await queue.get()).seq, (await queue.get()).seq] == [1, 2]
        with pytest.raises(GaveUpError) as raised:
            await queue.get()
        assert raised.value is error
        with pytest.raises(GaveUpError):
            await queue.get()

    run(main())


def test_fail_answers_every_failed_waiter_even_where_nothing_is_kept() -> None:
    error = GaveUpError("the venue refused")

    async def main() -> None:
        queue = EventQueue(None, max_queue=0)  # failed() serves streams read by callback or state
        waiters = [asyncio.create_task(queue.failed()) for _ in range(2)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        queue.fail(error)
        assert await asyncio.gather(*waiters) == [error, error]
        assert await queue.failed() is error, "after the failure, failed() answers at once"
        with pytest.raises(GaveUpError):  # the error, not "keeps no events"
            await queue.get()

    run(main())


def test_a_waiting_consumer_is_woken_by_fail() -> None:
    error = GaveUpError("the venue refused")

    async def main() -> None:
        queue = EventQueue(None, max_queue=10)
        getter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.fail(error)
        with pytest.raises(GaveUpError):
            await getter

    run(main())


class _Stream(QueuedStream):
    def __init__(self, queue: EventQueue) -> None:
        self._queue = queue


def test_a_queued_stream_iterates_its_queue_and_shows_its_counters() -> None:
    error = GaveUpError("the venue refused")

    def on_event(event: Event) -> None:
        if event.seq == 1:
            raise ValueError("consumer bug")

    queue = EventQueue(on_event, max_queue=2)
    stream = _Stream(queue)
    queue.emit(events(1, 3))
    assert (stream.events_dropped, stream.callback_errors, stream.error) == (1, 1, None)

    async def main() -> list[int]:
        queue.fail(error)
        assert await stream.failed() is error and stream.error is error
        seqs: list[int] = []

        async def read() -> None:
            async for event in stream:
                seqs.append(event.seq)

        with pytest.raises(GaveUpError):
            await read()
        return seqs

    assert run(main()) == [2, 3]
