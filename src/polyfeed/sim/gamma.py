"""Gamma for the local exchange (spec section 9): its market and event documents, and the routes that
serve them on the exchange's own server (it plays ``gamma-api.polymarket.com`` too): ``GET /markets``,
``/markets/slug/{slug}``, ``/events``, ``/events/slug/{slug}``.

As on the venue, ``outcomes``, ``clobTokenIds`` and ``outcomePrices`` are JSON-*encoded strings* inside
the JSON (decode twice), tick and minimum size are numbers, and ``outcomes[i]`` maps to
``clobTokenIds[i]`` (spec 9.2). Markets are grouped into events of up to three (``event_size``).

``GET /markets`` answers the lookups of spec 9.1 (``slug``, and ``clob_token_ids`` / ``condition_ids``
of at most 100 ids, repeatable or comma-separated) and pages the whole universe, as public clients walk
it with ``GET /markets?active=true&closed=false&limit=500&offset=N`` until a page comes back short
(polyfeed's own :mod:`polyfeed.net.gamma`, NautilusTrader's ``GetGammaMarketsParams``, polyoxide's
``ListMarkets``). Its parameters, with the venue's meaning (Gamma's OpenAPI, ``get-markets``):

- ``closed``: ``false`` lists the open markets, ``true`` the resolved ones (each ``closed: true``, no
  longer accepting orders, its winner priced 1); left out, it is ``false``, the venue's implicit
  default (polyoxide notes that a lookup without ``closed=true`` silently drops closed markets);
- ``active``: every market here is active, open or resolved (the venue leaves closed markets
  ``active``; ``closed`` is what changes), so ``active=false`` lists nothing;
- ``limit`` (1 or more, 100 if left out) and ``offset``: a page; a ``limit`` above 500 gives 500, the most
  a page of Gamma holds;
- the filters of a partial universe: ``tag_id`` (each simulated market carries a topic tag and every
  third one ``Featured``, :func:`market_tags`), ``volume_num_min`` (``volumeNum`` at least this many
  USDC) and ``end_date_min`` / ``end_date_max`` (ISO dates or times, UTC unless they say otherwise:
  ``endDate`` within them, both ends included).

Open markets are listed in the order they opened, resolved ones in the order they resolved; a page is a
slice of that order (no scan of the markets before it unless a filter needs one).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from polyfeed.sim.engine import Exchange, SimMarket
from polyfeed.sim.frames import json_body
from polyfeed.sim.numbers import SCALE, price_text

__all__ = [
    "DEFAULT_LIMIT",
    "EVENT_SIZE",
    "PAGE_LIMIT",
    "TAGS",
    "GammaRest",
    "MarketQuery",
    "Tag",
    "end_date",
    "end_ms",
    "event_document",
    "filter_markets",
    "market_document",
    "market_tags",
]

EVENT_SIZE = 3
PAGE_LIMIT = 500
"""The most markets a page holds (Gamma's cap; public clients page with ``limit=500``)."""
DEFAULT_LIMIT = 100
"""A page's size when ``limit`` is left out."""
_MAX_IDS = 100  # Gamma answers at most 100 ids per request (spec 9.1)
_LONG_DATED_DAYS = 30


@dataclass(frozen=True)
class Tag:
    """One of the local exchange's Gamma tags (its own ids, not the venue's)."""

    id: str
    label: str
    slug: str

    def document(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "slug": self.slug}


_TOPICS = (
    Tag("101", "Politics", "politics"),
    Tag("102", "Crypto", "crypto"),
    Tag("103", "Sports", "sports"),
    Tag("104", "Science", "science"),
)
_FEATURED = Tag("105", "Featured", "featured")
TAGS = (*_TOPICS, _FEATURED)
"""Every tag a simulated market can carry."""


def market_tags(market: SimMarket) -> tuple[Tag, ...]:
    """A market's tags: a topic by its index (``sim-market-0`` Politics, ``-1`` Crypto, ...), and
    ``Featured`` for every third market (``sim-market-0``, ``-3``, ...)."""
    topic = _TOPICS[market.index % len(_TOPICS)]
    return (topic, _FEATURED) if market.index % 3 == 0 else (topic,)


def _event_index(market: SimMarket) -> int:
    return market.index // EVENT_SIZE


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def end_ms(exchange: Exchange, market: SimMarket) -> int:
    """When the market ends (epoch ms): when it resolves on its own, else (long-dated) 30 days and a day
    per index after the exchange's start."""
    if market.resolves_at_ms is not None:
        return market.resolves_at_ms
    return exchange.start_ms + (_LONG_DATED_DAYS + market.index) * 86_400_000


def end_date(exchange: Exchange, market: SimMarket) -> str:
    """:func:`end_ms` as Gamma's ``endDate``, ``2026-09-23T12:00:00Z``."""
    return _iso(end_ms(exchange, market))


def market_document(
    exchange: Exchange, market: SimMarket, *, with_events: bool = True, with_tags: bool = False
) -> dict[str, Any]:
    """One market as Gamma's ``GET /markets`` returns it, open or resolved (``closed``).

    Its best bid and ask come from the market's top of book, without drawing a book that no one has
    read yet (:class:`polyfeed.sim.market.OpeningBook`): paging the universe reads no books.
    """
    closed = market.resolved_at_ms is not None
    document: dict[str, Any] = {
        "id": str(100_000 + market.index),
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "endDate": end_date(exchange, market),
        "outcomes": json.dumps(["Yes", "No"]),
        "clobTokenIds": json.dumps([market.yes, market.no]),
        "active": True,  # the venue leaves closed markets active; ``closed`` is what changes
        "closed": closed,
        "enableOrderBook": not closed,
        "acceptingOrders": not closed,
        "orderPriceMinTickSize": float(market.tick),
        "orderMinSize": float(market.min_order_size),
        "negRisk": market.neg_risk,
        "volume": f"{market.volume:.2f}",
        "volumeNum": market.volume,
        "lastTradePrice": float(market.last_trade_price or 0),  # "" before any trade
    }
    if closed:
        yes_wins = market.yes_wins  # the rule its market_resolved was decided by
        document["outcomePrices"] = json.dumps(["1", "0"] if yes_wins else ["0", "1"])
        document["closedTime"] = _iso(market.resolved_at_ms or exchange.now_ms)
    else:
        bid_key, ask_key = market.best_bid_key, market.best_ask_key
        best_bid = bid_key / SCALE
        best_ask = ask_key / SCALE
        mid = round((best_bid + best_ask) / 2, 4)
        document["outcomePrices"] = json.dumps([str(mid), str(round(1 - mid, 4))])
        document["bestBid"] = float(price_text(bid_key))
        document["bestAsk"] = float(price_text(ask_key))
    if with_tags:
        document["tags"] = [tag.document() for tag in market_tags(market)]
    if with_events:
        document["events"] = [_event_header(_event_index(market), closed=closed)]
    return document


def _event_header(index: int, *, closed: bool = False) -> dict[str, Any]:
    return {
        "id": str(9_000 + index),
        "slug": f"sim-event-{index}",
        "title": f"Simulated event {index}",
        "active": True,
        "closed": closed,
    }


def _event_markets(exchange: Exchange, index: int) -> list[SimMarket]:
    """The markets of event ``index``, open or resolved, found by slug (never by a scan)."""
    slugs = (f"sim-market-{i}" for i in range(index * EVENT_SIZE, (index + 1) * EVENT_SIZE))
    return [m for slug in slugs if (m := exchange.by_slug.get(slug)) is not None]


def event_document(exchange: Exchange, index: int) -> dict[str, Any] | None:
    """One event with its markets, as Gamma's ``GET /events`` returns it; ``None`` if there is none.
    An event is closed when all its markets are."""
    markets = _event_markets(exchange, index)
    if not markets:
        return None
    closed = all(m.resolved_at_ms is not None for m in markets)
    tags = dict.fromkeys(tag for m in markets for tag in market_tags(m))
    return {
        **_event_header(index, closed=closed),
        "description": "Markets of the local exchange",
        "tags": [tag.document() for tag in tags],
        "markets": [market_document(exchange, m, with_events=False) for m in markets],
    }


# -- the query ----------------------------------------------------------------------------------------


def _values(raw: list[str]) -> set[str]:
    return {v for item in raw for v in item.split(",") if v}


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    text = query.get(name)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise ValueError(f"{name} must be true or false")
    return text.lower() == "true"


def _instant_ms(query: Mapping[str, str], name: str) -> int | None:
    """An ISO date or time as epoch ms; a date is its midnight, a time without a zone is UTC."""
    text = query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{name} must be an ISO date or time, e.g. 2026-09-23 or 2026-09-23T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None


@dataclass(frozen=True)
class MarketQuery:
    """What a ``GET /markets`` asks for (see the module's notes for each parameter's meaning)."""

    closed: bool = False
    active: bool | None = None
    slugs: frozenset[str] = frozenset()
    token_ids: frozenset[str] = frozenset()
    condition_ids: frozenset[str] = frozenset()
    tag_id: str | None = None
    volume_min: float | None = None
    end_min_ms: int | None = None
    end_max_ms: int | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, query: Mapping[str, str], multi: Mapping[str, list[str]]) -> MarketQuery:
        """The query of a request (``multi``: every value of each repeatable parameter).

        Raises:
            ValueError: a bad value, a ``limit`` below 1, a negative ``offset``, or more than 100 ids.
        """
        token_ids = _values(multi.get("clob_token_ids", []))
        condition_ids = _values(multi.get("condition_ids", []))
        if len(token_ids) > _MAX_IDS or len(condition_ids) > _MAX_IDS:
            raise ValueError(f"at most {_MAX_IDS} ids per request")
        offset = _integer(query, "offset", 0)
        limit = _integer(query, "limit", DEFAULT_LIMIT)
        if offset < 0 or limit < 1:
            raise ValueError("offset must be >= 0 and limit >= 1")
        volume_min = None
        if "volume_num_min" in query:
            try:
                volume_min = float(query["volume_num_min"])
            except ValueError:
                raise ValueError("volume_num_min must be a number") from None
        return cls(
            closed=bool(_flag(query, "closed")),  # left out: false, as on the venue
            active=_flag(query, "active"),
            slugs=frozenset(_values(multi.get("slug", []))),
            token_ids=frozenset(token_ids),
            condition_ids=frozenset(condition_ids),
            tag_id=query.get("tag_id") or None,
            volume_min=volume_min,
            end_min_ms=_instant_ms(query, "end_date_min"),
            end_max_ms=_instant_ms(query, "end_date_max"),
            offset=offset,
            limit=min(limit, PAGE_LIMIT),  # the venue caps a page; it does not refuse a larger limit
        )

    def predicate(self, exchange: Exchange) -> Callable[[SimMarket], bool] | None:
        """The test a market must pass beyond its state, ``None`` when there is none."""
        tests: list[Callable[[SimMarket], bool]] = []
        if self.token_ids:
            tests.append(lambda m: m.yes in self.token_ids or m.no in self.token_ids)
        if self.condition_ids:
            tests.append(lambda m: m.condition_id in self.condition_ids)
        if self.tag_id is not None:
            tests.append(lambda m: any(tag.id == self.tag_id for tag in market_tags(m)))
        if self.volume_min is not None:
            volume_min = self.volume_min
            tests.append(lambda m: m.volume >= volume_min)
        if self.end_min_ms is not None:
            end_min = self.end_min_ms
            tests.append(lambda m: end_ms(exchange, m) >= end_min)
        if self.end_max_ms is not None:
            end_max = self.end_max_ms
            tests.append(lambda m: end_ms(exchange, m) <= end_max)
        if not tests:
            return None
        return lambda m: all(test(m) for test in tests)


