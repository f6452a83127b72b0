"""Gamma-shaped lookups on the local exchange: slugs and ids to tokens, strings that hold JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from polyfeed.sim import Exchange, Simulator
from polyfeed.sim.engine import SimMarket
from polyfeed.sim.gamma import MarketQuery, end_ms, filter_markets, market_document, market_tags
from tests.sim.simclient import run

BOUND_S = 120


def fetch(
    path: str, params: dict[str, str] | list[tuple[str, str]] | None = None, markets: int = 7
) -> tuple[int, Any, Simulator]:
    async def scenario() -> tuple[int, Any, Simulator]:
        async with Simulator(markets=markets, seed=8) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            async with http.get(sim.rest_url + path, params=params) as response:
                return response.status, await response.json(), sim

    return asyncio.run(asyncio.wait_for(scenario(), BOUND_S))


def test_market_by_slug_holds_json_encoded_token_ids_in_outcome_order() -> None:
    status, body, sim = fetch("/markets", {"slug": "sim-market-2"})
    assert status == 200
    (market,) = body
    market_state = sim.exchange.markets[2]
    assert isinstance(market["clobTokenIds"], str), "Gamma sends a JSON-encoded string: decode twice"
    assert json.loads(market["clobTokenIds"]) == [market_state.yes, market_state.no]
    assert json.loads(market["outcomes"]) == ["Yes", "No"]
    assert market["conditionId"] == market_state.condition_id
    assert market["orderMinSize"] == 5 and market["orderPriceMinTickSize"] == float(market_state.tick)
    assert market["events"][0]["slug"] == "sim-event-0"


def test_reverse_lookups_and_paging() -> None:
    status, body, _ = fetch("/markets", [("limit", "3"), ("offset", "2")])
    assert status == 200 and [m["slug"] for m in body] == ["sim-market-2", "sim-market-3", "sim-market-4"]
    status, body, _ = fetch("/markets", {"clob_token_ids": "1,2"})
    assert (status, body) == (200, [])
    status, body, _ = fetch("/markets", {"limit": "0"})
    assert status == 400


def test_events_group_markets() -> None:
    status, body, _ = fetch("/events", {"slug": "sim-event-1"})
    assert status == 200
    (event,) = body
    assert [m["slug"] for m in event["markets"]] == ["sim-market-3", "sim-market-4", "sim-market-5"]
    status, body, _ = fetch("/events/slug/sim-event-9")
    assert status == 404
    status, body, _ = fetch("/markets/slug/nope")
    assert status == 404


def walk(exchange: Exchange, **params: str) -> list[SimMarket]:
    """Every page of GET /markets as public clients walk it: limit 500, offset on, until a short page."""
    seen: list[SimMarket] = []
    while True:
        query = {"active": "true", "closed": "false", "limit": "500", "offset": str(len(seen)), **params}
        page = filter_markets(exchange, MarketQuery.parse(query, {}))
        seen.extend(page)
        if len(page) < 500:
            return seen


def test_the_venue_s_universe_builds_and_pages_through_gamma_each_market_once_reading_no_book() -> None:
    """22,800 markets, as many as the venue lists: built in seconds because no book is drawn until it is
    read, and paged 500 at a time, every open market exactly once, with no book read for it."""
    exchange = Exchange(markets=22_800, seed=1)
    seen = walk(exchange)
    assert len(seen) == len({m.condition_id for m in seen}) == 22_800
    assert [m.condition_id for m in seen] == [m.condition_id for m in exchange.markets]
    documents = [market_document(exchange, m) for m in seen[::997]]
    assert all(d["closed"] is False and 0 < d["bestBid"] < d["bestAsk"] < 1 for d in documents)
    assert not any(m.book_drawn for m in exchange.markets), "Gamma reads tops of book, never a whole book"


def test_paging_over_http_lists_every_open_market_once_and_caps_a_page_at_500() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1_203, seed=4) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            slugs: list[str] = []
            while True:
                params = {"active": "true", "closed": "false", "limit": "500", "offset": str(len(slugs))}
                async with http.get(sim.rest_url + "/markets", params=params) as response:
                    page = await response.json()
                slugs.extend(m["slug"] for m in page)
                if len(page) < 500:
                    break
            assert slugs == [f"sim-market-{i}" for i in range(1_203)]
            async with http.get(sim.rest_url + "/markets", params={"limit": "2000"}) as response:
                assert len(await response.json()) == 500, "the venue caps a page; it does not refuse"

    run(scenario)


def test_resolved_markets_are_served_closed_and_only_when_closed_markets_are_asked_for() -> None:
    exchange = Exchange(markets=30, seed=6, median_lifetime_s=None)
    gone = [exchange.markets[i] for i in (3, 7, 8)]
    for market in gone:
        exchange.resolve_market(market)
    open_ = walk(exchange)
    assert len(open_) == 30 and not set(open_) & set(gone), "the replacements are listed, not the resolved"
    assert [m.slug for m in open_[-3:]] == ["sim-market-30", "sim-market-31", "sim-market-32"]
    closed = walk(exchange, closed="true")
    assert closed == gone, "in the order they resolved"
    for market in closed:
        document = market_document(exchange, market)
        assert (document["active"], document["closed"], document["acceptingOrders"]) == (True, True, False)
        winner = json.loads(document["outcomePrices"])
        assert winner == (["1", "0"] if market.yes_wins else ["0", "1"]) and "bestBid" not in document
    lookup = {"slug": [gone[0].slug]}
    assert filter_markets(exchange, MarketQuery.parse({}, lookup)) == [], "closed=false unless asked"
    assert filter_markets(exchange, MarketQuery.parse({"closed": "true"}, lookup)) == [gone[0]]
    by_tokens = {"clob_token_ids": [f"{gone[1].yes},{open_[0].no}"]}
    assert filter_markets(exchange, MarketQuery.parse({}, by_tokens)) == [open_[0]]
    assert filter_markets(exchange, MarketQuery.parse({"closed": "true"}, by_tokens)) == [gone[1]]
    assert filter_markets(exchange, MarketQuery.parse({"active": "false"}, {})) == [], "all are active"


def test_partial_universe_filters_tag_volume_and_end_dates() -> None:
    exchange = Exchange(markets=200, seed=7)
    crypto = walk(exchange, tag_id="102")
    assert crypto == [m for m in exchange.markets if m.index % 4 == 1] and crypto
    featured = walk(exchange, tag_id="105")
    assert featured == [m for m in exchange.markets if m.index % 3 == 0]
    assert {t.id for t in market_tags(exchange.markets[0])} == {"101", "105"}, "a tag or two"
    busy = walk(exchange, volume_num_min="40000")
    assert busy == [m for m in exchange.markets if m.volume >= 40_000] and 0 < len(busy) < 200
    ends = sorted(end_ms(exchange, m) for m in exchange.markets)
    middle = ends[100] // 1000 * 1000  # a whole second, as an ISO time without a fraction says
    iso = datetime.fromtimestamp(middle // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    early = walk(exchange, end_date_max=iso)
    late = walk(exchange, end_date_min=iso)
    assert early == [m for m in exchange.markets if end_ms(exchange, m) <= middle] and early
    assert late == [m for m in exchange.markets if end_ms(exchange, m) >= middle] and late
    assert len(early) + len(late) == 200 + ends.count(middle), "both ends included"
    day = datetime.fromtimestamp(exchange.start_ms / 1000, UTC).date() + timedelta(days=40)
    after = walk(exchange, end_date_min=day.isoformat())  # a date is its midnight, UTC
    assert {m.index for m in after} == {i for i in range(20) if 30 + i >= 40}, (
        "only the long-dated end so late"
    )
    both = walk(exchange, tag_id="102", volume_num_min="40000")
    assert both == [m for m in crypto if m in busy]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"offset": "-1"},
        {"limit": "ten"},
        {"closed": "maybe"},
        {"volume_num_min": "lots"},
        {"end_date_min": "next tuesday"},
    ],
)
def test_bad_values_are_400(params: dict[str, str]) -> None:
    status, body, _ = fetch("/markets", params)
    assert status == 400 and "error" in body


def test_events_page_and_resolved_markets_close_their_event() -> None:
    async def scenario() -> None:
        async with (
            Simulator(markets=9, seed=8, median_lifetime_s=None) as sim,
            aiohttp.ClientSession() as http,
        ):
            sim.pause()
            for market in list(sim.exchange.markets[3:6]):  # every market of sim-event-1
                sim.resolve_market(sim.exchange.markets.index(market))

            async def get(path: str, **params: str) -> Any:
                async with http.get(sim.rest_url + path, params=params) as response:
                    assert response.status == 200
                    return await response.json()

            open_events = await get("/events", limit="2")
            assert [e["slug"] for e in open_events] == ["sim-event-0", "sim-event-2"]
            assert [e["slug"] for e in await get("/events", offset="2")] == ["sim-event-3"], (
                "the replacements"
            )
            (closed,) = await get("/events", closed="true")
            assert closed["slug"] == "sim-event-1" and all(m["closed"] for m in closed["markets"])
            assert (await get("/events/slug/sim-event-1"))["closed"] is True
            assert (await get("/markets/slug/sim-market-4"))["closed"] is True, "the path form finds it"

    run(scenario)
