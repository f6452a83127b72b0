"""Venue: the four URLs of a venue as one value, validated when made."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from polyfeed.errors import InvalidURLError
from polyfeed.sim import Simulator
from polyfeed.venue import Venue
from tests.waiting import BOUND_S


def test_polymarket_is_the_venues_own_urls() -> None:
    venue = Venue.polymarket()
    assert venue == Venue(
        market_url="wss://ws-subscriptions-clob.polymarket.com/ws/market",
        user_url="wss://ws-subscriptions-clob.polymarket.com/ws/user",
        rest_url="https://clob.polymarket.com",
        gamma_url="https://gamma-api.polymarket.com",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        venue.market_url = "wss://elsewhere/ws/market"  # type: ignore[misc]


@pytest.mark.parametrize(
    "base",
    ["ws://127.0.0.1:8765", "http://127.0.0.1:8765", "ws://127.0.0.1:8765/", "HTTP://127.0.0.1:8765"],
)
def test_a_local_venue_serves_everything_on_one_port_given_either_scheme(base: str) -> None:
    assert Venue.local(base) == Venue(
        market_url="ws://127.0.0.1:8765/ws/market",
        user_url="ws://127.0.0.1:8765/ws/user",
        rest_url="http://127.0.0.1:8765",
        gamma_url="http://127.0.0.1:8765",
    )


def test_a_local_venue_over_tls_or_behind_a_path() -> None:
    assert Venue.local("https://exchange.test/polymarket/") == Venue(
        market_url="wss://exchange.test/polymarket/ws/market",
        user_url="wss://exchange.test/polymarket/ws/user",
        rest_url="https://exchange.test/polymarket",
        gamma_url="https://exchange.test/polymarket",
    )
    assert Venue.local("wss://exchange.test:9443") == Venue.local("https://exchange.test:9443")


@pytest.mark.parametrize(
    "base", ["127.0.0.1:8765", "ftp://127.0.0.1:8765", "ws://", "http://host:1?x=1", "http://host:1#top"]
)
def test_a_local_base_url_that_names_no_venue_is_refused(base: str) -> None:
    with pytest.raises(InvalidURLError, match="local venue's base URL"):
        Venue.local(base)


@pytest.mark.parametrize(
    ("field", "url", "message"),
    [
        ("market_url", "http://127.0.0.1:1/ws/market", "market_url must be a ws:// or wss:// URL"),
        ("user_url", "127.0.0.1:1/ws/user", "user_url must be a ws:// or wss:// URL"),
        ("rest_url", "ws://127.0.0.1:1", "rest_url must be a http:// or https:// URL"),
        ("gamma_url", "gamma.example", "gamma_url must be a http:// or https:// URL"),
    ],
)
def test_each_url_is_checked_for_its_use(field: str, url: str, message: str) -> None:
    with pytest.raises(InvalidURLError, match=message):
        dataclasses.replace(Venue.polymarket(), **{field: url})
    with pytest.raises(InvalidURLError, match=message):
        Venue.polymarket().with_urls(**{field: url})


def test_with_urls_replaces_only_the_urls_given() -> None:
    local = Venue.local("ws://127.0.0.1:8765")
    mixed = local.with_urls(gamma_url="https://gamma-api.polymarket.com")
    assert mixed == dataclasses.replace(local, gamma_url="https://gamma-api.polymarket.com")
    assert local.with_urls() == local


def test_a_simulators_venue_is_its_urls() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=3) as sim:
            assert sim.venue == Venue(sim.market_url, sim.user_url, sim.rest_url, sim.rest_url)

    asyncio.run(asyncio.wait_for(main(), BOUND_S))
