"""The local exchange's server: one aiohttp app that plays Polymarket's CLOB and Gamma (spec section 12).

:class:`Simulator` wires the parts and runs the order flow; each part is a module of its own:

- the market channel ``/ws/market``: subscriptions, initial dumps, routing by asset, ``best_bid_ask``,
  ``new_market`` / ``market_resolved`` (:mod:`polyfeed.sim.marketchannel`);
- the user channel ``/ws/user`` and the account's ``/data/orders`` / ``/data/trades``
  (:mod:`polyfeed.sim.userchannel`);
- ``GET /book``, ``POST /books``, ``GET /price``, ``GET /midpoint``, ``GET /tick-size`` and the other CLOB
  REST calls of spec 8.1 (:mod:`polyfeed.sim.rest`);
- Gamma on the same server: ``/markets``, ``/events`` and their ``/slug/{slug}`` forms
  (:mod:`polyfeed.sim.gamma`);
- faults on demand, :meth:`Simulator.inject` or ``POST /control/faults`` (:mod:`polyfeed.sim.faults`,
  carried out by :mod:`polyfeed.sim.injector`); the flow held still by :meth:`Simulator.pause` or
  ``POST /control/flow`` ``{"paused": true}``.

WebSocket upgrades on other paths are 404 (spec 1.1, [I-CLOB127]).

The order flow comes at ``events_per_s`` (wall clock); each event advances the exchange's simulated
clock by ``1000 / events_per_s`` ms (at least 1 ms), so that clock keeps with the wall clock, or runs
``clock_speed`` times faster: what the simulated clock paces (a trade's lifecycle to ``CONFIRMED``,
market lifetimes) then passes that much sooner, while the flow's rate stays the same. A flow loop that
stalled or cannot keep up runs at most 0.1 s of events at once and drops the rest, counting them and
saying so in the log (:mod:`polyfeed.sim.flow`); a pause owes nothing.

It serves the venue's whole universe from one process: 22,800 markets (45,600 tokens) build in a second
or two, each book being drawn when something first reads it (:class:`polyfeed.sim.market.OpeningBook`);
routing a message costs its subscribers; Gamma pages the universe as the venue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import Counter
from typing import Any

from aiohttp import WSCloseCode, web

from polyfeed.sim.connection import parse_json
from polyfeed.sim.engine import Exchange, Outbound
from polyfeed.sim.faults import Fault
from polyfeed.sim.flow import FlowPacer
from polyfeed.sim.gamma import GammaRest
from polyfeed.sim.injector import FaultInjector
from polyfeed.sim.lifetimes import MEDIAN_LIFETIME_S
from polyfeed.sim.marketchannel import MarketChannel
from polyfeed.sim.rest import BookRest
from polyfeed.sim.userchannel import UserChannel
from polyfeed.venue import Venue

__all__ = ["Simulator"]

log = logging.getLogger(__name__)

_SKIP_LOG_EVERY_S = 10.0  # a flow that keeps falling behind logs it once in this long, not every tick


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
            exchange's clock, each replaced by a new market; ``None``: only by hand
            (:mod:`polyfeed.sim.lifetimes`). ``sim-market-0`` to ``-19`` never resolve.
        clock_speed: seconds of the exchange's clock per second of the wall clock (1: real time). The
            flow still comes at ``events_per_s``, but each event moves the exchange's clock that many
            times further, so what it paces (a trade reaching ``CONFIRMED``, about 8.8 s at 1; market
            lifetimes) passes that many times sooner: for tests that wait on it.
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
        clock_speed: float = 1.0,
    ) -> None:
        if not clock_speed > 0:
            raise ValueError(
                "clock_speed must be positive (1: the exchange's clock keeps the wall clock's pace)"
            )
        self.ssl_context = ssl_context
        self.exchange = Exchange(markets, seed=seed, median_lifetime_s=median_lifetime_s)
        self.seed = seed
        self.host = host
        self.port = port
        self.events_per_s = events_per_s
        self.clock_speed = clock_speed
        self.messages_sent = 0
        """Frames written to clients on both channels (data, dumps, ``PONG``, faults' frames)."""
        self.market_frames_sent = 0
        """Of :attr:`messages_sent`, those written to market-channel connections."""
        self.user_frames_sent = 0
        """Of :attr:`messages_sent`, those written to user-channel connections."""
        self.events_run = 0
        """Order-flow events run (each sends one or several messages); :attr:`flow` counts those
        dropped."""
        self.requests: Counter[tuple[str, int]] = Counter()
        """HTTP requests answered but the WebSocket upgrades, by route (its pattern, e.g.
        ``/markets/slug/{slug}``; ``other`` for a path no route has) and status."""
        self.market = MarketChannel(
            self.exchange,
            self._count_market_sent,
            subscribe_timeout_s=subscribe_timeout_s,
            max_assets=max_assets,
            dump_per_asset=dump_per_asset,
            snapshot_tick_size=snapshot_tick_size,
        )
        """The market channel and its connections."""
        self._connections = self.market.connections
        self.user = UserChannel(self.exchange, self._count_user_sent, subscribe_timeout_s)
        """The user channel and the account's REST calls (credentials: ``exchange.account.credentials``)."""
        # faults never disturb the engine's seeded stream: they draw from a generator of their own
        self.faults = FaultInjector(
            self.exchange, self.market, self.user, self._broadcast, random.Random(seed + 1)
        )
        """Fault injection: :meth:`inject` hands it a fault."""
        self._runner: web.AppRunner | None = None
        self._pump: asyncio.Task[None] | None = None
        self._paused = asyncio.Event()
        self._paused.set()
        self.flow = FlowPacer(events_per_s, 0.0)
        """The flow's pacing: :attr:`FlowPacer.skipped` counts the events dropped when it fell behind."""

    @property
    def faults_injected(self) -> list[Fault]:
        """Every fault injected so far, in order."""
        return self.faults.injected

    @property
    def serving(self) -> bool:
        """Listening, and its order flow running (or paused by hand), not ended by an error."""
        pump = self._pump
        return self._runner is not None and pump is not None and not pump.done()

    @property
    def paused(self) -> bool:
        """The order flow is held still (:meth:`pause`, ``POST /control/flow``)."""
        return not self._paused.is_set()

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
        # counted outside the faults' middleware: an injected rest_error is counted by its status
        app = web.Application(middlewares=[self._count_requests, self.faults.rest_faults])
        self.market.register(app)
        GammaRest(self.exchange).register(app)
        self.faults.register(app)
        app.router.add_post("/control/flow", self._control_flow)
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
            self._runner = None

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

    async def _control_flow(self, request: web.Request) -> web.Response:
        """``POST /control/flow`` ``{"paused": true}`` pauses the flow, ``false`` resumes it (e.g. to
        compare books with ``GET /book`` from another process, as ``bench/bench_universe.py`` does)."""
        body = parse_json(await request.text())
        if not isinstance(body, dict) or not isinstance(body.get("paused"), bool):
            return web.json_response({"error": 'expected {"paused": true} or {"paused": false}'}, status=400)
        if body["paused"]:
            self.pause()
        else:
            self.resume()
        return web.json_response({"paused": not self._paused.is_set()})

    # -- order flow -------------------------------------------------------------------------------------

    async def _run_flow(self) -> None:
        tick_s = 0.01
        loop = asyncio.get_running_loop()
        step_ms = max(1, int(1000 * self.clock_speed / self.events_per_s))
        self.flow = pacer = FlowPacer(self.events_per_s, loop.time(), step_ms)
        logged_s = -_SKIP_LOG_EVERY_S
        while True:
            await asyncio.sleep(tick_s)
            if not self._paused.is_set():
                await self._paused.wait()
                pacer.pause(loop.time())  # a pause owes nothing: no burst when the flow resumes
                continue
            now = loop.time()
            events, dropped = pacer.due(now)
            if dropped and now - logged_s >= _SKIP_LOG_EVERY_S:
                logged_s = now
                log.info(
                    "the order flow fell behind: %d events dropped (%d in all) rather than sent at once",
                    dropped,
                    pacer.skipped,
                )
            elapsed_ms = step_ms + pacer.skipped_ms(dropped)  # the exchange's clock keeps the wall clock's
            for _ in range(events):
                for out in self.exchange.step(elapsed_ms=elapsed_ms):
                    self._broadcast(out)
                elapsed_ms = step_ms
            self.events_run += events

    def _broadcast(self, out: Outbound) -> None:
        if out.channel == "user":
            self.user.broadcast(out)
        else:
            self.market.broadcast(out)

    def _count_market_sent(self) -> None:
        self.messages_sent += 1
        self.market_frames_sent += 1

    def _count_user_sent(self) -> None:
        self.messages_sent += 1
        self.user_frames_sent += 1

    @web.middleware
    async def _count_requests(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count each HTTP answer by route and status (WebSocket upgrades are counted as connections by
        their channel)."""
        if request.path.startswith("/ws/"):
            response: web.StreamResponse = await handler(request)
            return response
        route = request.match_info.route.resource
        # the route's pattern, never the path as asked: a scan of random paths must not grow the labels
        path = route.canonical if route is not None else "other"
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's 404 and 405 for paths and methods no route has
            self.requests[path, exc.status] += 1
            raise
        self.requests[path, response.status] += 1
        return response

    # -- faults ---------------------------------------------------------------------------------------

    async def inject(self, fault: Fault | dict[str, Any]) -> None:
        """Inject a fault now (see :mod:`polyfeed.sim.faults`).

        Raises:
            ValueError: an invalid fault, or ``corrupt`` of a token with too few levels.
        """
        await self.faults.inject(fault)
