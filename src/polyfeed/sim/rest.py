"""The local exchange's CLOB REST calls on books (spec 8.1), answered from the engine's books.

Unknown tokens get 404 ``{"error": "No orderbook exists for the requested token id"}``, as on the venue.
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from polyfeed.sim.connection import parse_json
from polyfeed.sim.engine import Exchange
from polyfeed.sim.frames import rest_book
from polyfeed.wire import Book

__all__ = ["BookRest"]

_NO_BOOK = {"error": "No orderbook exists for the requested token id"}


class BookRest:
    """``GET /book``, ``POST /books``, ``GET /price``, ``GET /midpoint``, ``GET /tick-size``."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def register(self, app: web.Application) -> None:
        app.router.add_get("/book", self._get_book)
        app.router.add_post("/books", self._post_books)
        app.router.add_get("/price", self._get_price)
        app.router.add_get("/midpoint", self._get_midpoint)
        app.router.add_get("/tick-size", self._get_tick_size)

    def _book_or_404(self, token_id: str | None) -> Book | web.Response:
        if not token_id:
            return web.json_response({"error": "token_id is required"}, status=400)
        if token_id not in self.exchange.by_asset:
            return web.json_response(_NO_BOOK, status=404)
        return self.exchange.book(token_id)

    async def _get_book(self, request: web.Request) -> web.Response:
        book = self._book_or_404(request.query.get("token_id"))
        return book if isinstance(book, web.Response) else web.json_response(rest_book(book))

    async def _post_books(self, request: web.Request) -> web.Response:
        body = parse_json(await request.text())
        if not isinstance(body, list) or len(body) > 500:
            return web.json_response({"error": "body must be a list of at most 500 {token_id}"}, status=400)
        out = []
        for item in body:
            token = item.get("token_id") if isinstance(item, dict) else None
            if isinstance(token, str) and token in self.exchange.by_asset:
                out.append(rest_book(self.exchange.book(token)))
        return web.json_response(out)

    async def _get_price(self, request: web.Request) -> web.Response:
        book = self._book_or_404(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        side = request.query.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            return web.json_response({"error": "side must be BUY or SELL"}, status=400)
        # BUY is the price you would buy at, the best ask; SELL the best bid (spec 8.1)
        levels = book.asks if side == "BUY" else book.bids
        return web.json_response({"price": levels[-1].price if levels else "0"})

    async def _get_midpoint(self, request: web.Request) -> web.Response:
        book = self._book_or_404(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        if not (book.bids and book.asks):
            return web.json_response(_NO_BOOK, status=404)
        mid = (Decimal(book.bids[-1].price) + Decimal(book.asks[-1].price)) / 2
        return web.json_response({"mid": str(mid.normalize())})

    async def _get_tick_size(self, request: web.Request) -> web.Response:
        book = self._book_or_404(request.query.get("token_id"))
        if isinstance(book, web.Response):
            return book
        return web.json_response({"minimum_tick_size": float(book.tick_size or "0.01")})
