"""Serve a recording as the venue: Polymarket's market channel and its book REST calls, so that
unmodified clients (the quickstart's, poly-websockets, polyfeed's own ``MarketStream``) can be tested
against a recorded day.

**One shared timeline.** The server plays the recording once, in recorded order, at ``speed`` times the
recorded pace (``None``: as fast as the slowest subscriber reads), like the venue's single "now". It
starts at the first subscription (at ``from_ns``, or the recording's start) and moves only while some
connection is subscribed to at least one token; when nobody listens it waits where it is, so a client
that reconnects resumes where it left, as on the venue. Every market frame is applied to the
timeline's books (:class:`polyfeed.replay.timeline_books.TimelineBooks`), whoever it is sent to.

**WebSocket** (``/ws/market``, spec 1-3, 12):

- The first frame, text or binary (UTF-8), must be the subscription ``{"type": "market", "assets_ids":
  [...]}`` (an empty list is accepted: poly-websockets adds its assets with ``operation`` frames);
  ``PING`` or anything else gets close 1008 "invalid subscription payload", and a connection that sends
  nothing within ``subscribe_timeout_s`` is closed with 1008 "no subscription".
- Then text ``PING`` -> ``PONG``; a second ``type`` frame -> ``INVALID OPERATION``; ``{"operation":
  "subscribe" | "unsubscribe", "assets_ids": [...]}`` changes the subscription with no acknowledgement
  (assets already subscribed are ignored). Subscriptions take effect between two recorded frames.
- Routing is by exact token id: a ``book``, ``tick_size_change`` or ``best_bid_ask`` goes to the
  subscribers of its ``asset_id``; a ``price_change`` to those of any entry's token (the complement's
  mirrored entry stays in it, as on the venue); a ``last_trade_price`` to those of either token of its
  market; ``best_bid_ask``, ``new_market`` and ``market_resolved`` only with ``custom_feature_enabled``
  (spec 4.5-4.7). Frames are sent byte for byte; an array that mixes tokens (an initial dump of several
  books) is cut down to the elements for the subscriber, each element byte for byte.
- **Snapshots on subscribe.** With ``initial_dump`` true (the default), a subscription sends at once,
  as one JSON array (spec 3), a snapshot of each new token whose book the timeline already holds,
  synthesized from that book as it is at that moment: initial-book key order, ``tick_size``,
  ``last_trade_price``, and the hash :meth:`polyfeed.book.OrderBook.compute_hash` gives with the
  recorded ``min_order_size`` / ``neg_risk`` (the ones REST gives the client). The recorded frames that
  follow continue from exactly that book, so the stream verifies hash by hash. A token whose first
  recorded book the timeline has not reached gets that recorded book, forwarded when reached. Recorded
  books that carry ``tick_size`` are subscription snapshots (spec 3): they go only to subscribers with
  ``initial_dump``; a recorder's re-subscription dumps are forwarded too, since they heal the gaps its
  disconnections left. With ``initial_dump: false`` no snapshot is sent, synthesized or recorded.

**REST** (``GET /book``, ``POST /books``, ``GET /price``, ``GET /midpoint``, ``GET /tick-size``; spec 8.1,
:mod:`polyfeed.replay.venue_rest`): answered from the shared timeline's books at the moment of the call;
a token the timeline has not reached yet answers with its first recorded book, so that books exist
before anyone subscribes (``MarketStream`` POSTs ``/books`` for the metadata first). Before serving, the
recording is read once for those first books, each token's market and the ``metadata`` markers (a
recording without them gets ``"5"`` / ``false``); records before ``from_ns`` are applied there too.

When the recording ends the connections stay open (a quiet market) until the clients leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyfeed.book import OrderBook
from polyfeed.errors import FrameDecodeError
from polyfeed.record.format import Channel, Record, RecordKind
from polyfeed.record.reader import read_recording
from polyfeed.replay.timeline_books import TimelineBooks, decode_record, scan
from polyfeed.replay.venue_rest import VenueRest, book_snapshot
from polyfeed.wire import (
    BestBidAsk,
    Book,
    LastTradePrice,
    MarketMessage,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
    decode_json,
)

__all__ = ["RecordingServer"]

log = logging.getLogger(__name__)
_FRAME = int(RecordKind.FRAME)
_REST = int(RecordKind.REST)
_MARKET = int(Channel.MARKET)
_encode = msgspec.json.encode
_YIELD_EVERY = 256  # records between two yields to the loop at full speed (PINGs must be answered)


class _Subscriber:
    """One subscribed connection. Its subscription requests queue in ``requests``; the timeline applies
    them between two frames, so that a token's snapshot always precedes its updates."""

    __slots__ = ("assets", "custom", "initial_dump", "markets", "requests", "ws")

    def __init__(self, ws: web.WebSocketResponse, subscription: dict[str, Any]) -> None:
        self.ws = ws
        self.assets: set[str] = set()
        self.markets: set[str] = set()
        self.initial_dump = subscription.get("initial_dump", True) is not False  # default true (spec 1.2)
        self.custom = subscription.get("custom_feature_enabled") is True
        self.requests: list[dict[str, Any]] = [{"operation": "subscribe", "assets_ids": _ids(subscription)}]

    def wants(self, message: MarketMessage, market_of: dict[str, str]) -> bool:
        cls = message.__class__
        assets = self.assets
        if cls is PriceChange:
            return any(e.asset_id in assets for e in message.price_changes)  # type: ignore[union-attr]
        if cls is Book:
            # A book with tick_size is a subscription's snapshot (spec 3), for initial_dump subscribers.
            return message.asset_id in assets and (self.initial_dump or message.tick_size is None)  # type: ignore[union-attr]
        if cls is LastTradePrice:
            return message.asset_id in assets or message.market in self.markets  # type: ignore[union-attr]
        if cls is TickSizeChange:
            return message.asset_id in assets  # type: ignore[union-attr]
        if not self.custom:
            return False
        if cls is BestBidAsk:
            return message.asset_id in assets  # type: ignore[union-attr]
        if cls is MarketResolved:
            return message.market in self.markets or not assets.isdisjoint(message.assets_ids)  # type: ignore[union-attr]
        return cls is NewMarket


