"""MarketPool against the local exchange: assets sharded ``per_connection`` a connection, connections
opened paced, new assets filling the connections with room first, no asset ever subscribed twice, and
unsubscribing in place."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from polyfeed.book import BookStatus
from polyfeed.errors import ConnectError, SubscriptionLimitError
from polyfeed.net import VENUE_ASSET_LIMIT, Backoff, MarketPool
from polyfeed.record.format import RecordKind
from polyfeed.session import Event
from polyfeed.sim import Simulator
from tests.waiting import BOUND_S, until

FAST = Backoff(initial_s=0.01, max_s=0.05)
_SENT = int(RecordKind.SENT)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))


class SentFrames:
    """A recorder that keeps what the connections sent: (connection id, the frame as JSON)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, dict[str, Any]]] = []

    def write(self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes) -> None:
        if kind == _SENT:
            self.frames.append((connection, json.loads(payload)))

    def tick(self, now_ns: int) -> None:
        pass

    def subscribed(self) -> list[tuple[int, str]]:
        """(connection, asset) for each asset in each subscription or ``subscribe`` operation sent."""
        return [
            (connection, asset)
            for connection, frame in self.frames
            if frame.get("operation", "subscribe") == "subscribe"
            for asset in frame.get("assets_ids", [])
        ]

    def unsubscribed(self) -> list[tuple[int, list[str]]]:
        return [(c, f["assets_ids"]) for c, f in self.frames if f.get("operation") == "unsubscribe"]


def pool_for(sim: Simulator, emit: Callable[[list[Event]], None], **kwargs: Any) -> MarketPool:
    return MarketPool(sim.ws_url + "/ws/market", emit, http=None, backoff=FAST, **kwargs)


def carried(pool: MarketPool) -> list[list[str]]:
    """Each connection's assets, in connection order."""
    return [sorted(c.session.assets) for c in pool.connections]


def served(sim: Simulator) -> list[list[str]]:
    """What the exchange sends each of its connections, from its side."""
    return sorted(sorted(c.assets) for c in sim._connections)


def live(pool: MarketPool, assets: list[str]) -> Callable[[], bool]:
    return lambda: all(a in pool.books and pool.books[a].status is BookStatus.LIVE for a in assets)


@pytest.mark.parametrize("per_connection", [0, VENUE_ASSET_LIMIT + 1])
def test_more_assets_a_connection_than_the_venue_serves_are_refused(per_connection: int) -> None:
    with pytest.raises(SubscriptionLimitError, match="per_connection must be 1-500"):
        MarketPool("ws://127.0.0.1:1/ws/market", lambda _: None, http=None, per_connection=per_connection)


def test_assets_are_sharded_per_connection_and_every_book_goes_live() -> None:
    async def main() -> None:
        async with Simulator(markets=3, seed=5, events_per_s=50) as sim:
            assets = sim.exchange.asset_ids()[:5]
            batches: list[list[Event]] = []
            pool = pool_for(sim, batches.append, per_connection=2, connect_interval_s=0)
            try:
                assert pool.subscribe(assets) == assets
                assert carried(pool) == [sorted(assets[0:2]), sorted(assets[2:4]), [assets[4]]]
                assert [c.session.connection_id for c in pool.connections] == [1, 2, 3]
                assert pool.assets == set(assets) and set(pool.books) == set(assets)
                await until(live(pool, assets), "every book live")
                await until(lambda: len(sim._connections) == 3, "three connections at the exchange")
                assert served(sim) == sorted(carried(pool)), "each asset on exactly one connection"
                assert {e.connection_id for batch in batches for e in batch} == {1, 2, 3}
            finally:
                await pool.close()
            assert all(r.done() for r in pool._runners)

    run(main)


def test_connections_open_paced() -> None:
    """An hour between connects: the first connection runs, the next wait their turn."""

    async def main() -> None:
        async with Simulator(markets=2, seed=6, events_per_s=50) as sim:
            assets = sim.exchange.asset_ids()[:3]
            pool = pool_for(sim, lambda _: None, per_connection=1, connect_interval_s=3600)
            try:
                pool.subscribe(assets)
                assert len(pool.connections) == 3
                await until(live(pool, assets[:1]), "the first connection's book live")
                assert len(pool._runners) == 1
                assert [c.connects for c in pool.connections] == [1, 0, 0]
                assert served(sim) == [[assets[0]]]
                assert all(pool.books[a].status is not BookStatus.LIVE for a in assets[1:])
            finally:
                await pool.close()

    run(main)


