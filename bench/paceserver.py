"""A paced market-channel server over TLS, for bench_cpu.py (run in its own process, loopback only).

It prepares, per token, a fixed recorded stream from a one-market local exchange (so every hash in it
verifies), then serves ``wss://.../ws/market``: on a connection's subscription it sends that token's
initial dump and then its stream at ``RATE`` messages a second, in ticks of 20 ms, answering ``PING``.
``POST /books`` answers the books as they were at the start of the stream (the client's metadata).

    python paceserver.py CERT KEY MARKETS RATE SECONDS
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound, rest_book

TICK_S = 0.02


def prepare(markets: int, frames_per_token: int) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    streams: dict[str, list[str]] = {}
    rest: dict[str, dict[str, Any]] = {}
    for seed in range(1, markets + 1):
        exchange = Exchange(markets=1, seed=seed)
        tokens = exchange.asset_ids()
        frames: list[str] = []
        for token in tokens:
            rest[token] = rest_book(exchange.book(token))
        initial = {
            t: msgspec.json.encode([book_frame(exchange.book(t, initial=True), initial=True)]) for t in tokens
        }
        while len(frames) < frames_per_token:
            frames.extend(encode_outbound(o) for o in exchange.step() if o.channel == "market")
        for token in tokens:  # both tokens see every message of their market (mirrored entries)
            streams[token] = [initial[token].decode(), *frames]
    return streams, rest


async def main() -> None:
    cert, key, markets, rate, seconds = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    streams, rest = prepare(markets, int(rate * seconds) + 1)

    async def market(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        first = await ws.receive()
        assets = msgspec.json.decode(first.data).get("assets_ids", []) if first.type == WSMsgType.TEXT else []
        frames = [f for a in assets for f in streams.get(a, [])[:1]]
        for f in frames:
            await ws.send_str(f)
        body = [f for a in assets for f in streams.get(a, [])[1:]]

        async def pong() -> None:
            async for message in ws:
                if message.type == WSMsgType.TEXT and message.data == "PING":
                    await ws.send_str("PONG")

        reader = asyncio.create_task(pong())
        start, sent = time.monotonic(), 0
        try:
            while sent < len(body) and not ws.closed:
                await asyncio.sleep(TICK_S)
                due = min(len(body), int((time.monotonic() - start) * rate))
                for f in body[sent:due]:
                    await ws.send_str(f)
                sent = due
            await reader
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
        return ws

    async def books(request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read())
        return web.json_response([rest[i["token_id"]] for i in body if i.get("token_id") in rest])

    app = web.Application()
    app.router.add_get("/ws/market", market)
    app.router.add_post("/books", books)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    assert site._server is not None
    print(site._server.sockets[0].getsockname()[1], " ".join(streams), flush=True)  # type: ignore[attr-defined]
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
