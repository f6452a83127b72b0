"""The markets and tokens behind what a person types: a slug, a polymarket.com URL, a token id.

Gamma (``gamma-api.polymarket.com``) knows markets by slug, condition id and token id, and events by
slug; its ``outcomes``, ``clobTokenIds`` and ``outcomePrices`` are JSON-encoded strings inside the JSON
(spec 9.2). Tick size, minimum order size and neg-risk come from Gamma too, and from REST ``POST /books``
where Gamma leaves them out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from rich.console import Console

from polyfeed.cli.errors import CommandError
from polyfeed.cli.terminal import progress, spinner
from polyfeed.errors import FrameDecodeError, PolyfeedError
from polyfeed.net.rest import fetch_books, slug_of
from polyfeed.wire import decode_json

__all__ = [
    "TokenInfo",
    "complete_from_books",
    "http_session",
    "is_token_id",
    "label_tokens",
    "lookup",
    "resolve_for_console",
    "resolve_targets",
]

log = logging.getLogger(__name__)

_CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_IDS_PER_CALL = 100  # Gamma answers at most 100 ids a request (spec 9.1)


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


def is_token_id(text: str) -> bool:
    """Token ids are decimal integers (77 digits on the venue); slugs always hold a letter."""
    return text.isdigit()


def http_session(timeout_s: float) -> aiohttp.ClientSession:
    """An HTTP session that gives up after ``timeout_s`` per request (aiohttp's default is 5 minutes)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s or None))


async def lookup(http: aiohttp.ClientSession, gamma_url: str, query: str) -> list[TokenInfo]:
    """The tokens behind a market or event slug, a polymarket.com URL, a token id or a condition id.

    Raises:
        CommandError: Gamma knows nothing by that name, or answered with an error.
        aiohttp.ClientError: Gamma could not be reached.
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
        try:
            slug, kind = slug_of(url)
        except PolyfeedError as exc:
            raise CommandError(str(exc)) from None
        if not slug:
            raise CommandError(f"no slug in {query!r}")
        markets = [] if kind == "event" else await _get(http, f"{base}/markets", {"slug": slug})
        if not markets:
            events = await _get(http, f"{base}/events", {"slug": slug})
            for event in events:
                markets.extend(m for m in event.get("markets") or [] if isinstance(m, dict))
            event = events[0] if len(events) == 1 else None
    tokens = [token for market in markets for token in _tokens(market, event)]
    if not tokens:
        raise CommandError(f"Gamma ({base}) knows no market or event {query!r}")
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
        except (aiohttp.ClientError, TimeoutError, CommandError) as exc:
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
    Gamma said of the tokens it resolved; ``on_step`` is called after each target."""
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


async def resolve_for_console(
    console: Console, gamma_url: str, targets: list[str], timeout_s: float, *, name_tokens: bool = True
) -> tuple[list[str], dict[str, TokenInfo]]:
    """:func:`resolve_targets` with a progress bar on ``console`` (on a terminal), and, when
    ``name_tokens``, Gamma's description of the token ids given as such (:func:`label_tokens`)."""
    async with http_session(timeout_s) as http:
        slugs = sum(1 for t in targets if not is_token_id(t))
        with progress(console, "resolving slugs on Gamma", slugs) as step:
            token_ids, infos = await resolve_targets(http, gamma_url, targets, step)
        unnamed = [t for t in token_ids if t not in infos] if name_tokens else []
        if unnamed:
            with spinner(console, "asking Gamma for the tokens' markets"):
                infos.update(await label_tokens(http, gamma_url, unnamed))
    return token_ids, infos


async def complete_from_books(
    http: aiohttp.ClientSession, rest_url: str, tokens: list[TokenInfo]
) -> list[TokenInfo]:
    """Tick size, minimum size and neg-risk from REST ``POST /books`` for tokens Gamma left them out of.

    Raises:
        PolyfeedError: the REST API answered with an error.
        aiohttp.ClientError: it could not be reached.
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
    async with http.get(url, params=params) as response:
        if response.status == 404:
            return []
        if response.status != 200:
            raise CommandError(f"GET {url} answered HTTP {response.status}")
        try:
            data = decode_json(await response.read())
        except FrameDecodeError:
            raise CommandError(f"GET {url} did not answer JSON (is {url} Gamma?)") from None
    rows = data if isinstance(data, list) else [data]
    return [row for row in rows if isinstance(row, dict)]
