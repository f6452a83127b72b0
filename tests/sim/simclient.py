"""Client-side helpers shared by the local exchange's tests (not a test module)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from polyfeed.book import OrderBook
from polyfeed.wire import Book, MarketMessage, Pong, PriceChange, decode_market

BOUND_S = 120  # an upper bound on a scenario, so a broken server fails instead of hanging (generous: a
# loaded machine runs a scenario several times slower, and a bound is not a timing)


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


async def quickstart_books(
    ws_url: str, assets: list[str], enough: Callable[[dict[str, OrderBook], int, int], bool]
) -> dict[str, OrderBook]:
    """Run Polymarket's quickstart client, unchanged, against ``ws_url`` for ``assets``; book every message
    it prints until ``enough(books, lines, price_changes)``; returns the books (kept by polyfeed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        "-c",
        HARNESS,
        quickstart_class_source(),
        ws_url,
        ",".join(assets),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    books = {a: OrderBook(a) for a in assets}
    lines = changes = 0
    try:
        assert process.stdout is not None
        while not enough(books, lines, changes):
            line = await process.stdout.readline()  # the quickstart prints each frame on a line
            lines += 1
            assert line, (await process.stderr.read()).decode() if process.stderr else "no output"
            for message in decode_market(line.strip()):
                changes += isinstance(message, PriceChange)
                for book in books.values():
                    if not isinstance(message, Book) or message.asset_id == book.asset_id:
                        book.apply(message)
    finally:
        process.kill()
        await process.wait()
    return books
