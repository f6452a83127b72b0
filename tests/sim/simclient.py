"""Client-side helpers shared by the local exchange's tests (not a test module)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

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


def quickstart_class_source() -> str:
    """Polymarket's quickstart client, from ../shared (never copied into the repo): everything above its
    ``if __name__ == "__main__":`` block."""
    path = Path(__file__).resolve().parents[3] / "shared/reference/polymarket-ws-quickstart.md"
    if not path.exists():
        pytest.skip("../shared/reference/polymarket-ws-quickstart.md not found: the quickstart test needs it")
    code = re.search(r"```python\n(.*?)```", path.read_text(), re.S)
    assert code is not None
    return code.group(1).split('if __name__ == "__main__":')[0]


HARNESS = """
import sys, threading
namespace = {}
exec(sys.argv[1], namespace)
client = namespace["WebSocketOrderBook"](namespace["MARKET_CHANNEL"], sys.argv[2], sys.argv[3].split(","),
                                         {"apiKey": "", "secret": "", "passphrase": ""}, None, True)
threading.Thread(target=client.run, daemon=True).start()
threading.Event().wait()
"""
