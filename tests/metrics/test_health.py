"""check_health: what makes a stream unhealthy, and what does not."""

from __future__ import annotations

import asyncio

from polyfeed import MarketStream
from polyfeed.book import BookStatus
from polyfeed.metrics import StreamCollector, check_health
from polyfeed.session import SessionConfig
from polyfeed.sim import Simulator
from tests.waiting import BOUND_S, until


def test_a_stream_that_has_opened_no_connection_is_not_healthy() -> None:
    health = check_health(StreamCollector([MarketStream(["a"])]))
    assert not health.healthy
    assert health.connections_down == [{"stream": "market", "channel": "market", "connection": None}]
    assert health.as_json()["status"] == "unhealthy"


def test_nothing_followed_yet_is_not_healthy() -> None:
    """A command serves /healthz before it has resolved its markets into a stream: "no streams" must
    not read as "every book live" to a load balancer."""
    health = check_health(StreamCollector())
    assert not health.healthy and health.as_json()["status"] == "unhealthy"


def test_a_resolved_markets_closed_books_are_not_followed_and_leave_the_stream_healthy() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=9) as sim:
            sim.pause()
            config = SessionConfig(custom_feature_enabled=True)
            async with MarketStream(sim.exchange.asset_ids(), venue=sim.venue, config=config) as stream:
                collector = StreamCollector([stream])
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                market = sim.exchange.markets[0]
                sim.resolve_market(0)
                await until(
                    lambda: (
                        stream.books[market.yes].status is BookStatus.CLOSED
                        and stream.books[market.no].status is BookStatus.CLOSED
                    ),
                    "the resolution closes its books",
                )
                health = check_health(collector)
                assert health.healthy, health
                assert health.books_followed == 2
                assert health.books_by_status == {
                    "syncing": 0,
                    "live": 2,
                    "suspect": 0,
                    "stale": 0,
                    "closed": 2,
                }

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
