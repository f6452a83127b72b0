"""Gamma lookups: slugs, URLs, token and condition ids to tokens, against the local exchange's Gamma;
its failures as polyfeed's errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from polyfeed.errors import SubscriptionError, VenueError, VenueUnreachableError
from polyfeed.net.gamma import (
    TokenInfo,
    complete_from_books,
    is_token_id,
    label_tokens,
    lookup,
    resolve_slugs,
    resolve_targets,
    slug_of,
)
from polyfeed.net.transport import http_session
from polyfeed.sim import Simulator
from polyfeed.sim.engine import SimMarket
from polyfeed.sim.gamma import EVENT_SIZE

BOUND_S = 60


def run(main: Callable[[Simulator, aiohttp.ClientSession], Awaitable[None]]) -> None:
    async def with_exchange() -> None:
        async with Simulator(markets=7, seed=4) as sim, http_session(BOUND_S) as http:
            await main(sim, http)

    asyncio.run(asyncio.wait_for(with_exchange(), BOUND_S))


def tokens_of(market: SimMarket) -> list[tuple[str, str]]:
    return [(market.yes, "Yes"), (market.no, "No")]


def test_a_market_slug_gives_its_outcomes_with_tick_min_size_and_neg_risk() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        market = sim.exchange.markets[4]
        tokens = await lookup(http, sim.rest_url, market.slug)
        assert [(t.token_id, t.outcome) for t in tokens] == tokens_of(market)
        for token in tokens:
            assert token.market_slug == market.slug and token.condition_id == market.condition_id
            assert (token.tick_size, token.min_order_size, token.neg_risk) == (
                market.tick,
                market.min_order_size,
                market.neg_risk,
            )
            assert token.event_slug == f"sim-event-{4 // EVENT_SIZE}"
        assert sum(float(t.price or "nan") for t in tokens) == pytest.approx(1.0)

    run(main)


def test_an_event_slug_or_url_gives_every_market_of_the_event() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        expected = [pair for m in sim.exchange.markets[3:6] for pair in tokens_of(m)]
        for query in (
            "sim-event-1",
            "https://polymarket.com/event/sim-event-1",
            "polymarket.com/event/sim-event-1/",
        ):
            tokens = await lookup(http, sim.rest_url, query)
            assert [(t.token_id, t.outcome) for t in tokens] == expected, query
            assert {t.event_slug for t in tokens} == {"sim-event-1"}

    run(main)


def test_a_token_id_or_condition_id_gives_its_market() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        market = sim.exchange.markets[2]
        by_token = await lookup(http, sim.rest_url, market.no)
        by_condition = await lookup(http, sim.rest_url, market.condition_id)
        assert [t.token_id for t in by_token] == [t.token_id for t in by_condition] == [market.yes, market.no]

    run(main)


def test_nothing_found_is_a_subscription_error_naming_the_query() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        for query in ("no-such-market", "https://polymarket.com/event/no-such-event", "123456789"):
            with pytest.raises(SubscriptionError, match=f"knows no market or event '{query}'"):
                await lookup(http, sim.rest_url, query)
        with pytest.raises(SubscriptionError, match="no slug"):
            await lookup(http, sim.rest_url, "https://polymarket.com/")

    run(main)


def test_slugs_event_slugs_and_urls_resolve_to_token_ids_in_order_without_repeats() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        markets = sim.exchange.markets
        gamma = sim.venue.gamma_url
        ids = await resolve_slugs(
            http, gamma, ["sim-market-4", "sim-event-1", "https://polymarket.com/market/sim-market-0"]
        )
        assert ids == [t for i in (4, 3, 5, 0) for t in (markets[i].yes, markets[i].no)], (
            "sim-market-4 is in sim-event-1 too: each token once, where it came first"
        )
        with pytest.raises(SubscriptionError, match="knows no market or event 'no-such-market'"):
            await resolve_slugs(http, gamma, ["sim-market-0", "no-such-market"])

    run(main)


def test_slug_parsing() -> None:
    assert slug_of("https://polymarket.com/event/fed-decision?tid=1") == ("fed-decision", "event")
    assert slug_of("https://polymarket.com/market/will-it-rain/") == ("will-it-rain", "market")
    assert slug_of("https://polymarket.com/sports/nba-game") == ("nba-game", None)
    assert slug_of("will-it-rain/") == ("will-it-rain", None)
    with pytest.raises(SubscriptionError, match="no slug"):
        slug_of("https://polymarket.com")


def test_a_gamma_error_answer_is_a_venue_error_with_its_status_and_url() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        await sim.inject({"kind": "rest_error", "status": 502})
        with pytest.raises(VenueError) as caught:
            await lookup(http, sim.rest_url, "sim-market-0")
        assert type(caught.value) is VenueError
        assert (caught.value.status, caught.value.url) == (502, sim.rest_url + "/markets")
        assert str(caught.value) == f"{sim.rest_url}/markets: answered HTTP 502 Bad Gateway"
        assert len(await lookup(http, sim.rest_url, "sim-market-0")) == 2, "the fault was for one call"

    run(main)


def test_an_answer_that_is_not_json_is_a_venue_error_with_its_status() -> None:
    async def main(_: Simulator, http: aiohttp.ClientSession) -> None:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text="<html>a login page</html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/markets", page)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            with pytest.raises(VenueError, match="answered HTTP 200 with a body that is not JSON") as caught:
                await lookup(http, base, "sim-market-0")
        finally:
            await runner.cleanup()
        assert (caught.value.status, caught.value.url) == (200, base + "/markets")

    run(main)


def test_an_unreachable_gamma_is_a_venue_unreachable_error(closed_port: int) -> None:
    async def main(_: Simulator, http: aiohttp.ClientSession) -> None:
        base = f"http://127.0.0.1:{closed_port}"
        for query in ("sim-market-0", "sim-event-0"):
            with pytest.raises(VenueUnreachableError) as caught:
                await resolve_slugs(http, base, [query])
            assert (caught.value.url, caught.value.status) == (base + "/markets", None)
            assert caught.value.reason == "connection refused"

    run(main)


def test_targets_keep_their_order_and_token_ids_need_no_gamma(closed_port: int) -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        first, second = sim.exchange.markets[0], sim.exchange.markets[1]
        steps: list[int] = []
        ids, infos = await resolve_targets(
            http, sim.rest_url, [second.slug, first.yes, first.slug], lambda: steps.append(1)
        )
        assert ids == [second.yes, second.no, first.yes, first.no]
        assert set(infos) == {second.yes, second.no, first.yes, first.no}
        assert len(steps) == 3
        unreachable = f"http://127.0.0.1:{closed_port}"
        assert await resolve_targets(http, unreachable, [first.no]) == ([first.no], {})

    run(main)


def test_labels_are_best_effort(closed_port: int) -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        market = sim.exchange.markets[5]
        labels = await label_tokens(http, sim.rest_url, [market.no, "42"])
        assert list(labels) == [market.no] and labels[market.no].outcome == "No"
        assert await label_tokens(http, f"http://127.0.0.1:{closed_port}", [market.no]) == {}

    run(main)


def test_what_gamma_leaves_out_comes_from_rest_books() -> None:
    """A Gamma without tick, minimum size or neg-risk (a stub serving the exchange's documents with
    those fields removed): the lookup fills them in from the exchange's ``POST /books``."""

    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        async def markets(request: web.Request) -> web.Response:
            async with http.get(sim.rest_url + "/markets", params=request.query) as response:
                documents = await response.json()
            for document in documents:
                for key in ("orderPriceMinTickSize", "orderMinSize", "negRisk"):
                    del document[key]
            return web.json_response(documents)

        app = web.Application()
        app.router.add_get("/markets", markets)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            market = sim.exchange.markets[6]
            bare = await lookup(http, f"http://127.0.0.1:{port}", market.slug)
            assert [(t.tick_size, t.min_order_size, t.neg_risk) for t in bare] == [(None, None, None)] * 2
            assert not any(t.complete for t in bare)
            completed = await complete_from_books(http, sim.rest_url, bare)
            assert [(t.tick_size, t.min_order_size, t.neg_risk) for t in completed] == [
                (market.tick, market.min_order_size, market.neg_risk)
            ] * 2
            assert await complete_from_books(http, "http://127.0.0.1:1", completed) == completed, (
                "nothing is asked of REST when Gamma said everything"
            )
        finally:
            await runner.cleanup()

    run(main)


