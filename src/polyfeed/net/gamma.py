"""Gamma, the venue's market directory: the tokens behind what a person types (a market or event slug,
a polymarket.com URL, a token id, a condition id), for streams and the command line alike.

Gamma (``gamma-api.polymarket.com``) knows markets by slug, condition id and token id, and events by
slug; its ``outcomes``, ``clobTokenIds`` and ``outcomePrices`` are JSON-encoded strings inside the JSON
(spec 9.2). Tick size, minimum order size and neg-risk come from Gamma too, and from REST ``POST /books``
where Gamma leaves them out (:func:`complete_from_books`).

The whole market (:func:`active_markets`): Gamma's ``GET /markets?active=true&closed=false`` paged with
``limit`` (500, the most Gamma gives a page) and ``offset`` until a page comes back short, as public
clients page it; each page retried with a doubling pause on no answer, HTTP 429 or 5xx (Gamma allows
300 ``/markets`` calls per 10 s, spec 8.4). Only markets with an order book (``enableOrderBook``) and
their tokens listed (a new market shows ``clobTokenIds: "[]"`` for minutes, spec 9.2) are kept; a market
met twice (the pages shift as markets open and close during the walk) is kept once. Gamma's own filters
narrow the universe (:class:`MarketFilter`: a tag, a minimum volume, an end-date window).

Every call raises polyfeed's errors, never aiohttp's: :class:`polyfeed.errors.VenueUnreachableError`
when Gamma cannot be reached, :class:`polyfeed.errors.VenueError` (with its ``status``) when it answers
with an error, :class:`polyfeed.errors.SubscriptionError` when it knows nothing by the name given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

import aiohttp

from polyfeed.errors import FrameDecodeError, SubscriptionError, VenueError
from polyfeed.net.rest import fetch_books
from polyfeed.net.transport import call, error_answer, read_json
from polyfeed.wire import decode_json

__all__ = [
    "GammaMarket",
    "MarketFilter",
    "TokenInfo",
    "active_markets",
    "complete_from_books",
    "is_token_id",
    "label_tokens",
    "lookup",
    "resolve_slug_tokens",
    "resolve_slugs",
    "resolve_targets",
    "slug_of",
]

log = logging.getLogger(__name__)

_CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_IDS_PER_CALL = 100  # Gamma answers at most 100 ids a request (spec 9.1)
PAGE_SIZE = 500
"""Markets a ``GET /markets`` page holds at most: Gamma's cap, the ``limit`` public clients page with."""
_PAGE_TRIES = 5


@dataclass(frozen=True)
class TokenInfo:
    """One outcome token of a market, as Gamma (and REST, for what Gamma leaves out) describes it."""

    token_id: str
    outcome: str
    market_slug: str
    question: str
    condition_id: str
    event_slug: str | None = None
    event_title: str | None = None
    price: str | None = None
    tick_size: str | None = None
    min_order_size: str | None = None
    neg_risk: bool | None = None

    @property
    def complete(self) -> bool:
        """Whether tick size, minimum size and neg-risk are all known."""
        return None not in (self.tick_size, self.min_order_size, self.neg_risk)


@dataclass(frozen=True)
class MarketFilter:
    """Gamma's filters for a partial universe, sent with every page (Gamma applies them).

    Args:
        tag_id: only markets carrying this tag (Gamma's ``tag_id``).
        volume_min: only markets with at least this volume, in USDC (``volume_num_min``).
        end_date_min: only markets ending on or after this ISO date or time (``end_date_min``).
        end_date_max: only markets ending on or before this ISO date or time (``end_date_max``).
        shard: ``(I, N)``: only the markets :func:`shard_of` gives to the I-th of N collectors (applied
            here, not by Gamma: the listing is the same for every shard).
    """

    tag_id: str | None = None
    volume_min: float | None = None
    end_date_min: str | None = None
    end_date_max: str | None = None
    shard: tuple[int, int] | None = None

    def keeps(self, condition_id: str) -> bool:
        """Whether this filter's shard follows the market (every market without a shard)."""
        return self.shard is None or shard_of(condition_id, self.shard[1]) == self.shard[0]

    @property
    def gamma_only(self) -> MarketFilter:
        """The filters Gamma applies (this filter without its shard)."""
        return replace(self, shard=None)

    def params(self) -> list[tuple[str, str]]:
        pairs = [
            ("tag_id", self.tag_id),
            ("volume_num_min", None if self.volume_min is None else format(self.volume_min, "g")),
            ("end_date_min", self.end_date_min),
            ("end_date_max", self.end_date_max),
        ]
        return [(name, value) for name, value in pairs if value is not None]

    def __str__(self) -> str:
        pairs = [f"{name}={value}" for name, value in self.params()]
        if self.shard is not None:
            pairs.append(f"shard={self.shard[0]}/{self.shard[1]}")
        return " ".join(pairs) or "none"


