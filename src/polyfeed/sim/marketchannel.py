"""The local exchange's market channel (``/ws/market``): subscriptions, initial dumps, and routing.

As on the venue (spec 1, 3, 12):

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
  ``price_change`` carries the complement token's mirrored entries as on the venue. The channel keeps
  each asset's subscribers, so routing a message costs its receivers, not every connection's assets
  (the whole venue is some 92 connections of 500 assets).
- ``custom_feature_enabled`` (on subscribe, or toggled by an ``operation``): ``best_bid_ask`` when a
  token's top of book changes; ``new_market`` and ``market_resolved`` go to every custom-feature
  connection, whatever its assets.

Two faults act on this channel (:mod:`polyfeed.sim.injector` sets them): ``duplicate_left`` data frames
go out twice, and ``reject_left`` upgrades are refused with ``reject_status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyfeed.sim.connection import Connection, parse_json, serve_requests, strings, write_loop
from polyfeed.sim.engine import Exchange, Outbound
from polyfeed.sim.frames import dump_frames, encode_outbound
from polyfeed.wire import BestBidAsk, MarketResolved, PriceChange

__all__ = ["MarketChannel"]

_encode = msgspec.json.encode
_INVALID_SUBSCRIPTION = b"invalid subscription payload"
_NOBODY: frozenset[Connection] = frozenset()


class MarketChannel:
    """Market connections and what they receive, for one :class:`polyfeed.sim.Simulator`.

    Args:
        exchange: the engine whose books and messages the channel serves.
        on_sent: called for every frame a connection's writer sends.
        subscribe_timeout_s: how long a new connection may wait before subscribing.
        max_assets: assets per connection above which no snapshots are sent (spec 1.4).
        dump_per_asset: each initial book in a one-element array of its own (an older capture's shape).
        snapshot_tick_size: initial books carry ``tick_size`` (``False``: December 2025's shape).
    """

    def __init__(
        self,
        exchange: Exchange,
        on_sent: Callable[[], None],
        *,
        subscribe_timeout_s: float,
        max_assets: int,
        dump_per_asset: bool,
        snapshot_tick_size: bool,
    ) -> None:
        self.exchange = exchange
        self.subscribe_timeout_s = subscribe_timeout_s
        self.max_assets = max_assets
        self.dump_per_asset = dump_per_asset
        self.snapshot_tick_size = snapshot_tick_size
        self.connections: set[Connection] = set()
        self.duplicate_left = 0
        """Data frames still to be sent twice (the ``duplicate`` fault)."""
        self.reject_left = 0
        """WebSocket upgrades still to be refused with :attr:`reject_status` (``reject_connects``)."""
        self.reject_status = 429
        self.connections_accepted = 0
        """Connections that subscribed (the first frame a valid market subscription)."""
        self.connects_rejected = 0
        """WebSocket upgrades refused by ``reject_connects``."""
        self.subscriptions_refused = 0
        """Connections closed for a first frame that is no market subscription, or none in time."""
        self._on_sent = on_sent
        self._tops: dict[str, tuple[str, str]] = {}
        self._subscribers: dict[str, set[Connection]] = {}
        """Each asset's connections; kept with every connection's ``assets``."""

    def register(self, app: web.Application) -> None:
        app.router.add_get("/ws/market", self.socket)

    # -- routing --------------------------------------------------------------------------------------

    def broadcast(self, out: Outbound) -> None:
        """Send one of the engine's market-channel or broadcast messages to the connections it concerns."""
        if out.channel == "broadcast":  # not filtered by asset, custom features only (spec 4.6, 4.7)
            notice = _encode(out.message).decode()
            for conn in self.connections:
                if conn.custom_features and not conn.zombie:
                    conn.queue.put_nowait(notice)
            if isinstance(out.message, MarketResolved):  # its books ended: no top of book to remember
                for asset in out.message.assets_ids:
                    self._tops.pop(asset, None)
            return
        receivers = [c for c in self.subscribers(out.assets) if not c.zombie]
        if receivers:
            text = encode_outbound(out)
            copies = 1
            if self.duplicate_left:  # spent only on a frame someone receives (a test counts them)
                self.duplicate_left -= 1
                copies = 2
            for conn in receivers:
                for _ in range(copies):
                    conn.queue.put_nowait(text)
        if isinstance(out.message, PriceChange):
            self._best_bid_ask(out.message)

    def subscribers(self, assets: tuple[str, ...]) -> set[Connection] | frozenset[Connection]:
        """The connections subscribed to any of ``assets``, each once."""
        subscribers = self._subscribers
        if len(assets) == 1:
            return subscribers.get(assets[0], _NOBODY)
        return _NOBODY.union(*(subscribers.get(a, _NOBODY) for a in assets))

    def _add_assets(self, conn: Connection, assets: list[str]) -> None:
        conn.assets.update(assets)
        for asset in assets:
            self._subscribers.setdefault(asset, set()).add(conn)

    def _remove_assets(self, conn: Connection, assets: list[str]) -> None:
        conn.assets.difference_update(assets)
        self._unlist(conn, assets)

    def _unlist(self, conn: Connection, assets: list[str]) -> None:
        """Take ``conn`` out of the subscribers of ``assets`` (its own ``assets`` unchanged)."""
        for asset in assets:
            subscribers = self._subscribers.get(asset)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._subscribers[asset]

    def send_to_all(self, text: str) -> None:
        """One frame to every market connection, zombie or not (what a fault sends)."""
        for conn in self.connections:
            conn.queue.put_nowait(text)

    def _best_bid_ask(self, message: PriceChange) -> None:
        """``best_bid_ask`` when a token's top of book changes, for connections with custom features
        (spec 4.5); the last entry of each token in a message carries its top after the message."""
        tops = {e.asset_id: (e.best_bid, e.best_ask) for e in message.price_changes}
        for asset, (bid, ask) in tops.items():
            if bid is None or ask is None or self._tops.get(asset) == (bid, ask):
                continue
            self._tops[asset] = (bid, ask)
            listeners = [c for c in self._subscribers.get(asset, _NOBODY) if c.custom_features]
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

    # -- connections ----------------------------------------------------------------------------------

    async def socket(self, request: web.Request) -> web.StreamResponse:
        if self.reject_left:
            self.reject_left -= 1
            self.connects_rejected += 1
            return web.Response(status=self.reject_status, text="rejected by an injected fault")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left during the upgrade: nothing to serve
            return ws
        conn = Connection(ws, transport=request.transport)
        try:
            first = await asyncio.wait_for(ws.receive(), self.subscribe_timeout_s)
        except TimeoutError:
            self.subscriptions_refused += 1
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no subscription")
            return ws
        # Clients send text; a UTF-8 binary frame is taken as the same text (the venue's answer is unknown).
        subscription = parse_json(first.data) if first.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None
        if (
            not isinstance(subscription, dict)
            or subscription.get("type") != "market"
            or not isinstance(subscription.get("assets_ids", []), list)
        ):
            self.subscriptions_refused += 1
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=_INVALID_SUBSCRIPTION)
            return ws
        self.connections.add(conn)
        self.connections_accepted += 1
        writer = asyncio.create_task(write_loop(conn, self._on_sent))
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
                    self._remove_assets(conn, strings(body.get("assets_ids")))

            await serve_requests(conn, on_operation)
        finally:
            self.connections.discard(conn)
            self._unlist(conn, list(conn.assets))
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
        self._add_assets(conn, known)
        if initial_dump is False or len(conn.assets) > self.max_assets:
            return
        books = [self.exchange.book(asset, initial=True) for asset in known]
        for frame in dump_frames(books, per_asset=self.dump_per_asset, tick_size=self.snapshot_tick_size):
            conn.queue.put_nowait(frame)
