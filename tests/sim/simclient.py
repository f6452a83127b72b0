"""Client-side helpers shared by the local exchange's tests (not a test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from polyfeed.wire import MarketMessage, Pong, decode_market

BOUND_S = 30  # an upper bound on waiting for the server, so a broken server fails instead of hanging


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), BOUND_S))


async def read_until_pong(
    ws: aiohttp.ClientWebSocketResponse, handle: Callable[[MarketMessage], None]
) -> None:
    """Send PING and hand every message on to ``handle`` until its PONG: everything the server queued
    before the PING has then arrived (one writer a connection, in order)."""
    await ws.send_str("PING")
    async for frame in ws:
        for message in decode_market(frame.data):
            if isinstance(message, Pong):
                return
            handle(message)
