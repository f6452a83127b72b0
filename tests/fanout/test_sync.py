"""SyncNatsMarketStream: the fan-out's stream for synchronous code, against a real nats-server."""

from __future__ import annotations

import asyncio
import time

from polyfeed.book import BookStatus
from polyfeed.fanout import SyncNatsMarketStream
from polyfeed.session import BookUpdated, Event
from polyfeed.sim import Simulator
from tests.fanout.test_consumer import collecting, run
from tests.natsserver import NatsServer
from tests.waiting import BOUND_S, until


def test_a_synchronous_reader_iterates_the_fan_outs_events_until_every_book_is_live(
    nats_server: NatsServer,
) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=31, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, _):
                await until(lambda: all(b.status is BookStatus.LIVE for b in market.books.values()), "live")

                def read() -> list[Event]:
                    seen: list[Event] = []
                    updated: set[str] = set()
                    deadline = time.monotonic() + BOUND_S
                    with SyncNatsMarketStream(nats_server.url, assets) as stream:
                        while True:
                            event = stream.get(timeout=BOUND_S)  # queue.Empty fails the test
                            states = {a[:6]: (b.status, b.status_reason) for a, b in stream.books.items()}
                            assert time.monotonic() < deadline, (updated, states)
                            seen.append(event)
                            if type(event) is BookUpdated:
                                updated.add(event.asset_id)
                            books = stream.books
                            if updated == set(assets) and all(
                                b.status is BookStatus.LIVE for b in books.values()
                            ):
                                return seen

                events = await asyncio.to_thread(read)
                assert {e.asset_id for e in events if type(e) is BookUpdated} == set(assets)

    run(main)
