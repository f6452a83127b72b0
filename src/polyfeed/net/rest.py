"""REST and Gamma calls the streams need: book metadata for the hash, and slugs to token ids."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import urlparse

import aiohttp
import msgspec

from polyfeed.errors import AuthenticationError, FrameDecodeError, PolyfeedError, SubscriptionError
from polyfeed.wire import Book, Credentials, Order, Trade, decode_json, decode_market
from polyfeed.wire.signing import l2_headers

__all__ = ["fetch_books", "fetch_open_orders", "fetch_order", "fetch_trades", "resolve_slugs", "slug_of"]

END_CURSOR = "LTE="
"""``next_cursor`` of the last page (py-clob-client)."""
_MAX_PAGES = 1000
T = TypeVar("T", Order, Trade)

_BOOKS_PER_CALL = 500  # POST /books takes up to 500 tokens (spec 8.1)


async def fetch_books(http: aiohttp.ClientSession, rest_url: str, assets: Iterable[str]) -> list[Book]:
    """``POST /books`` in chunks: each book with ``min_order_size``, ``tick_size`` and ``neg_risk``, which
    the hash needs and the WebSocket never sends (spec 7.3). Unknown tokens are left out.

    Raises:
        PolyfeedError: the venue answered with an error.
    """
    ids = list(assets)
    books: list[Book] = []
    for start in range(0, len(ids), _BOOKS_PER_CALL):
        body = [{"token_id": a} for a in ids[start : start + _BOOKS_PER_CALL]]
        async with http.post(rest_url.rstrip("/") + "/books", json=body) as response:
            if response.status != 200:
                raise PolyfeedError(f"POST /books answered HTTP {response.status}")
            data = await response.read()
        books.extend(m for m in decode_market(data) if isinstance(m, Book))
    return books


def slug_of(text: str) -> tuple[str, str | None]:
    """A slug from a slug or a polymarket.com URL; the second item says ``event`` or ``market`` when the
    URL tells (``https://polymarket.com/event/<slug>``)."""
    if "://" not in text:
        return text.strip("/"), None
    parts = [p for p in urlparse(text).path.split("/") if p]
    if len(parts) >= 2 and parts[0] in ("event", "market"):
        return parts[1], parts[0]
    if parts:
        return parts[-1], None
    raise SubscriptionError(f"no slug in {text!r}")


async def resolve_slugs(http: aiohttp.ClientSession, gamma_url: str, slugs: Iterable[str]) -> list[str]:
    """Token ids behind market slugs, event slugs or polymarket.com URLs, in outcome order (spec 9).

    Raises:
        SubscriptionError: a slug that names no market or event.
    """
    tokens: list[str] = []
    base = gamma_url.rstrip("/")
    for text in slugs:
        slug, kind = slug_of(text)
        markets: list[dict[str, Any]] = []
        if kind != "event":
            markets = await _get(http, f"{base}/markets", {"slug": slug})
        if not markets:
            for event in await _get(http, f"{base}/events", {"slug": slug}):
                markets.extend(event.get("markets") or [])
        if not markets:
            raise SubscriptionError(f"Gamma knows no market or event {slug!r}")
        for market in markets:
            tokens.extend(_token_ids(market.get("clobTokenIds")))
    return list(dict.fromkeys(tokens))


def _token_ids(value: object) -> list[str]:
    # Gamma sends a JSON-encoded string ("decode twice", spec 9.2); trimmed fixtures send a real list.
    if isinstance(value, str):
        try:
            value = decode_json(value) if value else []
        except FrameDecodeError:
            value = []
    return [str(v) for v in value] if isinstance(value, list) else []


async def _get(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    async with http.get(url, params=params) as response:
        if response.status == 404:
            return []
        if response.status != 200:
            raise PolyfeedError(f"GET {url} answered HTTP {response.status}")
        data = await _json(response, f"GET {url}")
    return data if isinstance(data, list) else [data]


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
    async with http.get(rest_url.rstrip("/") + path, params=params, headers=headers) as response:
        if response.status in (401, 403):
            raise AuthenticationError(
                f"GET {path} answered HTTP {response.status}: the venue refused the credentials "
                f"(api key {credentials.api_key[:4]}...)"
            )
        if response.status == 404:
            return None
        if response.status != 200:
            raise PolyfeedError(f"GET {path} answered HTTP {response.status}")
        return await _json(response, f"GET {path}")


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    """The body as JSON; a 200 whose body is not JSON (a proxy's HTML page, say) is a
    :class:`PolyfeedError` the caller already handles, never a ``JSONDecodeError`` out of its task."""
    body = await response.read()
    try:
        return decode_json(body)
    except FrameDecodeError:
        raise PolyfeedError(f"{what} answered HTTP {response.status} with a body that is not JSON") from None


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
        PolyfeedError: another error answer.
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
