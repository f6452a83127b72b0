"""CLOB REST calls: book metadata for the hash (``POST /books``), and the L2-signed account calls the
user channel's reconciliation needs. Gamma's calls are in :mod:`polyfeed.net.gamma`.

Failures are polyfeed's errors, never aiohttp's: :class:`polyfeed.errors.VenueUnreachableError` when
the API cannot be reached, :class:`polyfeed.errors.VenueError` with the HTTP ``status`` for an error
answer, :class:`polyfeed.errors.AuthenticationError` for refused credentials.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, TypeVar

import aiohttp
import msgspec

from polyfeed.errors import AuthenticationError, PolyfeedError
from polyfeed.net.transport import call, error_answer, read_json
from polyfeed.wire import Book, Credentials, Order, Trade, decode_market
from polyfeed.wire.signing import l2_headers

__all__ = ["END_CURSOR", "fetch_books", "fetch_open_orders", "fetch_order", "fetch_trades", "rest_row"]

END_CURSOR = "LTE="
"""``next_cursor`` of the last page (py-clob-client)."""
_MAX_PAGES = 1000
T = TypeVar("T", Order, Trade)

_BOOKS_PER_CALL = 500  # POST /books takes up to 500 tokens (spec 8.1)


async def fetch_books(http: aiohttp.ClientSession, rest_url: str, assets: Iterable[str]) -> list[Book]:
    """``POST /books`` in chunks: each book with ``min_order_size``, ``tick_size`` and ``neg_risk``, which
    the hash needs and the WebSocket never sends (spec 7.3). Unknown tokens are left out.

    Raises:
        VenueError: the venue answered with an error (``status``), or could not be reached
            (:class:`polyfeed.errors.VenueUnreachableError`).
    """
    ids = list(assets)
    books: list[Book] = []
    url = rest_url.rstrip("/") + "/books"
    for start in range(0, len(ids), _BOOKS_PER_CALL):
        body = [{"token_id": a} for a in ids[start : start + _BOOKS_PER_CALL]]
        async with call(http, "POST", url, json=body) as response:
            if response.status != 200:
                raise error_answer(response, url)
            data = await response.read()
        books.extend(m for m in decode_market(data) if isinstance(m, Book))
    return books


# -- L2-signed account calls (spec 8.3) -----------------------------------------------------------------


async def _signed_get(
    http: aiohttp.ClientSession,
    rest_url: str,
    path: str,
    params: dict[str, str],
    credentials: Credentials,
    address: str,
) -> Any:
    # The signature covers the path without its query string, as py-clob-client and the Rust client sign.
    headers = l2_headers(credentials, address, str(int(time.time())), "GET", path)
    url = rest_url.rstrip("/") + path
    async with call(http, "GET", url, params=params, headers=headers) as response:
        if response.status in (401, 403):
            raise AuthenticationError(
                f"GET {path} answered HTTP {response.status}: the venue refused the credentials "
                f"(api key {credentials.api_key[:4]}...)",
                url=url,
                status=response.status,
            )
        if response.status == 404:
            return None
        if response.status != 200:
            raise error_answer(response, url)
        # a 200 whose body is not JSON (a proxy's HTML page) is a VenueError the caller already handles
        return await read_json(response, url)


async def _paged(
    http: aiohttp.ClientSession,
    rest_url: str,
    path: str,
    params: dict[str, str],
    credentials: Credentials,
    address: str,
    kind: type[T],
) -> list[T]:
    rows: list[T] = []
    cursor = ""
    for _ in range(_MAX_PAGES):
        page = await _signed_get(
            http,
            rest_url,
            path,
            {**params, **({"next_cursor": cursor} if cursor else {})},
            credentials,
            address,
        )
        if isinstance(page, list):  # some deployments answer a bare list
            data, cursor = page, END_CURSOR
        elif isinstance(page, dict):
            data, cursor = page.get("data") or [], str(page.get("next_cursor") or END_CURSOR)
        else:
            break
        rows.extend(rest_row(row, kind) for row in data if isinstance(row, dict))
        if cursor == END_CURSOR:
            break
    return rows


def rest_row(row: dict[str, Any], kind: type[T]) -> T:
    """A REST order or trade row as the channel's struct: numbers the REST API sends as JSON numbers
    (``created_at``, ``expiration``, times) become the channel's strings.

    Raises:
        PolyfeedError: a row without the fields every order or trade has.
    """
    fixed = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) and k != "bucket_index" else v
        for k, v in row.items()
    }
    fixed.pop("event_type", None)
    try:
        return msgspec.convert(fixed, kind)
    except msgspec.ValidationError as exc:
        raise PolyfeedError(f"a REST {kind.__name__.lower()} row does not fit: {exc}") from None


async def fetch_open_orders(
    http: aiohttp.ClientSession,
    rest_url: str,
    credentials: Credentials,
    address: str = "",
    markets: Iterable[str] = (),
) -> list[Order]:
    """``GET /data/orders``: your open orders (of ``markets`` only, when given), every page.

    Raises:
        AuthenticationError: HTTP 401/403.
        VenueError: another error answer, or no answer (:class:`polyfeed.errors.VenueUnreachableError`).
    """
    scopes = list(markets) or [""]
    orders: list[Order] = []
    for market in scopes:
        params = {"market": market} if market else {}
        orders.extend(await _paged(http, rest_url, "/data/orders", params, credentials, address, Order))
    return orders


async def fetch_order(
    http: aiohttp.ClientSession, rest_url: str, credentials: Credentials, order_id: str, address: str = ""
) -> Order | None:
    """``GET /data/order/{id}``: one order in any state; ``None`` when the venue does not know it."""
    row = await _signed_get(http, rest_url, f"/data/order/{order_id}", {}, credentials, address)
    return rest_row(row, Order) if isinstance(row, dict) and row else None


async def fetch_trades(
    http: aiohttp.ClientSession,
    rest_url: str,
    credentials: Credentials,
    address: str = "",
    markets: Iterable[str] = (),
    after_s: int | None = None,
) -> list[Trade]:
    """``GET /data/trades``: your trades (of ``markets`` only, when given; since ``after_s``), every page."""
    scopes = list(markets) or [""]
    trades: list[Trade] = []
    for market in scopes:
        params = {"market": market} if market else {}
        if after_s is not None:
            params["after"] = str(after_s)
        trades.extend(await _paged(http, rest_url, "/data/trades", params, credentials, address, Trade))
    return trades
