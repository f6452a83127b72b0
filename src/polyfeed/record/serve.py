"""Serve a recording over Polymarket's own market-channel protocol, so that unmodified clients (the
quickstart's included) can be tested against a recorded day.

A client connects to ``/ws/market`` and subscribes as on the venue (``{"assets_ids": [...], "type":
"market"}``); it then receives, in recorded order and at ``speed`` times the recorded pace (``None``:
as fast as it reads), every recorded market frame that names one of its assets or their markets (a
trade print names one token of the two), byte for byte, from
the start of the recording (which holds the initial books) or from ``from_ns``. Text ``PING`` gets
``PONG``; in-place ``operation`` frames add or remove assets; a first frame that is not a subscription
gets the venue's 1008 close. When the recording ends the connection stays open (a quiet market) until
the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyfeed.errors import FrameDecodeError
from polyfeed.record.format import Channel, RecordKind
from polyfeed.record.reader import read_recording
from polyfeed.wire import decode_market

__all__ = ["RecordingServer"]

log = logging.getLogger(__name__)
_FRAME = int(RecordKind.FRAME)
_MARKET = int(Channel.MARKET)


class RecordingServer:
    """``async with RecordingServer(directory, port=0) as server: server.ws_url`` (``ws://host:port``).

    Args:
        directory: the recording.
        host: address to listen on (loopback by default).
        port: 0 picks a free port.
        speed: replay pace relative to the recording (``None`` or ``0``: as fast as possible).
        from_ns: start at this receive time (frames before it are skipped, initial books included).
        until_ns: stop after this receive time.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        from_ns: int | None = None,
        until_ns: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.speed = speed or None
        self.from_ns = from_ns
        self.until_ns = until_ns
        self.clients = 0
        self._runner: web.AppRunner | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def __aenter__(self) -> RecordingServer:
        read_recording(self.directory)  # a missing or unreadable recording fails here, not per client
        app = web.Application()
        app.router.add_get("/ws/market", self._market)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _market(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        first = await ws.receive()
        body = _json(first.data) if first.type == WSMsgType.TEXT else None
        if not isinstance(body, dict) or not isinstance(body.get("assets_ids"), list):
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"invalid subscription payload")
            return ws
        assets = {str(a).encode() for a in body["assets_ids"]}
        self.clients += 1
        pump = asyncio.create_task(self._pump(ws, assets))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                if message.data == "PING":
                    await ws.send_str("PONG")
                    continue
                operation = _json(message.data)
                if isinstance(operation, dict) and isinstance(operation.get("assets_ids"), list):
                    ids = {str(a).encode() for a in operation["assets_ids"]}
                    if operation.get("operation") == "unsubscribe":
                        assets -= ids
                    else:
                        assets |= ids
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return ws

    async def _pump(self, ws: web.WebSocketResponse, assets: set[bytes]) -> None:
        loop = asyncio.get_running_loop()
        start_wall = loop.time()
        start_ns: int | None = None
        sent = 0
        # A print names one token but concerns both of its market (the local exchange routes it to
        # both, spec 4.4): frames are matched by asset, or by the market of a subscribed asset.
        learned: set[bytes] = set()
        markets: set[bytes] = set()
        for record in read_recording(self.directory, from_ns=self.from_ns, until_ns=self.until_ns):
            if record.kind != _FRAME or record.channel != _MARKET:
                continue
            payload = record.payload
            if any(asset in payload for asset in assets):
                if len(learned) < len(assets):
                    self._learn_markets(payload, assets, learned, markets)
            elif not any(market in payload for market in markets):
                continue
            if self.speed is not None:
                if start_ns is None:
                    start_ns = record.recv_ns
                due = start_wall + (record.recv_ns - start_ns) / 1e9 / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if ws.closed:
                return
            await ws.send_str(payload.decode())
            sent += 1
            if sent % 256 == 0:
                await asyncio.sleep(0)  # let the reader answer PINGs during a fast replay
        log.info("recording served: %d frames", sent)

    @staticmethod
    def _learn_markets(payload: bytes, assets: set[bytes], learned: set[bytes], markets: set[bytes]) -> None:
        try:
            messages = decode_market(payload)
        except FrameDecodeError:
            return
        for message in messages:
            asset = getattr(message, "asset_id", "").encode()
            market = getattr(message, "market", "")
            if asset in assets and market:
                learned.add(asset)
                markets.add(market.encode())


def _json(data: Any) -> Any:
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, TypeError):
        return None
