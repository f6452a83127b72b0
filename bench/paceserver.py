"""A paced market-channel server over TLS, for bench_cpu.py (run in its own process, loopback only).

It prepares, per token, a fixed recorded stream from a one-market local exchange (so every hash in it
verifies): what the venue sends a connection subscribed to that token alone. Then it serves
``wss://.../ws/market``: on a connection's subscription it sends that token's initial dump and then its
stream at ``RATE`` messages a second, in ticks of 20 ms, answering ``PING``.
``POST /books`` answers the books as they were at the start of the stream (the client's metadata).
Its first line out is the port and the tokens; its second, how many of the frames prepared name the
token of their connection, and how many there are.

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

import baseline
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound, rest_book

TICK_S = 0.02


def prepare(markets: int, frames_per_token: int) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Per token, its initial book and then ``frames_per_token`` frames of its market's flow that the
    venue would send a connection subscribed to that token alone: the messages naming it (both tokens
    of a market hear every ``price_change``, with its mirrored entries, and every print; only a token's
    own ``book`` and ``tick_size_change`` reach it, spec 11.10). The markets never resolve."""
    streams: dict[str, list[str]] = {}
    rest: dict[str, dict[str, Any]] = {}
    for seed in range(1, markets + 1):
        exchange = Exchange(markets=1, seed=seed, median_lifetime_s=None)
        tokens = exchange.asset_ids()
        for token in tokens:
            rest[token] = rest_book(exchange.book(token))
            streams[token] = [
                msgspec.json.encode([book_frame(exchange.book(token, initial=True), initial=True)]).decode()
            ]
        while min(len(streams[t]) for t in tokens) <= frames_per_token:
            for out in exchange.step():
                if out.channel == "market":
                    text = encode_outbound(out)
                    for token in tokens:
                        if token in out.assets:
                            streams[token].append(text)
    return streams, rest


def concerning(streams: dict[str, list[str]]) -> tuple[int, int]:
    """(frames concerning the book of the token whose connection they are sent on, frames)."""
    counts = [baseline.concerning(stream, [token]) for token, stream in streams.items()]
    return sum(hits for hits, _ in counts), sum(len(stream) for stream in streams.values())


async def main() -> None:
    cert, key, markets, rate, seconds = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    streams, rest = prepare(markets, int(rate * seconds) + 1)
    in_books, frames = concerning(streams)

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
        found = [rest[i["token_id"]] for i in body if i.get("token_id") in rest]
        return web.Response(
            body=msgspec.json.encode(found), content_type="application/json"
        )  # structs inside

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
    print(in_books, frames, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
