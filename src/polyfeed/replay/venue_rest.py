"""The CLOB REST calls on books (spec 8.1) for a served recording, answered from the books its replay
has rebuilt (:class:`polyfeed.replay.serve.RecordingServer` says which books those are).

The shapes are the venue's, as the local exchange (``polyfeed.sim.rest``) gives them; they are written
here again because the replay layer must not depend on the simulator. Unknown tokens get 404
``{"error": "No orderbook exists for the requested token id"}`` (spec 8.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from polyfeed.book import BookStatus, OrderBook
from polyfeed.errors import FrameDecodeError
from polyfeed.wire import decode_json

__all__ = ["BookSource", "VenueRest", "book_snapshot", "rest_book"]

BookSource = Callable[[str], OrderBook | None]
"""The book of a token as REST should answer it now, or ``None`` when there is none."""

_NO_BOOK = {"error": "No orderbook exists for the requested token id"}
_MAX_BOOKS = 500  # POST /books takes up to 500 tokens (spec 8.1)


def _levels(book: OrderBook) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    bids, asks = book.wire_levels()  # wire order: bids ascending, asks descending (spec 4.1)
    return (
        [{"price": lv.price, "size": lv.size} for lv in bids],
        [{"price": lv.price, "size": lv.size} for lv in asks],
    )


def _head(book: OrderBook) -> dict[str, Any]:
    """The fields every ``book`` shape opens with, in the venue's order, the hash over the book as it is
    (spec 7.1; the metadata REST gave it included)."""
    ts = book.timestamp or "0"
    bids, asks = _levels(book)
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        "timestamp": ts,
        "hash": book.compute_hash(ts),
        "bids": bids,
        "asks": asks,
    }


def rest_book(book: OrderBook) -> dict[str, Any]:
    """The REST ``GET /book`` shape (spec 8.1)."""
    return {
        **_head(book),
        "min_order_size": book.min_order_size,
        "tick_size": book.tick_size,
        "neg_risk": book.neg_risk,
        # The hash covers the text "" when no trade is known; sending "" keeps a client's hash equal.
        "last_trade_price": book.last_trade_price or "",
    }


def book_snapshot(book: OrderBook) -> dict[str, Any]:
    """A subscription's ``book`` message, in the venue's key order for initial books (spec 3), with
    ``tick_size`` and ``last_trade_price`` and the hash a client recomputes from exactly these fields
    (plus the ``min_order_size`` / ``neg_risk`` REST gave it, spec 7.3)."""
    message = _head(book)
    if book.tick_size is not None:  # an unknown tick is hashed as "": leave the client's alone
        message["tick_size"] = book.tick_size
    message["event_type"] = "book"
    message["last_trade_price"] = book.last_trade_price or ""
    return message


class VenueRest:
    """``GET /book``, ``POST /books``, ``GET /price``, ``GET /midpoint``, ``GET /spread``,
    ``GET /tick-size``, ``GET /neg-risk``, and the health calls ``GET /`` and ``GET /time`` that the
    official clients make first (spec 12, REST companion).

    Args:
        source: the book of a token at the moment of the call.
    """

    def __init__(self, source: BookSource) -> None:
        self.source = source
        self.calls = 0

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get("/book", self._get_book)
        app.router.add_post("/books", self._post_books)
        app.router.add_get("/price", self._get_price)
        app.router.add_get("/midpoint", self._get_midpoint)
        app.router.add_get("/tick-size", self._get_tick_size)
        app.router.add_get("/spread", self._get_spread)
        app.router.add_get("/neg-risk", self._get_neg_risk)
        app.router.add_get("/", self._get_ok)
        app.router.add_get("/time", self._get_time)

    def _book(self, token_id: str) -> OrderBook | None:
        book = self.source(token_id)
        return book if book is not None and book.status is not BookStatus.SYNCING else None

    def _book_or_error(self, request: web.Request) -> OrderBook | web.Response:
        self.calls += 1
        token_id = request.query.get("token_id")
        if not token_id:
            return web.json_response({"error": "token_id is required"}, status=400)
        book = self._book(token_id)
        return book if book is not None else web.json_response(_NO_BOOK, status=404)

    async def _get_book(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request)
        return book if isinstance(book, web.Response) else web.json_response(rest_book(book))

    async def _post_books(self, request: web.Request) -> web.Response:
        self.calls += 1
        try:
            body = decode_json(await request.read())
        except FrameDecodeError:
            body = None
        if not isinstance(body, list) or len(body) > _MAX_BOOKS:
            return web.json_response({"error": "body must be a list of at most 500 {token_id}"}, status=400)
        out = []
        for item in body:
            token = item.get("token_id") if isinstance(item, dict) else None
            book = self._book(token) if isinstance(token, str) else None
            if book is not None:  # unknown tokens are left out, as on the venue
                out.append(rest_book(book))
        return web.json_response(out)

    async def _get_price(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request)
        if isinstance(book, web.Response):
            return book
        side = request.query.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            return web.json_response({"error": "side must be BUY or SELL"}, status=400)
        # BUY is the price you would buy at, the best ask; SELL the best bid (spec 8.1)
        bids, asks = book.wire_levels()
        levels = asks if side == "BUY" else bids
        return web.json_response({"price": levels[-1].price if levels else "0"})

    async def _get_midpoint(self, request: web.Request) -> web.Response:
        return self._derived(request, "mid", lambda book: book.mid)

    async def _get_spread(self, request: web.Request) -> web.Response:
        return self._derived(request, "spread", lambda book: book.spread)

    def _derived(
        self, request: web.Request, key: str, value: Callable[[OrderBook], Decimal | None]
    ) -> web.Response:
        """A number derived from both sides of the book (404 when a side is empty, as the venue)."""
        book = self._book_or_error(request)
        if isinstance(book, web.Response):
            return book
        number = value(book)
        if number is None:
            return web.json_response(_NO_BOOK, status=404)
        return web.json_response({key: str(number.normalize())})

    async def _get_tick_size(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request)
        if isinstance(book, web.Response):
            return book
        return web.json_response({"minimum_tick_size": float(book.tick_size or "0.01")})

    async def _get_neg_risk(self, request: web.Request) -> web.Response:
        book = self._book_or_error(request)
        if isinstance(book, web.Response):
            return book
        return web.json_response({"neg_risk": book.neg_risk})

    async def _get_ok(self, request: web.Request) -> web.Response:
        return web.json_response("OK")

    async def _get_time(self, request: web.Request) -> web.Response:
        # The server's clock in Unix seconds, as the venue answers it; a recording has no clock of its
        # own worth giving (its timeline may be paused or run faster), so this is the host's.
        return web.json_response(int(time.time()))