class RecordingServer:
    """``async with RecordingServer(directory, port=0) as server:`` then ``server.ws_url + "/ws/market"``
    and ``server.rest_url``; see the module's docstring for what it serves.

    Args:
        directory: the recording.
        host: address to listen on (loopback by default).
        port: 0 picks a free port.
        speed: replay pace relative to the recording (``None`` or ``0``: as fast as subscribers read).
        from_ns: start the timeline at the first record received at or after this time; the records
            before it are applied to the books, not sent.
        until_ns: stop before the first record received at or after this time.
        subscribe_timeout_s: how long a connection may wait before subscribing (spec 2, 12).
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
        subscribe_timeout_s: float = 10.0,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.speed = speed or None
        self.from_ns = from_ns
        self.until_ns = until_ns
        self.subscribe_timeout_s = subscribe_timeout_s
        self.clients = 0
        """Connections that subscribed."""
        self.records_played = 0
        """Records of the timeline played so far (after the ones before ``from_ns``)."""
        self.frames_sent = 0
        self.finished = False
        """Whether the timeline has played the whole recording (or up to ``until_ns``)."""
        self.timeline = TimelineBooks()
        self.first_books: dict[str, OrderBook] = {}
        self.rest = VenueRest(self.book_for_rest)
        self._subscribers: set[_Subscriber] = set()
        self._wake = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        """``ws://host:port``; clients append ``/ws/market``."""
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """``http://host:port``, the CLOB REST base URL."""
        return f"http://{self.host}:{self.port}"

    def book_for_rest(self, asset: str) -> OrderBook | None:
        """The book REST answers for a token now: the timeline's, else its first recorded one."""
        return self.timeline.live(asset) or self.first_books.get(asset)

    async def __aenter__(self) -> RecordingServer:
        # A missing or damaged recording fails here, before anything listens.
        found = await asyncio.to_thread(scan, self.directory, self.from_ns, self.until_ns)
        self.timeline = found.books
        self.first_books = found.first
        records = itertools.islice(read_recording(self.directory, until_ns=self.until_ns), found.prefix, None)
        app = web.Application()
        app.router.add_get("/ws/market", self._market)
        self.rest.register(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._task = asyncio.create_task(self._run(records))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._runner is not None:
            await self._runner.cleanup()

    # -- connections ----------------------------------------------------------------------------------

    async def _market(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        try:
            first = await ws.receive(timeout=self.subscribe_timeout_s)
        except TimeoutError:  # spec 2: connections that do not subscribe soon are closed
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no subscription")
            return ws
        subscription = _subscription(first)
        if subscription is None:  # PING first, or not JSON: the venue's close ([I-NT4864], spec 2)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"invalid subscription payload")
            return ws
        subscriber = _Subscriber(ws, subscription)
        self.clients += 1
        self._subscribers.add(subscriber)
        self._wake.set()
        try:
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if message.data in ("PING", b"PING"):
                    await ws.send_str("PONG")
                    continue
                body = _json(message.data)
                if not isinstance(body, dict):
                    continue
                if "type" in body:  # one type message per connection (spec 1.3, [I-NT3717])
                    await ws.send_str("INVALID OPERATION")
                elif body.get("operation") in ("subscribe", "unsubscribe"):
                    subscriber.requests.append(body)
                    self._wake.set()
        finally:
            self._subscribers.discard(subscriber)
        return ws

    async def _send(self, subscriber: _Subscriber, text: str) -> None:
        if subscriber.ws.closed:
            return
        try:
            await subscriber.ws.send_str(text)
        except ConnectionError:
            self._subscribers.discard(subscriber)
            return
        self.frames_sent += 1

    async def _apply_requests(self) -> None:
        self._wake.clear()
        for subscriber in list(self._subscribers):
            while subscriber.requests:
                await self._apply_request(subscriber, subscriber.requests.pop(0))

    async def _apply_request(self, subscriber: _Subscriber, request: dict[str, Any]) -> None:
        ids = _ids(request)
        if "custom_feature_enabled" in request:  # applied even to a duplicate (spec 1.3)
            subscriber.custom = request["custom_feature_enabled"] is True
        if request.get("operation") == "unsubscribe":
            subscriber.assets.difference_update(ids)
        else:
            new = [a for a in dict.fromkeys(ids) if a not in subscriber.assets]
            subscriber.assets.update(new)
            if request.get("initial_dump", subscriber.initial_dump) is not False:
                books = [book for a in new if (book := self.timeline.live(a)) is not None]
                if books:  # one array for the subscription's books (spec 3, 12)
                    await self._send(subscriber, _encode([book_snapshot(b) for b in books]).decode())
        market_of = self.timeline.market_of
        subscriber.markets = {market_of[a] for a in subscriber.assets if a in market_of}

    # -- the timeline ---------------------------------------------------------------------------------

    def _listening(self) -> bool:
        return any(s.assets for s in self._subscribers)

    async def _woken(self, timeout: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run(self, records: Iterator[Record]) -> None:
        loop = asyncio.get_running_loop()
        anchor: tuple[float, int] | None = None  # (loop time, recv_ns) the pace is measured from
        for record in records:
            while True:
                if self._wake.is_set():
                    await self._apply_requests()
                if not self._listening():
                    anchor = None  # paused: the pace starts again from the next subscriber
                    await self._woken()
                    continue
                if self.speed is None:
                    break
                if anchor is None:
                    anchor = (loop.time(), record.recv_ns)
                delay = anchor[0] + (record.recv_ns - anchor[1]) / 1e9 / self.speed - loop.time()
                if delay <= 0:
                    break
                await self._woken(delay)  # a subscription meanwhile gets its snapshots at once
            await self._play(record)
            self.records_played += 1
            if self.speed is None and self.records_played % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        self.finished = True
        log.info("recording served: %d records, %d frames sent", self.records_played, self.frames_sent)
        while True:  # a quiet market: subscriptions still get their snapshots
            await self._apply_requests()
            await self._woken()

    async def _play(self, record: Record) -> None:
        if record.channel != _MARKET or (record.kind != _FRAME and record.kind != _REST):
            return
        messages = decode_record(record)
        self.timeline.feed(messages)
        if record.kind != _FRAME or not messages:
            return  # a resync's REST answer moves the books, but nobody received it on the socket
        market_of = self.timeline.market_of
        payload = record.payload
        text: str | None = None
        parts: list[bytes] | None = None
        for subscriber in list(self._subscribers):
            if not subscriber.assets:
                continue
            wanted = [subscriber.wants(m, market_of) for m in messages]
            if all(wanted):
                if text is None:
                    text = payload.decode("utf-8", "replace")
                await self._send(subscriber, text)
            elif any(wanted):  # an array mixing tokens: only this subscriber's elements
                if parts is None:
                    parts = [bytes(raw) for raw in msgspec.json.decode(payload, type=list[msgspec.Raw])]
                separator = b", " if b"}, {" in payload else b","
                chosen = separator.join(p for p, w in zip(parts, wanted, strict=True) if w)
                await self._send(subscriber, (b"[" + chosen + b"]").decode("utf-8", "replace"))


def _subscription(message: Any) -> dict[str, Any] | None:
    """The market subscription in a first frame, text or UTF-8 binary, or ``None``."""
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    body = _json(message.data)
    if not isinstance(body, dict) or not isinstance(body.get("assets_ids", []), list):
        return None
    kind = body.get("type")
    if kind is None:
        return body if "assets_ids" in body else None
    return body if isinstance(kind, str) and kind.lower() == "market" else None


def _ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("assets_ids")
    return [a for a in ids if isinstance(a, str)] if isinstance(ids, list) else []


def _json(data: Any) -> Any:
    try:
        return decode_json(data)
    except (FrameDecodeError, TypeError):
        return None