def test_gamma_lists_arrive_as_json_encoded_strings_or_real_lists() -> None:
    async def main(sim: Simulator, http: aiohttp.ClientSession) -> None:
        async with http.get(sim.rest_url + "/markets", params={"slug": "sim-market-0"}) as response:
            (document,) = await response.json()
        assert isinstance(document["clobTokenIds"], str), "the exchange plays Gamma's encoded strings"
        trimmed = {**document, "clobTokenIds": json.loads(document["clobTokenIds"]), "outcomes": ["Y", "N"]}

        async def markets(request: web.Request) -> web.Response:
            return web.json_response([trimmed])

        app = web.Application()
        app.router.add_get("/markets", markets)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            tokens = await lookup(http, f"http://127.0.0.1:{runner.addresses[0][1]}", "sim-market-0")
        finally:
            await runner.cleanup()
        market = sim.exchange.markets[0]
        assert [(t.token_id, t.outcome) for t in tokens] == [(market.yes, "Y"), (market.no, "N")]

    run(main)


def test_token_ids_are_all_digits() -> None:
    assert is_token_id("76675943845290119541998281611496356431131616451040929101118512066436871111")
    assert not is_token_id("sim-market-0")
    assert not is_token_id("0xabc")
    assert TokenInfo(
        "1", "Yes", "m", "q", "0x", tick_size="0.01", min_order_size="5", neg_risk=False
    ).complete
