"""The background jobs of record and publish: waiting for the first of the job's end and an event."""

from __future__ import annotations

import asyncio

import pytest

from polyfeed.cli.jobs import first


def test_first_is_true_once_the_wait_is_over_false_at_its_timeout_and_raises_what_ended_the_job() -> None:
    async def main() -> None:
        forever = asyncio.ensure_future(asyncio.Event().wait())
        ready = asyncio.Event()
        ready.set()
        assert await first(forever, ready.wait(), 5.0)
        assert not await first(forever, asyncio.Event().wait(), 0.01)
        forever.cancel()

        async def fails() -> None:
            raise RuntimeError("the venue refused")

        with pytest.raises(RuntimeError, match="the venue refused"):
            await first(asyncio.ensure_future(fails()), asyncio.Event().wait(), 0)
        done = asyncio.ensure_future(asyncio.sleep(0))
        assert await first(done, asyncio.Event().wait(), 0), "a job that ends ends the wait"

    asyncio.run(main())
