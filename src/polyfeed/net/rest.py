"""REST and Gamma calls the streams need: book metadata for the hash, and slugs to token ids."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import aiohttp

from polyfeed.errors import PolyfeedError, SubscriptionError
from polyfeed.wire import Book, decode_market

__all__ = ["fetch_books", "resolve_slugs", "slug_of"]

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
        value = json.loads(value) if value else []
    return [str(v) for v in value] if isinstance(value, list) else []


async def _get(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    async with http.get(url, params=params) as response:
        if response.status == 404:
            return []
        if response.status != 200:
            raise PolyfeedError(f"GET {url} answered HTTP {response.status}")
        data = await response.json(content_type=None)
    return data if isinstance(data, list) else [data]