def filter_markets(exchange: Exchange, query: MarketQuery) -> list[SimMarket]:
    """The page of markets a query asks for, in listing order (see the module's notes)."""
    if query.active is False:
        return []  # every market here is active
    closed = query.closed
    candidates: Iterable[SimMarket]
    if query.slugs:  # a lookup: found by slug, never by a scan
        found = (exchange.by_slug.get(slug) for slug in query.slugs)
        candidates = sorted(
            (m for m in found if m is not None and (m.resolved_at_ms is not None) == closed),
            key=lambda m: m.index,
        )
    elif query.token_ids and not closed:
        found = (exchange.by_asset.get(token) for token in query.token_ids)
        candidates = sorted({m.index: m for m in found if m is not None}.values(), key=lambda m: m.index)
    elif query.condition_ids:
        found = (exchange.by_condition.get(c) for c in query.condition_ids)
        candidates = sorted(
            (m for m in found if m is not None and (m.resolved_at_ms is not None) == closed),
            key=lambda m: m.index,
        )
    else:
        candidates = exchange.resolved if closed else exchange.markets
    predicate = query.predicate(exchange)
    end = query.offset + query.limit
    if predicate is None and isinstance(candidates, list):
        return candidates[query.offset : end]
    return list(itertools.islice(filter(predicate, candidates), query.offset, end))


