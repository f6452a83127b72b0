"""Gamma-shaped lookups on the local exchange: slugs and ids to tokens, strings that hold JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from polyfeed.sim import Simulator

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
