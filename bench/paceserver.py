"""A paced market-channel server over TLS, for bench_cpu.py (run in its own process, loopback only).

It prepares, per token, a fixed recorded stream from a one-market local exchange (so every hash in it
verifies): what the venue sends a connection subscribed to that token alone, as the groups of frames
each event of the exchange produces (one timestamp: a trade burst, its post-trade book and its print),
and the token's book every ``CHECKPOINT`` events. Then it serves ``wss://.../ws/market`` as a consistent
venue would, one token a connection (the bench's ``per_connection=1``):

- a subscription gets the token's book at the first checkpoint not before anything already sent for that
  token, then the groups after that checkpoint, paced at ``RATE`` messages a second in ticks of 20 ms.
  So a reconnect (or the bench's second run) never goes back in the venue's time: restarting the
  recording from its first book would send a book older than the one the client holds and then replay
  changes it has seen (a ``tick_size_change`` it already applied is then ignored as a duplicate, and the
  book hashes off the grid);
- a group is written whole, with no await between its frames (never split across ticks, never waiting
  for the transport to drain in its middle: flow control waits between groups): the venue sends one
  event's messages together, while a burst cut in the middle reached the client 0.3-2 s apart on a
  loaded machine, where the client closes a burst that has been quiet ``settle_after_s`` (0.25 s) by the
  clock and checks the transiently crossed middle of it (false TOP_OF_BOOK, CROSSED and HASH failures,
  docs/book-checks.md).

``PING`` is answered. ``POST /books`` answers each token's book at its latest checkpoint sent (the
client's metadata). Its first line out is the port and the tokens; its second, how many of the frames
prepared name the token of their connection, and how many there are.

    python paceserver.py CERT KEY MARKETS RATE SECONDS
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

import baseline
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound, rest_book

TICK_S = 0.02
WRITE_BUFFER = 256 * 1024
"""Bytes a connection's transport may hold unsent before the next group waits for the client."""
CHECKPOINT = 100
"""Events of a market between two of its tokens' books kept for a subscription to start from."""


