"""SyncMarketStream: the stream from synchronous code, against the local exchange in another thread."""

from __future__ import annotations

import asyncio
import threading

from polyfeed import SyncMarketStream
from polyfeed.book import BookStatus
from polyfeed.session import BookUpdated
from polyfeed.sim import Simulator


def test_synchronous_iteration_sees_live_books() -> None:
    ready = threading.Event()
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    urls: dict[str, object] = {}

    async def serve() -> None:
        async with Simulator(markets=2, seed=6, events_per_s=300) as sim:
            urls.update(ws=sim.ws_url + "/ws/market", rest=sim.rest_url, assets=sim.exchange.asset_ids())
            done = asyncio.Event()
            stop.append((asyncio.get_running_loop(), done))
            ready.set()
            await done.wait()

    server = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    server.start()
    assert ready.wait(30)
    assets = urls["assets"]
    assert isinstance(assets, list)
    with SyncMarketStream(assets, ws_url=urls["ws"], rest_url=urls["rest"]) as stream:
        updated = set()
        for event in stream:
            if isinstance(event, BookUpdated):
                updated.add(event.asset_id)
            if updated == set(assets):
                break
        assert all(stream.books[a].status is BookStatus.LIVE for a in assets)
        assert stream.books[assets[0]].best_bid is not None
    loop, done = stop[0]
    loop.call_soon_threadsafe(done.set)
    server.join(30)
    assert not server.is_alive()