def shard_of(condition_id: str, shards: int) -> int:
    """Which of ``shards`` collectors follows a market: a digest of its condition id, so stable across
    processes, machines and versions, with both tokens of a market on the same one."""
    digest = hashlib.blake2b(condition_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


@dataclass(frozen=True)
class GammaMarket:
    """One open market of the universe and its tokens (with what Gamma says of each)."""

    condition_id: str
    slug: str
    tokens: tuple[TokenInfo, ...]


async def active_markets(
    http: aiohttp.ClientSession,
    gamma_url: str,
    market_filter: MarketFilter | None = None,
    *,
    page_size: int = PAGE_SIZE,
    retry_s: float = 0.5,
) -> AsyncIterator[list[GammaMarket]]:
    """Every open market with an order book, a page at a time (see the module's notes), each market once.

    Raises:
        VenueError: Gamma answered a page with an error other than 429 or 5xx, or kept failing
            (:class:`polyfeed.errors.VenueUnreachableError` when it could not be reached).
    """
    base = gamma_url.rstrip("/")
    extra = (market_filter or MarketFilter()).params()
    seen: set[str] = set()
    offset = 0
    while True:
        params = [("active", "true"), ("closed", "false"), ("limit", str(page_size)), ("offset", str(offset))]
        rows = await _get_retried(http, f"{base}/markets", params + extra, retry_s)
        page: list[GammaMarket] = []
        for row in rows:
            market = _open_market(row)
            if market is not None and market.condition_id not in seen:
                seen.add(market.condition_id)
                page.append(market)
        if page:
            yield page
        if len(rows) < page_size:
            return
        offset += len(rows)


def _open_market(row: dict[str, Any]) -> GammaMarket | None:
    """A listed market worth following: open, with an order book, its tokens listed (else ``None``)."""
    if row.get("closed") is True or row.get("enableOrderBook") is False or row.get("active") is False:
        return None
    tokens = tuple(_tokens(row, None))
    condition_id = str(row.get("conditionId") or "")
    if not tokens or not condition_id:
        return None  # a new market still being set up on the CLOB (spec 9.2): the next poll finds it
    return GammaMarket(condition_id, str(row.get("slug") or ""), tokens)


async def _get_retried(
    http: aiohttp.ClientSession, url: str, params: list[tuple[str, str]], retry_s: float
) -> list[dict[str, Any]]:
    """:func:`_get`, tried again after a doubling pause when Gamma gave no answer, 429 or a 5xx."""
    for attempt in range(_PAGE_TRIES):
        try:
            return await _get(http, url, params)
        except VenueError as exc:
            retryable = exc.status is None or exc.status == 429 or exc.status >= 500
            if not retryable or attempt == _PAGE_TRIES - 1:
                raise
            pause_s = retry_s * 2**attempt
            log.info("Gamma page failed (%s); trying again in %.1f s", exc, pause_s)
            await asyncio.sleep(pause_s)
    raise AssertionError("unreachable")


def is_token_id(text: str) -> bool:
    """Token ids are decimal integers (77 digits on the venue); slugs always hold a letter."""
    return text.isdigit()


def slug_of(text: str) -> tuple[str, str | None]:
    """A slug from a slug or a polymarket.com URL; the second item says ``event`` or ``market`` when the
    URL tells (``https://polymarket.com/event/<slug>``).

    Raises:
        SubscriptionError: a URL with no path.
    """
    if "://" not in text:
        return text.strip("/"), None
    parts = [p for p in urlparse(text).path.split("/") if p]
    if len(parts) >= 2 and parts[0] in ("event", "market"):
        return parts[1], parts[0]
    if parts:
        return parts[-1], None
    raise SubscriptionError(f"no slug in {text!r}")


async def lookup(http: aiohttp.ClientSession, gamma_url: str, query: str) -> list[TokenInfo]:
    """The tokens behind a market or event slug, a polymarket.com URL, a token id or a condition id.

    Raises:
        SubscriptionError: Gamma knows nothing by that name, or it names nothing (a bare domain).
        VenueError: Gamma answered with an error.
        VenueUnreachableError: Gamma could not be reached.
    """
    base = gamma_url.rstrip("/")
    query = query.strip()
    event: dict[str, Any] | None = None
    if is_token_id(query):
        markets = await _get(http, f"{base}/markets", {"clob_token_ids": query})
    elif _CONDITION_ID.fullmatch(query):
        markets = await _get(http, f"{base}/markets", {"condition_ids": query})
    else:
        # a URL pasted without its scheme (polymarket.com/event/...): slugs never hold a "/"
        url = query if "://" in query or "/" not in query else "https://" + query
        slug, kind = slug_of(url)
        if not slug:
            raise SubscriptionError(f"no slug in {query!r}")
        markets = [] if kind == "event" else await _get(http, f"{base}/markets", {"slug": slug})
        if not markets:
            events = await _get(http, f"{base}/events", {"slug": slug})
            for event in events:
                markets.extend(m for m in event.get("markets") or [] if isinstance(m, dict))
            event = events[0] if len(events) == 1 else None
    tokens = [token for market in markets for token in _tokens(market, event)]
    if not tokens:
        raise SubscriptionError(f"Gamma ({base}) knows no market or event {query!r}")
    return tokens


async def label_tokens(
    http: aiohttp.ClientSession, gamma_url: str, token_ids: Iterable[str]
) -> dict[str, TokenInfo]:
    """What Gamma knows of these tokens, for labels only: a token Gamma does not know, or a Gamma that
    cannot be reached, leaves it unlabelled (token ids work without Gamma)."""
    ids = list(dict.fromkeys(token_ids))
    found: dict[str, TokenInfo] = {}
    base = gamma_url.rstrip("/")
    for start in range(0, len(ids), _IDS_PER_CALL):
        chunk = ids[start : start + _IDS_PER_CALL]
        try:
            # one parameter per id (the local exchange also splits commas; how the venue takes a list is
            # not in the spec: repeating the parameter is the usual query-string form)
            params = [("clob_token_ids", token_id) for token_id in chunk]
            markets = await _get(http, f"{base}/markets", params)
        except VenueError as exc:
            log.info("token labels from Gamma: %s", exc)
            return found
        for market in markets:
            found.update((t.token_id, t) for t in _tokens(market, None) if t.token_id in chunk)
    return found


async def resolve_targets(
    http: aiohttp.ClientSession,
    gamma_url: str,
    targets: Iterable[str],
    on_step: Callable[[], None] = lambda: None,
) -> tuple[list[str], dict[str, TokenInfo]]:
    """Token ids for ``targets`` in the order given (token ids pass through without Gamma), and what
    Gamma said of the tokens it resolved; ``on_step`` is called after each target.

    Raises:
        SubscriptionError, VenueError: as :func:`lookup`.
    """
    ids: list[str] = []
    infos: dict[str, TokenInfo] = {}
    for target in targets:
        if is_token_id(target):
            ids.append(target)
        else:
            for token in await lookup(http, gamma_url, target):
                ids.append(token.token_id)
                infos.setdefault(token.token_id, token)
        on_step()
    return list(dict.fromkeys(ids)), infos


async def resolve_slug_tokens(
    http: aiohttp.ClientSession, gamma_url: str, slugs: Iterable[str]
) -> list[TokenInfo]:
    """The tokens behind market or event slugs or polymarket.com URLs (or token or condition ids), with
    their market slug and outcome, in the order given and each market's outcome order, without repeats
    (spec 9).

    Raises:
        SubscriptionError, VenueError: as :func:`lookup`.
    """
    tokens: dict[str, TokenInfo] = {}
    for text in slugs:
        for token in await lookup(http, gamma_url, text):
            tokens.setdefault(token.token_id, token)
    return list(tokens.values())


async def resolve_slugs(http: aiohttp.ClientSession, gamma_url: str, slugs: Iterable[str]) -> list[str]:
    """The token ids of :func:`resolve_slug_tokens`."""
    return [token.token_id for token in await resolve_slug_tokens(http, gamma_url, slugs)]


async def complete_from_books(
    http: aiohttp.ClientSession, rest_url: str, tokens: list[TokenInfo]
) -> list[TokenInfo]:
    """Tick size, minimum size and neg-risk from REST ``POST /books`` for tokens Gamma left them out of.

    Raises:
        VenueError: the REST API answered with an error, or could not be reached
            (:class:`polyfeed.errors.VenueUnreachableError`).
    """
    missing = [t.token_id for t in tokens if not t.complete]
    if not missing:
        return tokens
    books = {b.asset_id: b for b in await fetch_books(http, rest_url, missing)}
    completed = []
    for token in tokens:
        book = books.get(token.token_id)
        if book is not None and not token.complete:
            token = replace(
                token,
                tick_size=token.tick_size or book.tick_size,
                min_order_size=token.min_order_size or book.min_order_size,
                neg_risk=token.neg_risk if token.neg_risk is not None else book.neg_risk,
            )
        completed.append(token)
    return completed


def _tokens(market: dict[str, Any], event: dict[str, Any] | None) -> list[TokenInfo]:
    ids = _decoded_list(market.get("clobTokenIds"))
    outcomes = _decoded_list(market.get("outcomes"))
    prices = _decoded_list(market.get("outcomePrices"))
    if event is None:
        events = market.get("events")
        event = events[0] if isinstance(events, list) and events and isinstance(events[0], dict) else None
    neg_risk = market.get("negRisk")
    return [
        TokenInfo(
            token_id=token_id,
            outcome=outcomes[i] if i < len(outcomes) else "",
            market_slug=str(market.get("slug") or ""),
            question=str(market.get("question") or ""),
            condition_id=str(market.get("conditionId") or ""),
            event_slug=str(event["slug"]) if event and event.get("slug") else None,
            event_title=str(event["title"]) if event and event.get("title") else None,
            price=_number_text(prices[i]) if i < len(prices) else None,
            tick_size=_number_text(market.get("orderPriceMinTickSize")),
            min_order_size=_number_text(market.get("orderMinSize")),
            neg_risk=neg_risk if isinstance(neg_risk, bool) else None,
        )
        for i, token_id in enumerate(ids)
    ]


def _decoded_list(value: object) -> list[str]:
    # Gamma sends these lists as JSON-encoded strings ("decode twice", spec 9.2).
    if isinstance(value, str):
        try:
            value = decode_json(value) if value else []
        except FrameDecodeError:
            return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _number_text(value: object) -> str | None:
    """Gamma's numbers (``0.01``, ``5``, ``"0.535"``) as plain decimal text; ``None`` when absent."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return format(number.normalize(), "f") if number.is_finite() else None


async def _get(
    http: aiohttp.ClientSession, url: str, params: dict[str, str] | list[tuple[str, str]]
) -> list[dict[str, Any]]:
    async with call(http, "GET", url, params=params) as response:
        if response.status == 404:
            return []
        if response.status != 200:
            raise error_answer(response, url)
        data = await read_json(response, url)
    rows = data if isinstance(data, list) else [data]
    return [row for row in rows if isinstance(row, dict)]