@dataclass
class TokenStream:
    """One token's recorded stream: groups of frames (one event each), and its book at checkpoints."""

    groups: list[list[str]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    """Group indexes: the book at ``checkpoints[i]`` is the book after the groups before that index."""
    books: list[str] = field(default_factory=list)
    """The initial-dump frame of each checkpoint's book."""
    rest: list[dict[str, Any]] = field(default_factory=list)
    """The REST ``/book`` shape of each checkpoint's book."""
    sent: int = 0
    """How far the groups have been sent on any connection: a subscription starts at this point or later."""

    def frames(self) -> list[str]:
        return [f for group in self.groups for f in group]

    def start(self) -> int:
        """The checkpoint a new subscription starts from: the first not before anything sent."""
        return min(bisect_left(self.checkpoints, self.sent), len(self.checkpoints) - 1)


def _checkpoint(exchange: Exchange, tokens: list[str], streams: dict[str, TokenStream]) -> None:
    """Keep each token's book as it is now (once a point in its stream)."""
    for token in tokens:
        stream = streams[token]
        if stream.checkpoints and stream.checkpoints[-1] == len(stream.groups):
            continue
        stream.checkpoints.append(len(stream.groups))
        book = exchange.book(token, initial=True)
        stream.books.append(msgspec.json.encode([book_frame(book, initial=True)]).decode())
        stream.rest.append(rest_book(exchange.book(token)))


def prepare(markets: int, frames_per_token: int) -> dict[str, TokenStream]:
    """Per token, ``frames_per_token`` frames of its market's flow that the venue would send a connection
    subscribed to that token alone, grouped by the event that produced them: the messages naming it (both
    tokens of a market hear every ``price_change``, with its mirrored entries, and every print; only a
    token's own ``book`` and ``tick_size_change`` reach it, spec 11.10); and its book every
    ``CHECKPOINT`` events, the first before any event and the last after the last. The markets never
    resolve."""
    streams: dict[str, TokenStream] = {}
    for seed in range(1, markets + 1):
        exchange = Exchange(markets=1, seed=seed, median_lifetime_s=None)
        tokens = exchange.asset_ids()
        for token in tokens:
            streams[token] = TokenStream()

        _checkpoint(exchange, tokens, streams)
        events = 0
        counts = dict.fromkeys(tokens, 0)
        while min(counts.values()) < frames_per_token:
            outs = [out for out in exchange.step() if out.channel == "market"]
            for token in tokens:
                group = [encode_outbound(out) for out in outs if token in out.assets]
                if group:
                    streams[token].groups.append(group)
                    counts[token] += len(group)
            events += 1
            if events % CHECKPOINT == 0:
                _checkpoint(exchange, tokens, streams)
        _checkpoint(exchange, tokens, streams)
    return streams


def concerning(streams: dict[str, TokenStream]) -> tuple[int, int]:
    """(frames concerning the book of the token whose connection they are sent on, frames)."""
    counts = [
        baseline.concerning([stream.books[0], *stream.frames()], [token]) for token, stream in streams.items()
    ]
    return sum(hits for hits, _ in counts), sum(total for _, total in counts)


async def main() -> None:
    cert, key, markets, rate, seconds = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    streams = prepare(markets, int(rate * seconds) + 1)
    in_books, frames = concerning(streams)

    async def market(request: web.Request) -> web.WebSocketResponse:
        # No writer limit: aiohttp would otherwise wait for the transport to drain in the middle of a group
        # (every 64 KiB written while the client is behind), and a server starved of CPU (100 connections,
        # other processes) resumes seconds later. Flow control is per group instead, below.
        ws = web.WebSocketResponse(autoping=True, writer_limit=2**62)
        await ws.prepare(request)
        transport = request.transport
        first = await ws.receive()
        assets = msgspec.json.decode(first.data).get("assets_ids", []) if first.type == WSMsgType.TEXT else []
        served = [streams[a] for a in assets if a in streams]
        starts = [stream.start() for stream in served]
        for stream, start in zip(served, starts, strict=True):
            await ws.send_str(stream.books[start])
        # each token from its checkpoint on, paced by frames but sent a whole group (one event) at a time
        cursors = [stream.checkpoints[start] for stream, start in zip(served, starts, strict=True)]

        async def pong() -> None:
            async for message in ws:
                if message.type == WSMsgType.TEXT and message.data == "PING":
                    await ws.send_str("PONG")

        reader = asyncio.create_task(pong())
        begun, sent = time.monotonic(), 0
        try:
            while not ws.closed and any(
                c < len(stream.groups) for c, stream in zip(cursors, served, strict=True)
            ):
                await asyncio.sleep(TICK_S)
                due = int((time.monotonic() - begun) * rate)
                while sent < due and not ws.closed:
                    # a group of the token furthest behind (only one, as the bench subscribes)
                    i = min(
                        (i for i in range(len(served)) if cursors[i] < len(served[i].groups)),
                        key=lambda i: cursors[i] - served[i].checkpoints[starts[i]],
                        default=None,
                    )
                    if i is None:
                        break
                    while transport is not None and transport.get_write_buffer_size() > WRITE_BUFFER:
                        await asyncio.sleep(TICK_S)  # the client is behind: wait, between two groups
                    stream = served[i]
                    group = stream.groups[cursors[i]]
                    for f in group:  # no await suspends between them (no writer limit)
                        await ws.send_str(f)
                    sent += len(group)
                    cursors[i] += 1
                    stream.sent = max(stream.sent, cursors[i])
                    if sent % 64 < len(group):
                        await asyncio.sleep(0)  # a connection catching up lets the others send too
            await reader
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
        return ws

    async def books(request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read())
        found = []
        for item in body:
            stream = streams.get(item.get("token_id"))
            if stream is not None:
                found.append(stream.rest[stream.start()])
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
