"""The local exchange's fault injection: carries out the faults of :mod:`polyfeed.sim.faults`.

Faults arrive by :meth:`FaultInjector.inject` (:meth:`polyfeed.sim.Simulator.inject`) or over HTTP,
``POST /control/faults``. Some act at once on the connections of both channels (``drop``, ``zombie``,
``malformed``, ``delay``, ``hostile``) or on the engine (``corrupt``, ``resolve``); the market channel
keeps the counters of its own (``duplicate``, ``reject_connects``); the REST faults (``rest_error``,
``slow_rest``, ``stale_rest``) are an aiohttp middleware in front of every REST and Gamma route.

Faults draw from a random generator of their own, so they never disturb the engine's seeded stream.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import WSCloseCode, web

from polyfeed.sim.connection import parse_json
from polyfeed.sim.engine import Exchange, Outbound
from polyfeed.sim.faults import Fault, parse_fault
from polyfeed.sim.frames import json_body, rest_book
from polyfeed.sim.hostile import hostile_frames
from polyfeed.sim.marketchannel import MarketChannel
from polyfeed.sim.userchannel import UserChannel
from polyfeed.wire import Book, PriceChange, PriceChangeEntry

__all__ = ["FaultInjector"]


class FaultInjector:
    """Injects faults into one :class:`polyfeed.sim.Simulator`'s channels, engine and REST answers.

    Args:
        exchange: the engine.
        market: the market channel.
        user: the user channel.
        route: sends one of the engine's messages where it goes (the simulator's router).
        rng: the faults' own random generator.
    """

    def __init__(
        self,
        exchange: Exchange,
        market: MarketChannel,
        user: UserChannel,
        route: Callable[[Outbound], None],
        rng: random.Random,
    ) -> None:
        self.exchange = exchange
        self.market = market
        self.user = user
        self._route = route
        self._rng = rng
        self.injected: list[Fault] = []
        """Every fault injected so far, in order."""
        self._rest_error_left = 0
        self._rest_error_status = 500
        self._slow_left = 0
        self._slow_ms = 0
        self._stale_left = 0
        self._stale_books: dict[str, Book] = {}

    def register(self, app: web.Application) -> None:
        """The control endpoint; the REST faults' middleware is :meth:`rest_faults`, given to the app."""
        app.router.add_post("/control/faults", self._control_faults)

    async def inject(self, fault: Fault | dict[str, Any]) -> None:
        """Inject a fault now (see :mod:`polyfeed.sim.faults`).

        Raises:
            ValueError: an invalid fault, or ``corrupt`` of a token with too few levels.
        """
        fault = fault if isinstance(fault, Fault) else parse_fault(fault)
        kind = fault.kind
        everyone = self.market.connections | self.user.connections
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
            self.market.duplicate_left += fault.count
        elif kind == "delay":
            for conn in everyone:
                conn.delay_left, conn.delay_ms = fault.count, fault.ms
        elif kind == "corrupt":
            self._route(self._corrupt_level(fault.asset_id))
        elif kind == "reject_connects":
            self.market.reject_left, self.market.reject_status = fault.count, fault.status
        elif kind == "rest_error":
            self._rest_error_left, self._rest_error_status = fault.count, fault.status
        elif kind == "hostile":
            for frame in hostile_frames(self.exchange, fault.mode, self._rng):
                self.market.send_to_all(frame)
        elif kind == "stale_rest":
            self._stale_left = fault.count
            self._stale_books = {a: self.exchange.book(a) for a in self.exchange.asset_ids()}
        elif kind == "slow_rest":
            self._slow_left, self._slow_ms = fault.count, fault.ms
        elif kind == "resolve":
            asset = fault.asset_id or self._rng.choice(self.exchange.asset_ids())
            if asset not in self.exchange.by_asset:
                raise ValueError(f"unknown asset_id {asset}")
            for out in self.exchange.resolve_market(self.exchange.by_asset[asset]):
                self._route(out)
        self.injected.append(fault)

    def _corrupt_level(self, asset_id: str | None) -> Outbound:
        """A change to one non-top level with a wrong size but the exchange's true hash and top."""
        exchange = self.exchange
        asset = asset_id or self._rng.choice(exchange.asset_ids())
        if asset not in exchange.by_asset:
            raise ValueError(f"unknown asset_id {asset}")
        market = exchange.by_asset[asset]
        truth = exchange.book(asset)
        sides = [
            (side, levels) for side, levels in (("BUY", truth.bids), ("SELL", truth.asks)) if len(levels) > 1
        ]
        if not sides:
            raise ValueError(f"token {asset} has no side with two levels to corrupt")
        side, levels = self._rng.choice(sides)
        level = self._rng.choice(levels[:-1])  # never the top: the top-of-book check must not see it
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
        return web.json_response({"injected": self.injected[-1].kind})

    @web.middleware
    async def rest_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The REST faults, in front of every route but the WebSockets and the control endpoint."""
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
            return json_body(rest_book(stale))
        response: web.StreamResponse = await handler(request)
        return response