def test_new_assets_fill_the_connections_with_room_before_a_new_one_opens() -> None:
    async def main() -> None:
        async with Simulator(markets=4, seed=7, events_per_s=50) as sim:
            assets = sim.exchange.asset_ids()[:7]
            sent = SentFrames()
            pool = pool_for(sim, lambda _: None, per_connection=3, connect_interval_s=0, recorder=sent)
            try:
                pool.subscribe(assets[:2])
                await until(live(pool, assets[:2]), "the first two books live")
                assert pool.subscribe(assets[2:7]) == assets[2:7]
                assert carried(pool) == [sorted(assets[:3]), sorted(assets[3:6]), [assets[6]]]
                await until(live(pool, assets), "all seven books live")
                await until(lambda: served(sim) == sorted(carried(pool)), "the exchange serves the same")
                assert assets[2] in pool.connections[0].session.assets
                # the third asset joined the open connection in place: an operation, not a new connection
                assert (1, {"operation": "subscribe", "assets_ids": [assets[2]], "initial_dump": True}) in [
                    (c, f) for c, f in sent.frames if "operation" in f
                ]
            finally:
                await pool.close()

    run(main)


def test_an_asset_is_never_subscribed_twice() -> None:
    async def main() -> None:
        async with Simulator(markets=3, seed=8, events_per_s=50) as sim:
            a, b, c, d = sim.exchange.asset_ids()[:4]
            sent = SentFrames()
            pool = pool_for(sim, lambda _: None, per_connection=2, connect_interval_s=0, recorder=sent)
            try:
                assert pool.subscribe([a, b, a, b]) == [a, b], "duplicates in one call count once"
                await until(live(pool, [a, b]), "the first books live")
                assert pool.subscribe([b, c, a]) == [c], "only what no connection carries yet"
                assert pool.subscribe([a, b, c]) == []
                assert pool.subscribe([c, d, d]) == [d]
                await until(live(pool, [a, b, c, d]), "all four books live")
                assert [conn.connects for conn in pool.connections] == [1, 1], "no reconnect to resend"
                subscribed = sent.subscribed()
                assert sorted(asset for _, asset in subscribed) == sorted([a, b, c, d]), subscribed
                assert carried(pool) == [sorted([a, b]), sorted([c, d])]
                assert served(sim) == sorted(carried(pool))
            finally:
                await pool.close()

    run(main)


def test_unsubscribe_leaves_in_place_and_makes_room() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=9, events_per_s=50) as sim:
            a, b, c, d = sim.exchange.asset_ids()[:4]
            sent = SentFrames()
            pool = pool_for(sim, lambda _: None, per_connection=2, connect_interval_s=0, recorder=sent)
            try:
                pool.subscribe([a, b, c])
                await until(live(pool, [a, b, c]), "three books live")
                book_a = pool.books[a]
                pool.unsubscribe([a, "not subscribed anywhere"])
                assert pool.assets == {b, c}
                assert a not in pool.books and book_a.status is BookStatus.CLOSED
                assert sent.unsubscribed() == [(1, [a])], "one frame, from the connection that carried it"
                await until(lambda: a not in {x for s in served(sim) for x in s}, "the exchange stops a")
                assert pool.subscribe([d]) == [d]
                assert carried(pool) == [sorted([b, d]), [c]], "d takes the room a left"
                await until(live(pool, [b, c, d]), "d live on the first connection")
                pool.unsubscribe([])
                assert len(sent.unsubscribed()) == 1, "nothing to leave, nothing sent"
            finally:
                await pool.close()

    run(main)


def a_closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_connection_that_gives_up_is_reported() -> None:
    async def main() -> None:
        errors: list[BaseException] = []
        pool = MarketPool(
            f"ws://127.0.0.1:{a_closed_port()}/ws/market",
            lambda _: None,
            http=None,
            backoff=FAST,
            max_connect_attempts=2,
            on_error=errors.append,
        )
        try:
            pool.subscribe(["1234"])
            await until(lambda: bool(errors), "the pool reports the connection that gave up")
        finally:
            await pool.close()
        (error,) = errors
        assert isinstance(error, ConnectError)
        assert "connection refused (2 tries, never connected)" in str(error)

    run(main)
