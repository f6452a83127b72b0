"""The stream over TLS against the local exchange serving its own certificate (trustme)."""

from __future__ import annotations

import asyncio
import ssl

import trustme

from polyfeed import MarketStream
from polyfeed.book import BookStatus
from polyfeed.sim import Simulator


def test_books_go_live_over_wss_and_https() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    async def main() -> None:
        async with Simulator(markets=2, seed=8, events_per_s=200, ssl_context=server_context) as sim:
            assert sim.ws_url.startswith("wss://") and sim.rest_url.startswith("https://")
            assets = sim.exchange.asset_ids()
            async with MarketStream(
                assets, ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url, ssl_context=client_context
            ) as stream:
                while not all(stream.books[a].status is BookStatus.LIVE for a in assets):
                    await asyncio.sleep(0.02)
                assert all(stream.books[a].checks.total_failed == 0 for a in assets)

    asyncio.run(asyncio.wait_for(main(), 60))
