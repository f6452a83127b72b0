"""The local exchange's user channel (``/ws/user``) and the account's L2-signed REST calls.

As on the venue (spec 5): the first frame carries the raw credentials; bad ones get the connection
dropped without a close frame (spec 5.3, [I-PY204], [I-RS218]), never a JSON error. ``markets``
(condition ids) filters the events, empty meaning all. ``GET /data/orders``, ``GET /data/order/{id}``
and ``GET /data/trades`` check the five ``POLY_*`` headers (spec 8.3) and answer 401 otherwise; they
filter by ``market``, ``asset_id`` and ``id`` as py-clob-client asks; the lists page as the venue
does, ``{"data": [...], "next_cursor": "LTE="}`` (``LTE=`` marks the last page in py-clob-client).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyfeed.sim.connection import Connection, parse_json, serve_requests, strings, write_loop
from polyfeed.sim.engine import Exchange, Outbound
from polyfeed.wire import Credentials
from polyfeed.wire.signing import verify_l2

__all__ = ["END_CURSOR", "UserChannel"]

END_CURSOR = "LTE="
_L2_HEADERS = ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE")
_encode = msgspec.json.encode


class UserChannel:
    """User connections and the account's REST view, for one :class:`polyfeed.sim.Simulator`."""

    def __init__(self, exchange: Exchange, on_sent: Callable[[], None], subscribe_timeout_s: float) -> None:
        self.exchange = exchange
        self.credentials: Credentials = exchange.account.credentials
        self.connections: set[Connection] = set()
        self.rejected_auth = 0
        """Connections dropped for credentials that are not the account's."""
        self.connections_accepted = 0
        """Connections authenticated and subscribed."""
        self.subscriptions_refused = 0
        """Connections closed for a first frame that is no user subscription, or none in time."""
        self._on_sent = on_sent
        self._subscribe_timeout_s = subscribe_timeout_s

    def register(self, app: web.Application) -> None:
        app.router.add_get("/ws/user", self.socket)
        app.router.add_get("/data/orders", self.data_orders)
        app.router.add_get("/data/order/{order_id}", self.data_order)
        app.router.add_get("/data/trades", self.data_trades)

    def broadcast(self, out: Outbound) -> None:
        text: str | None = None
        for conn in self.connections:
            if not conn.zombie and (not conn.markets or out.market in conn.markets):
                if text is None:
                    text = _encode(out.message).decode()
                conn.queue.put_nowait(text)

    def _authentic(self, auth: object) -> bool:
        if not isinstance(auth, dict):
            return False
        given = [auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")]
        if not all(isinstance(v, str) for v in given):
            return False
        expected = [self.credentials.api_key, self.credentials.secret, self.credentials.passphrase]
        return all(hmac.compare_digest(str(a), b) for a, b in zip(given, expected, strict=True))

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left during the upgrade: nothing to serve
            return ws
        try:
            first = await asyncio.wait_for(ws.receive(), self._subscribe_timeout_s)
        except TimeoutError:
            self.subscriptions_refused += 1
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no subscription")
            return ws
        body = parse_json(first.data) if first.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None
        if not isinstance(body, dict) or body.get("type") != "user":
            self.subscriptions_refused += 1
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"invalid subscription payload")
            return ws
        if not self._authentic(body.get("auth")):
            self.rejected_auth += 1
            if request.transport is not None:
                request.transport.abort()  # the venue resets the connection, no close frame, no error
            return ws
        conn = Connection(ws, transport=request.transport)
        conn.markets.update(strings(body.get("markets")))
        self.connections.add(conn)
        self.connections_accepted += 1
        writer = asyncio.create_task(write_loop(conn, self._on_sent))
        try:

            async def on_operation(operation: str, body: dict[str, Any]) -> None:
                if operation == "subscribe":
                    conn.markets.update(strings(body.get("markets")))
                else:
                    conn.markets.difference_update(strings(body.get("markets")))

            await serve_requests(conn, on_operation)
        finally:
            self.connections.discard(conn)
            conn.queue.put_nowait(None)
            await writer
        return ws

    # -- L2-signed REST -------------------------------------------------------------------------------

    def _signed(self, request: web.Request) -> bool:
        # Header names are case-insensitive (HTTP/2 clients send them lower-case): read the five POLY_*
        # headers through aiohttp's case-insensitive mapping, not a plain dict of the names as sent.
        # The local exchange binds its one key to no address: the HMAC over the key's secret decides
        # (spec 8.3), so any POLY_ADDRESS (py-clob-client sends its private key's) passes with it.
        headers = {name: request.headers.get(name, "") for name in _L2_HEADERS}
        return verify_l2(self.credentials, headers, request.method, request.path)

    async def data_orders(self, request: web.Request) -> web.Response:
        if not self._signed(request):
            return web.json_response({"error": "Unauthorized/Invalid api key"}, status=401)
        market = request.query.get("market")
        asset = request.query.get("asset_id")
        order_id = request.query.get("id")  # py-clob-client's OpenOrderParams: id, market, asset_id
        orders = [
            _order_row(o)
            for o in self.exchange.account.open_orders()
            if (not market or o.market.condition_id == market)
            and (not asset or o.asset_id == asset)
            and (not order_id or o.id == order_id)
        ]
        return web.json_response({"data": orders, "next_cursor": END_CURSOR})

    async def data_order(self, request: web.Request) -> web.Response:
        """One order in any state (py-clob-client ``get_order``); 404 for an unknown id."""
        if not self._signed(request):
            return web.json_response({"error": "Unauthorized/Invalid api key"}, status=401)
        order = self.exchange.account.orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response({"error": "order not found"}, status=404)
        return web.json_response(_order_row(order))

    async def data_trades(self, request: web.Request) -> web.Response:
        if not self._signed(request):
            return web.json_response({"error": "Unauthorized/Invalid api key"}, status=401)
        market = request.query.get("market")
        asset = request.query.get("asset_id")
        trade_id = request.query.get("id")  # py-clob-client's TradeParams: id, market, asset_id, ...
        trades = [
            {k: v for k, v in msgspec.structs.asdict(t).items() if k not in ("type",)}
            | {"maker_orders": [msgspec.structs.asdict(m) for m in t.maker_orders]}
            for t in self.exchange.account.trades.values()
            if (not market or t.market == market)
            # a maker's fill may be on the complement token (spec 5.2): either leg names the trade
            and (not asset or asset == t.asset_id or any(m.asset_id == asset for m in t.maker_orders))
            and (not trade_id or t.id == trade_id)
        ]
        return web.json_response({"data": trades, "next_cursor": END_CURSOR})


def _order_row(order: Any) -> dict[str, Any]:
    """An open order as REST ``/data/orders`` lists it (py-clob-client's ``OpenOrder`` fields)."""
    return {
        "id": order.id,
        "status": order.status,
        "market": order.market.condition_id,
        "asset_id": order.asset_id,
        "side": order.side,
        "price": order.price,
        "original_size": str(order.original),
        "size_matched": str(order.matched),
        "outcome": "Yes" if order.asset_id == order.market.yes else "No",
        "order_type": "GTC",
        "expiration": "0",
        "associate_trades": list(order.trades),
        "created_at": int(order.created_s),
    }
