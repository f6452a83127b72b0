"""The local exchange's public CLOB REST calls (spec 8.1, 12 "REST companion"), answered from its engine.

What the official clients call on their read and order paths: books, prices, midpoints and spreads (one
token by query, or many by a JSON body of ``[{"token_id": ...}]``, at most 500), tick size, neg risk,
last trade price(s), the CLOB market by condition id, the server time and the health check ``/``.

Errors are JSON ``{"error": ...}`` bodies, never aiohttp's plain-text pages, on every path served here:

- no or empty ``token_id``: 400; a body that is not a list of ``{"token_id": str}``: 400 ``Invalid
  payload``; more than 500 of them: 400 ``Payload exceeds the limit`` (the venue's texts, OpenAPI);
- an unknown token (or a book without the side asked for): 404 ``{"error": "No orderbook exists for the
  requested token id"}``, as on the venue (spec 8.1); the batch calls leave unknown tokens out, except
  ``POST /prices``, which the venue documents as answering 404;
- another method than the path's: 405, with ``Allow``.

``GET /markets`` (no path parameter) is Gamma's, served by :class:`polyfeed.sim.Simulator`; only
``/markets/{condition_id}`` is the CLOB's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from polyfeed.sim.clobmarket import clob_market_document, find_market
from polyfeed.sim.connection import parse_json
from polyfeed.sim.engine import Exchange, SimMarket
from polyfeed.sim.frames import json_body, rest_book
from polyfeed.wire import Book

__all__ = ["BATCH_LIMIT", "NO_BOOK", "BookRest"]

NO_BOOK = "No orderbook exists for the requested token id"
BATCH_LIMIT = 500  # tokens per batch call (spec 8.1)
_SIDES = ("BUY", "SELL")

_Handler = Callable[[web.Request], Awaitable[web.Response]]


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _best(book: Book, side: str) -> str | None:
    """The price a ``side`` order would trade at: BUY at the best ask, SELL at the best bid (spec 8.1).

    Levels arrive best last (spec 4.1).
    """
    levels = book.asks if side == "BUY" else book.bids
    return levels[-1].price if levels else None


def _mid(book: Book) -> str | None:
    if not (book.bids and book.asks):
        return None
    return _text((Decimal(book.bids[-1].price) + Decimal(book.asks[-1].price)) / 2)


def _spread(book: Book) -> str | None:
    if not (book.bids and book.asks):
        return None
    return _text(Decimal(book.asks[-1].price) - Decimal(book.bids[-1].price))


def _text(value: Decimal) -> str:
    """A price as the venue writes it: trimmed, never an exponent (``"0.04"``, ``"0.5"``, spec 6)."""
    return format(value.normalize(), "f")


class BookRest:
    """The public CLOB calls; :meth:`register` adds them to the simulator's app.

    Args:
        exchange: the engine whose books and markets answer.
    """

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def register(self, app: web.Application) -> None:
        """Add every route, each path with a JSON 405 for the methods it does not serve."""
        gets: dict[str, _Handler] = {
            "/": self._get_ok,
            "/time": self._get_time,
            "/book": self._get_book,
            "/price": self._get_price,
            "/midpoint": self._get_midpoint,
            "/spread": self._get_spread,
            "/tick-size": self._get_tick_size,
            "/neg-risk": self._get_neg_risk,
            "/last-trade-price": self._get_last_trade_price,
            "/markets/{condition_id}": self._get_market,
        }
        posts: dict[str, _Handler] = {
            "/books": self._post_books,
            "/prices": self._post_prices,
            "/midpoints": self._post_midpoints,
            "/spreads": self._post_spreads,
            "/last-trades-prices": self._post_last_trades_prices,
        }
        for path, handler in gets.items():
            app.router.add_get(path, handler)
            app.router.add_route("*", path, _not_allowed("GET, HEAD"))
        for path, handler in posts.items():
            app.router.add_post(path, handler)
            app.router.add_route("*", path, _not_allowed("POST"))

    # -- lookups --------------------------------------------------------------------------------------

    def _market_or_error(self, token_id: str | None) -> SimMarket | web.Response:
        if not token_id:
            return _error("token_id is required", 400)
        market = self.exchange.by_asset.get(token_id)
        return market if market is not None else _error(NO_BOOK, 404)

    def _book_or_error(self, token_id: str | None) -> Book | web.Response:
        market = self._market_or_error(token_id)
        if isinstance(market, web.Response):
            return market
        assert token_id is not None  # _market_or_error answered 400 otherwise
        return self.exchange.book(token_id)

    def _books_of(self, items: list[dict[str, Any]]) -> list[Book]:
        """The books of a batch's known tokens, in the request's order."""
        known = self.exchange.by_asset
        return [self.exchange.book(i["token_id"]) for i in items if i["token_id"] in known]

    # -- health and time ------------------------------------------------------------------------------

    async def _get_ok(self, request: web.Request) -> web.Response:
        # py-clob-client's get_ok returns the decoded JSON body: the venue answers the JSON string "OK"
        return web.json_response("OK")

    async def _get_time(self, request: web.Request) -> web.Response:
        # A bare integer of Unix seconds, as the venue answers (py-clob-client get_server_time decodes it).
        # The exchange's own clock, which stamps its books and messages, not the host's wall clock.
        return web.json_response(self.exchange.now_ms // 1000)

    # -- books ----------------------------------------------------------------------------------------

    async def _get_book(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request.query.get("token_id"))
        return book if isinstance(book, web.Response) else json_body(rest_book(book))

    async def _post_books(self, request: web.Request) -> web.Response:
        items = await _batch(request)
        if isinstance(items, web.Response):
            return items
        return json_body([rest_book(book) for book in self._books_of(items)])

    # -- prices, midpoints, spreads -------------------------------------------------------------------

    async def _get_price(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        side = request.query.get("side", "").upper()
        if side not in _SIDES:
            return _error("Invalid side", 400)
        return web.json_response({"price": _best(book, side) or "0"})

    async def _post_prices(self, request: web.Request) -> web.Response:
        items = await _batch(request)
        if isinstance(items, web.Response):
            return items
        prices: dict[str, dict[str, str]] = {}
        for item in items:
            side = item.get("side")
            if not isinstance(side, str) or side.upper() not in _SIDES:
                return _error("Invalid side", 400)
            if item["token_id"] not in self.exchange.by_asset:
                return _error(NO_BOOK, 404)  # the venue documents a 404 here, not an omission
            book = self.exchange.book(item["token_id"])
            prices.setdefault(book.asset_id, {})[side.upper()] = _best(book, side.upper()) or "0"
        return web.json_response(prices)

    async def _get_midpoint(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        mid = _mid(book)
        return _error(NO_BOOK, 404) if mid is None else web.json_response({"mid": mid})

    async def _post_midpoints(self, request: web.Request) -> web.Response:
        items = await _batch(request)
        if isinstance(items, web.Response):
            return items
        mids = {book.asset_id: _mid(book) for book in self._books_of(items)}
        return web.json_response({token: mid for token, mid in mids.items() if mid is not None})

    async def _get_spread(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        spread = _spread(book)
        return _error(NO_BOOK, 404) if spread is None else web.json_response({"spread": spread})

    async def _post_spreads(self, request: web.Request) -> web.Response:
        items = await _batch(request)
        if isinstance(items, web.Response):
            return items
        spreads = {book.asset_id: _spread(book) for book in self._books_of(items)}
        return web.json_response({token: s for token, s in spreads.items() if s is not None})

    # -- market metadata ------------------------------------------------------------------------------

    async def _get_tick_size(self, request: web.Request) -> web.Response:
        market = self._market_or_error(request.query.get("token_id"))
        if isinstance(market, web.Response):
            return market
        # a JSON number, as on the venue; py-clob-client takes str() of it ("0.01")
        return web.json_response({"minimum_tick_size": float(market.tick)})

    async def _get_neg_risk(self, request: web.Request) -> web.Response:
        market = self._market_or_error(request.query.get("token_id"))
        if isinstance(market, web.Response):
            return market
        return web.json_response({"neg_risk": market.neg_risk})

    async def _get_last_trade_price(self, request: web.Request) -> web.Response:
        market = self._market_or_error(request.query.get("token_id"))
        if isinstance(market, web.Response):
            return market
        return web.json_response(_last_trade(market))

    async def _post_last_trades_prices(self, request: web.Request) -> web.Response:
        items = await _batch(request)
        if isinstance(items, web.Response):
            return items
        known = self.exchange.by_asset
        return web.json_response(
            [
                {"token_id": item["token_id"], **_last_trade(known[item["token_id"]])}
                for item in items
                if item["token_id"] in known
            ]
        )

    async def _get_market(self, request: web.Request) -> web.Response:
        found = find_market(self.exchange, request.match_info["condition_id"])
        if found is None:
            return _error("market not found", 404)
        market, resolved = found
        return web.json_response(clob_market_document(self.exchange, market, resolved=resolved))


def _last_trade(market: SimMarket) -> dict[str, str]:
    """``{"price", "side"}`` of the market's last trade (trimmed text, spec 4.4); before any trade the
    venue answers price "0.5" and side "" (its OpenAPI). Both tokens of a market share it, as their
    books' ``last_trade_price`` does in the engine."""
    return {"price": market.last_trade_price or "0.5", "side": market.last_trade_side}


async def _batch(request: web.Request) -> list[dict[str, Any]] | web.Response:
    """A batch call's body, ``[{"token_id": str, ...}]`` of at most :data:`BATCH_LIMIT`, or the 400."""
    body = parse_json(await request.text())
    if not isinstance(body, list) or not all(
        isinstance(item, dict) and isinstance(item.get("token_id"), str) and item["token_id"] for item in body
    ):
        return _error("Invalid payload", 400)
    if len(body) > BATCH_LIMIT:
        return _error("Payload exceeds the limit", 400)
    return body


def _not_allowed(allow: str) -> _Handler:
    async def handler(request: web.Request) -> web.Response:
        response = _error(f"method {request.method} not allowed on {request.path}", 405)
        response.headers["Allow"] = allow
        return response

    return handler
