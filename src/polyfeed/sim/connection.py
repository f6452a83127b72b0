"""One client connection of the local exchange, and its writer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from polyfeed.errors import FrameDecodeError
from polyfeed.wire import decode_json

__all__ = ["Connection", "parse_json", "serve_requests", "strings", "write_loop"]


@dataclass(eq=False)
class Connection:
    """A market or user connection: what it subscribed to, its outgoing queue, its injected faults."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    assets: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)
    custom_features: bool = False
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    zombie: bool = False
    delay_left: int = 0
    delay_ms: int = 0
    sending: bool = False
    """A frame taken from the queue is on its way (a slow reader holds its send)."""

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing on its way: every frame given to it has been written."""
        return not self.sending and self.queue.empty()


async def write_loop(conn: Connection, on_sent: Callable[[], None]) -> None:
    """One writer a connection, so that a slow client never holds up the order flow or the others."""
    ws = conn.ws
    while True:
        text = await conn.queue.get()
        if text is None or ws.closed:
            return
        conn.sending = True
        try:
            if conn.delay_left:
                conn.delay_left -= 1
                await asyncio.sleep(conn.delay_ms / 1000)
            try:
                await ws.send_str(text)
            except ConnectionError:
                return
        finally:
            conn.sending = False
        on_sent()


async def serve_requests(
    conn: Connection, on_operation: Callable[[str, dict[str, Any]], Awaitable[None]]
) -> None:
    """Answer what a client sends after its subscription, the same on both channels (spec 1.3, 2):
    text ``PING`` -> ``PONG``; another ``type`` frame -> ``INVALID OPERATION``; ``operation`` frames go
    to ``on_operation`` and are never acknowledged; anything else is ignored."""
    async for msg in conn.ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        if msg.data in ("PING", b"PING"):
            conn.queue.put_nowait("PONG")
            continue
        body = parse_json(msg.data)
        if not isinstance(body, dict):
            continue
        if "type" in body:
            conn.queue.put_nowait("INVALID OPERATION")
        elif body.get("operation") in ("subscribe", "unsubscribe"):
            await on_operation(body["operation"], body)


def strings(value: object) -> list[str]:
    """The strings of a JSON list (ids sent by a client), ignoring anything else."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def parse_json(data: object) -> object:
    """Decoded JSON, or ``None`` for anything that is not JSON text."""
    if not isinstance(data, str | bytes):
        return None
    try:
        return decode_json(data)
    except FrameDecodeError:  # not JSON, or nested deeper than any request (polyfeed.wire.decode_json)
        return None
