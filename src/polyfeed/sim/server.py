"""The local exchange's server: Polymarket's market channel and book REST calls over aiohttp.

Behaviour follows spec section 12:

- WebSocket upgrades on ``/ws/market``; other paths are 404 (spec 1.1, [I-CLOB127]).
- The first text frame must be the subscription: ``PING`` or anything that is not a market
  subscription gets close 1008 "invalid subscription payload" ([I-NT4864]); no subscription within
  ``subscribe_timeout_s`` closes the connection too.
- With ``initial_dump`` true or omitted, the books of the newly subscribed assets arrive as one JSON
  array per subscription (or per ``subscribe`` operation), with ``tick_size`` and ``last_trade_price``
  in 3 decimals (spec 3, 12); ``dump_per_asset`` sends one one-element array per asset instead, the
  older observed shape. Unknown token ids are silently ignored (spec 1.3); above ``max_assets`` per
  connection no snapshots are sent (spec 1.4).
- Text ``PING`` -> text ``PONG``; a second ``type`` frame -> text ``INVALID OPERATION``; ``operation``
  subscribe / unsubscribe change the subscription in place with no acknowledgement, a subscribe
  sending snapshots of the new assets.
- Every message the engine produces goes to each connection subscribed to any asset it concerns, so a
  ``price_change`` carries the complement token's mirrored entries as on the venue.
- ``GET /book``, ``POST /books``, ``GET /price``, ``GET /midpoint``, ``GET /tick-size`` as in spec 8.1,
  404 ``{"error": "No orderbook exists for the requested token id"}`` for unknown tokens.

- Gamma on the same server: ``GET /markets`` (``slug``, ``clob_token_ids``, ``condition_ids``,
  ``offset``/``limit``), ``/markets/slug/{slug}``, ``/events`` (``slug``), ``/events/slug/{slug}``.

- ``custom_feature_enabled`` (on subscribe, or toggled by an ``operation``): ``best_bid_ask`` when a
  token's top of book changes.

- Faults on demand (:mod:`polyfeed.sim.faults`): :meth:`Simulator.inject` or ``POST /control/faults``.

- The user channel ``/ws/user`` and the account's ``/data/orders`` / ``/data/trades``
  (:mod:`polyfeed.sim.userchannel`).

- ``new_market`` and ``market_resolved`` go to every custom-feature connection, whatever its assets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyfeed.net.venue import Venue
from polyfeed.sim.connection import Connection, parse_json, serve_requests, strings, write_loop
from polyfeed.sim.engine import Exchange, Outbound
from polyfeed.sim.faults import Fault, parse_fault
from polyfeed.sim.frames import dump_frames, encode_outbound, rest_book
from polyfeed.sim.gamma import event_document, filter_markets, market_document
from polyfeed.sim.hostile import hostile_frames
from polyfeed.sim.lifetimes import MEDIAN_LIFETIME_S
from polyfeed.sim.rest import BookRest
from polyfeed.sim.userchannel import UserChannel
from polyfeed.wire import BestBidAsk, Book, PriceChange, PriceChangeEntry

__all__ = ["Simulator"]

log = logging.getLogger(__name__)

_encode = msgspec.json.encode
_INVALID_SUBSCRIPTION = b"invalid subscription payload"


class Simulator:
    """The local exchange as an async context manager, for tests and ``polyfeed sim``.

    >>> async with Simulator(markets=5, seed=1) as sim:   # doctest: +SKIP
    ...     sim.ws_url          # 'ws://127.0.0.1:41234'; clients append /ws/market
    ...     sim.rest_url        # 'http://127.0.0.1:41234'

    Args:
        markets: number of binary markets.
        seed: the engine's seed.
        host: the address to listen on (loopback by default).
        port: 0 picks a free port.
        events_per_s: order-flow events a second (each sends one or several messages).
        max_assets: assets per connection above which no snapshots are sent (spec 1.4).
        subscribe_timeout_s: how long a new connection may wait before subscribing.
        ssl_context: serve TLS (``wss://``, ``https://``) with this server context.
        dump_per_asset: send each initial book in a one-element array of its own (an older capture's
            shape) instead of one array per subscription (today's venue, spec 3).
        snapshot_tick_size: initial books carry ``tick_size`` (2026's venue); ``False`` leaves it out,
            as December 2025's initial books did, so that clients must take it from REST (spec 7.3).
        median_lifetime_s: markets resolve after a lifetime around this median, in seconds of the
            exchange's clock (which keeps with the wall clock), each replaced by a new market; ``None``:
            only by hand (:mod:`polyfeed.sim.lifetimes`). ``sim-market-0`` to ``-19`` never resolve.
    """

    def __init__(
        self,
        markets: int = 10,
        *,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        events_per_s: float = 200.0,
        max_assets: int = 500,
        subscribe_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        dump_per_asset: bool = False,
        snapshot_tick_size: bool = True,
        median_lifetime_s: float | None = MEDIAN_LIFETIME_S,
    ) -> None:
        self.ssl_context = ssl_context
        self.exchange = Exchange(markets, seed=seed, median_lifetime_s=median_lifetime_s)
        self.seed = seed
        self.host = host
        self.port = port
        self.events_per_s = events_per_s
        self.max_assets = max_assets
        self.subscribe_timeout_s = subscribe_timeout_s
        self.dump_per_asset = dump_per_asset
        self.snapshot_tick_size = snapshot_tick_size
        self.messages_sent = 0
        self.user = UserChannel(self.exchange, self._count_sent, subscribe_timeout_s)
        """The user channel and the account's REST calls (credentials: ``exchange.account.credentials``)."""
        self._connections: set[Connection] = set()
        self._tops: dict[str, tuple[str, str]] = {}
        self._fault_rng = random.Random(seed + 1)  # faults never disturb the engine's seeded stream
        self._duplicate_left = 0
        self._reject_left = 0
        self._reject_status = 429
        self._rest_error_left = 0
        self._rest_error_status = 500
        self._slow_left = 0
        self._slow_ms = 0
        self._stale_left = 0
        self._stale_books: dict[str, Book] = {}
        self.faults_injected: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._pump: asyncio.Task[None] | None = None
        self._paused = asyncio.Event()
        self._paused.set()

    @property
    def ws_url(self) -> str:
        """The WebSocket base URL, as the quickstart's ``url`` (it appends ``/ws/market``)."""
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}"

    @property
    def market_url(self) -> str:
        """The market channel's URL, what ``MarketStream(ws_url=...)`` takes."""
        return f"{self.ws_url}/ws/market"

    @property
    def user_url(self) -> str:
        """The user channel's URL, what ``UserStream(ws_url=...)`` takes."""
        return f"{self.ws_url}/ws/user"

    @property
    def venue(self) -> Venue:
        """All of this exchange's URLs in one value, what ``MarketStream(venue=...)`` and
        ``UserStream(venue=...)`` take (REST and Gamma are served on the same port)."""
        return Venue.local(self.ws_url)

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._rest_faults])
        app.router.add_get("/ws/market", self._market_socket)
        app.router.add_get("/markets", self._gamma_markets)
        app.router.add_get("/markets/slug/{slug}", self._gamma_market_by_slug)
        app.router.add_get("/events", self._gamma_events)
        app.router.add_get("/events/slug/{slug}", self._gamma_event_by_slug)
        app.router.add_post("/control/faults", self._control_faults)
        self.user.register(app)
        BookRest(self.exchange).register(app)
        return app

    async def __aenter__(self) -> Simulator:
        self._runner = web.AppRunner(self.app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._pump = asyncio.create_task(self._run_flow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for conn in list(self._connections | self.user.connections):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()

    def open_market(self) -> None:
        """Open a new market now (``new_market`` to custom-feature connections)."""
        for out in self.exchange.add_market():
            self._broadcast(out)

    def resolve_market(self, index: int = 0) -> None:
        """Resolve ``exchange.markets[index]`` now, and open a market in its place (``market_resolved``
        and ``new_market`` to custom-feature connections)."""
        for out in self.exchange.resolve_market(self.exchange.markets[index]):
            self._broadcast(out)

    def pause(self) -> None:
        """Stop the order flow (books hold still, e.g. to compare them with ``GET /book``)."""
        self._paused.clear()

    def resume(self) -> None:
        self._paused.set()

    # -- order flow -------------------------------------------------------------------------------------

    async def _run_flow(self) -> None:
        tick_s = 0.01
        loop = asyncio.get_running_loop()
        owed = 0.0
        last = loop.time()
        while True:
            await asyncio.sleep(tick_s)
            await self._paused.wait()
            now = loop.time()
            owed += (now - last) * self.events_per_s
            last = now
            events = int(owed)
            owed -= events
            for _ in range(events):
                for out in self.exchange.step(elapsed_ms=max(1, int(1000 / self.events_per_s))):
                    self._broadcast(out)

    def _broadcast(self, out: Outbound) -> None:
        if out.channel == "user":
            self.user.broadcast(out)
            return
        if out.channel == "broadcast":  # not filtered by asset, custom features only (spec 4.6, 4.7)
            notice = _encode(out.message).decode()
            for conn in self._connections:
                if conn.custom_features and not conn.zombie:
                    conn.queue.put_nowait(notice)
            return
        receivers = [c for c in self._connections if not c.zombie and any(a in c.assets for a in out.assets)]
        if receivers:
            text = encode_outbound(out)
            copies = 1
            if self._duplicate_left:  # spent only on a frame someone receives (a test counts them)
                self._duplicate_left -= 1
                copies = 2
            for conn in receivers:
                for _ in range(copies):
                    conn.queue.put_nowait(text)
        if isinstance(out.message, PriceChange):
            self._best_bid_ask(out.message)

    def _best_bid_ask(self, message: PriceChange) -> None:
        """``best_bid_ask`` when a token's top of book changes, for connections with custom features
        (spec 4.5); the last entry of each token in a message carries its top after the message."""
        tops = {e.asset_id: (e.best_bid, e.best_ask) for e in message.price_changes}
        for asset, (bid, ask) in tops.items():
            if bid is None or ask is None or self._tops.get(asset) == (bid, ask):
                continue
            self._tops[asset] = (bid, ask)
            listeners = [c for c in self._connections if c.custom_features and asset in c.assets]
            if not listeners:
                continue
            spread = str((Decimal(ask) - Decimal(bid)).normalize())
            text = _encode(
                BestBidAsk(
                    market=message.market,
                    asset_id=asset,
                    best_bid=bid,
                    best_ask=ask,
                    spread=spread,
                    timestamp=message.timestamp,
                )
            ).decode()
            for conn in listeners:
                if not conn.zombie:
                    conn.queue.put_nowait(text)

    # -- the market channel ---------------------------------------------------------------------------

    async def _market_socket(self, request: web.Request) -> web.StreamResponse:
        if self._reject_left:
            self._reject_left -= 1
            return web.Response(status=self._reject_status, text="rejected by an injected fault")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left during the upgrade: nothing to serve
            return ws
        conn = Connection(ws, transport=request.transport)
        try:
            first = await asyncio.wait_for(ws.receive(), self.subscribe_timeout_s)
        except TimeoutError:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no subscription")
            return ws
        # Clients send text; a UTF-8 binary frame is taken as the same text (the venue's answer is unknown).
        subscription = parse_json(first.data) if first.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None
        if (
            not isinstance(subscription, dict)
            or subscription.get("type") != "market"
            or not isinstance(subscription.get("assets_ids", []), list)
        ):
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=_INVALID_SUBSCRIPTION)
            return ws
        self._connections.add(conn)
        writer = asyncio.create_task(write_loop(conn, self._count_sent))
        try:
            conn.custom_features = bool(subscription.get("custom_feature_enabled", False))
            await self._subscribe(
                conn, subscription.get("assets_ids", []), subscription.get("initial_dump", True)
            )

            async def on_operation(operation: str, body: dict[str, Any]) -> None:
                if operation == "subscribe":
                    if "custom_feature_enabled" in body:
                        conn.custom_features = bool(body["custom_feature_enabled"])
                    await self._subscribe(conn, body.get("assets_ids", []), body.get("initial_dump", True))
                else:
                    conn.assets.difference_update(strings(body.get("assets_ids")))

            await serve_requests(conn, on_operation)
        finally:
            self._connections.discard(conn)
            conn.queue.put_nowait(None)
            await writer
        return ws

    async def _subscribe(self, conn: Connection, assets: object, initial_dump: object) -> None:
        if not isinstance(assets, list):
            return
        known = [  # each new known asset once, in the request's order
            a
            for a in dict.fromkeys(a for a in assets if isinstance(a, str))
            if a in self.exchange.by_asset and a not in conn.assets
        ]
        conn.assets.update(known)
        if initial_dump is False or len(conn.assets) > self.max_assets:
            return
        books = [self.exchange.book(asset, initial=True) for asset in known]
        for frame in dump_frames(books, per_asset=self.dump_per_asset, tick_size=self.snapshot_tick_size):
            conn.queue.put_nowait(frame)

    def _count_sent(self) -> None:
        self.messages_sent += 1

    # -- faults ---------------------------------------------------------------------------------------

    async def inject(self, fault: Fault | dict[str, Any]) -> None:
        """Inject a fault now (see :mod:`polyfeed.sim.faults`).

        Raises:
            ValueError: an invalid fault, or ``corrupt`` of a token with too few levels.
        """
        fault = fault if isinstance(fault, Fault) else parse_fault(fault)
        kind = fault.kind
        everyone = self._connections | self.user.connections
        if kind == "drop":
            for conn in list(everyone):
                if fault.mode == "reset" and conn.transport is not None:
                    conn.transport.abort()  # no close frame, as the venue's resets (spec 5.3)
                else:
                    await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped by an injected fault")
        elif kind == "zombie":
            for conn in everyone:
                conn.zombie = True
        elif kind == "malformed":
            for conn in everyone:
                conn.queue.put_nowait('{"event_type": "price_change", "market": "0x')
        elif kind == "duplicate":
            self._duplicate_left += fault.count
        elif kind == "delay":
            for conn in everyone:
                conn.delay_left, conn.delay_ms = fault.count, fault.ms
        elif kind == "corrupt":
            self._broadcast(self._corrupt_level(fault.asset_id))
        elif kind == "reject_connects":
            self._reject_left, self._reject_status = fault.count, fault.status
        elif kind == "rest_error":
            self._rest_error_left, self._rest_error_status = fault.count, fault.status
        elif kind == "hostile":
            for frame in hostile_frames(self.exchange, fault.mode, self._fault_rng):
                for conn in self._connections:
                    conn.queue.put_nowait(frame)
        elif kind == "stale_rest":
            self._stale_left = fault.count
            self._stale_books = {a: self.exchange.book(a) for a in self.exchange.asset_ids()}
        elif kind == "slow_rest":
            self._slow_left, self._slow_ms = fault.count, fault.ms
        elif kind == "resolve":
            asset = fault.asset_id or self._fault_rng.choice(self.exchange.asset_ids())
            if asset not in self.exchange.by_asset:
                raise ValueError(f"unknown asset_id {asset}")
            for out in self.exchange.resolve_market(self.exchange.by_asset[asset]):
                self._broadcast(out)
        self.faults_injected.append(fault)

    def _corrupt_level(self, asset_id: str | None) -> Outbound:
        """A change to one non-top level with a wrong size but the exchange's true hash and top."""
        exchange = self.exchange
        asset = asset_id or self._fault_rng.choice(exchange.asset_ids())
        if asset not in exchange.by_asset:
            raise ValueError(f"unknown asset_id {asset}")
        market = exchange.by_asset[asset]
        truth = exchange.book(asset)
        sides = [
            (side, levels) for side, levels in (("BUY", truth.bids), ("SELL", truth.asks)) if len(levels) > 1
        ]
        if not sides:
            raise ValueError(f"token {asset} has no side with two levels to corrupt")
        side, levels = self._fault_rng.choice(sides)
        level = self._fault_rng.choice(levels[:-1])  # never the top: the top-of-book check must not see it
        wrong = str(Decimal(level.size) + 1)
        ts = truth.timestamp
        entry = PriceChangeEntry(
            asset_id=asset,
            price=level.price,
            size=wrong,
            side=side,
            hash=truth.hash,  # the exchange's own hash of the true book (polyfeed.sim.bookhash)
            best_bid=truth.bids[-1].price if truth.bids else "0",
            best_ask=truth.asks[-1].price if truth.asks else "1",
        )
        return Outbound(
            PriceChange(market=market.condition_id, timestamp=ts, price_changes=[entry]), (asset,)
        )

    async def _control_faults(self, request: web.Request) -> web.Response:
        try:
            await self.inject(parse_fault(parse_json(await request.text())))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"injected": self.faults_injected[-1].kind})

    @web.middleware
    async def _rest_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        rest = not path.startswith(("/ws/", "/control/"))
        if self._rest_error_left and rest:
            self._rest_error_left -= 1
            return web.json_response({"error": "injected fault"}, status=self._rest_error_status)
        if self._slow_left and rest:
            self._slow_left -= 1
            await asyncio.sleep(self._slow_ms / 1000)
        stale = self._stale_books.get(request.query.get("token_id", "")) if path == "/book" else None
        if self._stale_left and stale is not None:
            self._stale_left -= 1
            return web.json_response(rest_book(stale))
        response: web.StreamResponse = await handler(request)
        return response

    # -- Gamma (the same server plays gamma-api.polymarket.com) ----------------------------------------

    async def _gamma_markets(self, request: web.Request) -> web.Response:
        try:
            markets = filter_markets(self.exchange, request.query, _multi(request))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response([market_document(self.exchange, m) for m in markets])

    async def _gamma_market_by_slug(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        for market in self.exchange.markets:
            if market.slug == slug:
                return web.json_response(market_document(self.exchange, market))
        return web.json_response({"error": "market not found"}, status=404)

    async def _gamma_events(self, request: web.Request) -> web.Response:
        slugs = {v for item in request.query.getall("slug", []) for v in item.split(",")}
        events = [e for i in range(len(self.exchange.markets)) if (e := event_document(self.exchange, i))]
        if slugs:
            events = [e for e in events if e["slug"] in slugs]
        return web.json_response(events)

    async def _gamma_event_by_slug(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        prefix = "sim-event-"
        if slug.startswith(prefix) and slug[len(prefix) :].isdigit():
            event = event_document(self.exchange, int(slug[len(prefix) :]))
            if event is not None:
                return web.json_response(event)
        return web.json_response({"error": "event not found"}, status=404)


def _multi(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}
