"""Gamma for the local exchange (spec section 9): its market and event documents, and the routes that
serve them on the exchange's own server (it plays ``gamma-api.polymarket.com`` too): ``GET /markets``
(``slug``, ``clob_token_ids``, ``condition_ids``, ``offset``/``limit``), ``/markets/slug/{slug}``,
``/events`` (``slug``), ``/events/slug/{slug}``.

As on the venue, ``outcomes``, ``clobTokenIds`` and ``outcomePrices`` are JSON-*encoded strings* inside
the JSON (decode twice), tick and minimum size are numbers, and ``outcomes[i]`` maps to
``clobTokenIds[i]``. Markets are grouped into events of up to three (``event_size``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from polyfeed.sim.engine import Exchange, SimMarket

__all__ = ["EVENT_SIZE", "GammaRest", "end_date", "event_document", "filter_markets", "market_document"]

EVENT_SIZE = 3
_MAX_IDS = 100  # Gamma answers at most 100 ids per request (spec 9.1)


def _event_index(market: SimMarket) -> int:
    return market.index // EVENT_SIZE


def market_document(exchange: Exchange, market: SimMarket, *, with_events: bool = True) -> dict[str, Any]:
    """One market as Gamma's ``GET /markets`` returns it."""
    yes = exchange.book(market.yes)
    best_bid = float(yes.bids[-1].price) if yes.bids else 0.0
    best_ask = float(yes.asks[-1].price) if yes.asks else 1.0
    mid = round((best_bid + best_ask) / 2, 4)
    document: dict[str, Any] = {
        "id": str(100_000 + market.index),
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "endDate": end_date(exchange, market),
        "outcomes": json.dumps(["Yes", "No"]),
        "outcomePrices": json.dumps([str(mid), str(round(1 - mid, 4))]),
        "clobTokenIds": json.dumps([market.yes, market.no]),
        "active": True,
        "closed": False,
        "enableOrderBook": True,
        "acceptingOrders": True,
        "orderPriceMinTickSize": float(market.tick),
        "orderMinSize": float(market.min_order_size),
        "negRisk": market.neg_risk,
        "bestBid": best_bid,
        "bestAsk": best_ask,
        "lastTradePrice": float(market.last_trade_price or 0),  # "" before any trade
    }
    if with_events:
        document["events"] = [_event_header(_event_index(market))]
    return document


def end_date(exchange: Exchange, market: SimMarket) -> str:
    """When the market ends: when it resolves on its own, else (long-dated) 30 days and a day per index
    from now."""
    if market.resolves_at_ms is not None:
        end = datetime.fromtimestamp(market.resolves_at_ms / 1000, UTC)
    else:
        end = datetime.fromtimestamp(exchange.now_ms / 1000, UTC) + timedelta(days=30 + market.index)
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_header(index: int) -> dict[str, Any]:
    return {
        "id": str(9_000 + index),
        "slug": f"sim-event-{index}",
        "title": f"Simulated event {index}",
        "active": True,
        "closed": False,
    }


def event_document(exchange: Exchange, index: int) -> dict[str, Any] | None:
    """One event with its markets, as Gamma's ``GET /events`` returns it; ``None`` if there is none."""
    markets = [m for m in exchange.markets if _event_index(m) == index]
    if not markets:
        return None
    return {
        **_event_header(index),
        "description": "Markets of the local exchange",
        "markets": [market_document(exchange, m, with_events=False) for m in markets],
    }


def filter_markets(
    exchange: Exchange, query: Mapping[str, str], multi: Mapping[str, list[str]]
) -> list[SimMarket]:
    """Markets matching Gamma's filters: ``slug``, ``clob_token_ids``, ``condition_ids`` (repeatable or
    comma-separated), ``closed``; then ``offset`` and ``limit`` paging.

    Raises:
        ValueError: a bad ``limit`` or ``offset``, or more than 100 ids.
    """
    markets: Iterable[SimMarket] = exchange.markets
    slugs = _values(multi.get("slug", []))
    if slugs:
        markets = [m for m in markets if m.slug in slugs]
    token_ids = _values(multi.get("clob_token_ids", []))
    condition_ids = _values(multi.get("condition_ids", []))
    if len(token_ids) > _MAX_IDS or len(condition_ids) > _MAX_IDS:
        raise ValueError(f"at most {_MAX_IDS} ids per request")
    if token_ids:
        markets = [m for m in markets if m.yes in token_ids or m.no in token_ids]
    if condition_ids:
        markets = [m for m in markets if m.condition_id in condition_ids]
    if query.get("closed", "").lower() == "true":
        markets = []  # nothing on the local exchange has closed
    offset = int(query.get("offset", "0"))
    limit = int(query.get("limit", "100"))
    if offset < 0 or not 0 < limit <= 500:
        raise ValueError("offset must be >= 0 and limit within 1-500")
    return list(markets)[offset : offset + limit]


def _values(raw: list[str]) -> set[str]:
    return {v for item in raw for v in item.split(",") if v}


class GammaRest:
    """Gamma's routes over one :class:`polyfeed.sim.Exchange`."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def register(self, app: web.Application) -> None:
        app.router.add_get("/markets", self.markets)
        app.router.add_get("/markets/slug/{slug}", self.market_by_slug)
        app.router.add_get("/events", self.events)
        app.router.add_get("/events/slug/{slug}", self.event_by_slug)

    async def markets(self, request: web.Request) -> web.Response:
        try:
            markets = filter_markets(self.exchange, request.query, _multi(request))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response([market_document(self.exchange, m) for m in markets])

    async def market_by_slug(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        for market in self.exchange.markets:
            if market.slug == slug:
                return web.json_response(market_document(self.exchange, market))
        return web.json_response({"error": "market not found"}, status=404)

    async def events(self, request: web.Request) -> web.Response:
        slugs = {v for item in request.query.getall("slug", []) for v in item.split(",")}
        events = [e for i in range(len(self.exchange.markets)) if (e := event_document(self.exchange, i))]
        if slugs:
            events = [e for e in events if e["slug"] in slugs]
        return web.json_response(events)

    async def event_by_slug(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        prefix = "sim-event-"
        if slug.startswith(prefix) and slug[len(prefix) :].isdigit():
            event = event_document(self.exchange, int(slug[len(prefix) :]))
            if event is not None:
                return web.json_response(event)
        return web.json_response({"error": "event not found"}, status=404)


def _multi(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}