# -- the routes ---------------------------------------------------------------------------------------


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
            query = MarketQuery.parse(request.query, _multi(request))
        except ValueError as exc:
            return json_body({"error": str(exc)}, status=400)
        with_tags = request.query.get("include_tag", "").lower() == "true"
        markets = filter_markets(self.exchange, query)
        return json_body([market_document(self.exchange, m, with_tags=with_tags) for m in markets])

    async def market_by_slug(self, request: web.Request) -> web.Response:
        """One market, open or resolved (the path form is a lookup, not a listing)."""
        market = self.exchange.by_slug.get(request.match_info["slug"])
        if market is None:
            return json_body({"error": "market not found"}, status=404)
        return json_body(market_document(self.exchange, market, with_tags=True))

    async def events(self, request: web.Request) -> web.Response:
        """Events by ``slug``, or a page of them (``closed``, ``limit``, ``offset`` as for markets)."""
        try:
            query = MarketQuery.parse(request.query, {})
        except ValueError as exc:
            return json_body({"error": str(exc)}, status=400)
        slugs = _values(request.query.getall("slug", []))
        indexes: Iterable[int]
        if slugs:
            indexes = sorted(i for slug in slugs if (i := _event_number(slug)) is not None)
        else:  # the events of the markets listed, each once, in listing order; closed when all are
            listed = self.exchange.resolved if query.closed else self.exchange.markets
            indexes = (
                i
                for i in dict.fromkeys(_event_index(m) for m in listed)
                if all(m.resolved_at_ms is not None for m in _event_markets(self.exchange, i)) == query.closed
            )
        page = itertools.islice(indexes, query.offset, query.offset + query.limit)
        return json_body([e for i in page if (e := event_document(self.exchange, i)) is not None])

    async def event_by_slug(self, request: web.Request) -> web.Response:
        index = _event_number(request.match_info["slug"])
        event = None if index is None else event_document(self.exchange, index)
        if event is None:
            return json_body({"error": "event not found"}, status=404)
        return json_body(event)


def _event_number(slug: str) -> int | None:
    prefix = "sim-event-"
    number = slug[len(prefix) :]
    return int(number) if slug.startswith(prefix) and number.isdigit() else None


def _multi(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}
