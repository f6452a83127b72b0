"""The local exchange's public CLOB REST calls over real HTTP on loopback (spec 8.1, 12 "REST companion"),
and Polymarket's official ``py-clob-client``, unchanged from PyPI, driven against them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from polyfeed.sim import Simulator
from polyfeed.sim.rest import BATCH_LIMIT, NO_BOOK
from tests.sim.simclient import run

UNKNOWN = "123"
THROWAWAY_KEY = "0x" + "11" * 32  # any private key: the venue checks the HMAC, not the signer (spec 8.3)


def settle(sim: Simulator, *, bound: int = 200_000) -> None:
    """Stop the flow, then step the engine until the account has open orders and trades and every market
    has traded: deterministic, whatever the machine's speed, and the books hold still afterwards."""
    sim.pause()
    exchange = sim.exchange
    for _ in range(bound):
        if (
            exchange.account.open_orders()
            and exchange.account.trades
            and all(m.last_trade_side for m in exchange.markets)
        ):
            return
        exchange.step()
    raise AssertionError(f"no trades for the account within {bound} steps")


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as r:
        assert r.content_type == "application/json", f"{url} answered {r.content_type}"
        return r.status, await r.json()


async def post(http: aiohttp.ClientSession, url: str, body: object) -> tuple[int, Any]:
    async with http.post(url, json=body) as r:
        assert r.content_type == "application/json", f"{url} answered {r.content_type}"
        return r.status, await r.json()


def test_single_token_calls_answer_from_the_book_and_the_market() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=7) as sim, aiohttp.ClientSession() as http:
            settle(sim)
            url = sim.rest_url
            for market in sim.exchange.markets:
                for token in (market.yes, market.no):
                    book = sim.exchange.book(token)
                    bid, ask = Decimal(book.bids[-1].price), Decimal(book.asks[-1].price)
                    assert await get(http, url + "/price", token_id=token, side="BUY") == (
                        200,
                        {"price": book.asks[-1].price},
                    ), "BUY is priced at the best ask"
                    assert await get(http, url + "/price", token_id=token, side="SELL") == (
                        200,
                        {"price": book.bids[-1].price},
                    ), "SELL at the best bid"
                    status, body = await get(http, url + "/midpoint", token_id=token)
                    assert status == 200 and Decimal(body["mid"]) == (bid + ask) / 2
                    status, body = await get(http, url + "/spread", token_id=token)
                    assert status == 200 and Decimal(body["spread"]) == ask - bid
                    assert body["spread"] == str(ask - bid).rstrip("0"), "trimmed text, as the venue's"
                    assert await get(http, url + "/tick-size", token_id=token) == (
                        200,
                        {"minimum_tick_size": float(market.tick)},
                    )
                    assert await get(http, url + "/neg-risk", token_id=token) == (
                        200,
                        {"neg_risk": market.neg_risk},
                    )
                    assert await get(http, url + "/last-trade-price", token_id=token) == (
                        200,
                        {"price": market.last_trade_price, "side": market.last_trade_side},
                    )
                    assert market.last_trade_side in ("BUY", "SELL")

    run(scenario)


def test_last_trade_price_before_any_trade_has_no_side() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=2) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            market = sim.exchange.markets[0]
            assert market.last_trade_side == "", "precondition: no trade yet"
            status, body = await get(http, sim.rest_url + "/last-trade-price", token_id=market.yes)
            # the engine may open a market with a last price of its own; without one, the venue's "0.5"
            assert (status, body) == (200, {"price": market.last_trade_price or "0.5", "side": ""})

    run(scenario)


def test_batch_calls_answer_per_token_and_leave_unknown_tokens_out() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=7) as sim, aiohttp.ClientSession() as http:
            settle(sim)
            url = sim.rest_url
            market = sim.exchange.markets[0]
            yes, no = sim.exchange.book(market.yes), sim.exchange.book(market.no)
            tokens = [{"token_id": market.yes}, {"token_id": UNKNOWN}, {"token_id": market.no}]

            status, books = await post(http, url + "/books", tokens)
            assert status == 200 and [b["asset_id"] for b in books] == [market.yes, market.no]

            status, mids = await post(http, url + "/midpoints", tokens)
            assert status == 200 and set(mids) == {market.yes, market.no}
            for book in (yes, no):
                best = Decimal(book.bids[-1].price) + Decimal(book.asks[-1].price)
                assert Decimal(mids[book.asset_id]) == best / 2

            status, spreads = await post(http, url + "/spreads", tokens)
            assert status == 200 and set(spreads) == {market.yes, market.no}
            assert Decimal(spreads[market.yes]) == Decimal(yes.asks[-1].price) - Decimal(yes.bids[-1].price)

            body = [
                {"token_id": market.yes, "side": "BUY"},
                {"token_id": market.yes, "side": "SELL"},
                {"token_id": market.no, "side": "BUY"},
            ]
            assert await post(http, url + "/prices", body) == (
                200,
                {
                    market.yes: {"BUY": yes.asks[-1].price, "SELL": yes.bids[-1].price},
                    market.no: {"BUY": no.asks[-1].price},
                },
            )

            status, last = await post(http, url + "/last-trades-prices", tokens)
            expected = {"price": market.last_trade_price, "side": market.last_trade_side}
            assert status == 200
            assert last == [{"token_id": t, **expected} for t in (market.yes, market.no)]

    run(scenario)


ERRORS: list[tuple[str, str, dict[str, str] | None, object, int, str | None]] = [
    # method, path, query, body, status, the error text (None: any)
    ("GET", "/book", {}, None, 400, None),
    ("GET", "/book", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/price", {"token_id": UNKNOWN, "side": "BUY"}, None, 404, NO_BOOK),
    ("GET", "/price", {"token_id": "<yes>", "side": "UP"}, None, 400, "Invalid side"),
    ("GET", "/price", {"token_id": "<yes>"}, None, 400, "Invalid side"),
    ("GET", "/midpoint", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/midpoint", {}, None, 400, None),
    ("GET", "/spread", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/spread", {"token_id": ""}, None, 400, None),
    ("GET", "/tick-size", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/neg-risk", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/neg-risk", {}, None, 400, None),
    ("GET", "/last-trade-price", {"token_id": UNKNOWN}, None, 404, NO_BOOK),
    ("GET", "/last-trade-price", {}, None, 400, None),
    ("GET", "/markets/0xnot-a-market", {}, None, 404, "market not found"),
    ("POST", "/books", None, {"token_id": "<yes>"}, 400, "Invalid payload"),
    ("POST", "/books", None, "not json", 400, "Invalid payload"),
    ("POST", "/midpoints", None, [{"token": "<yes>"}], 400, "Invalid payload"),
    ("POST", "/spreads", None, [{"token_id": 5}], 400, "Invalid payload"),
    ("POST", "/last-trades-prices", None, ["<yes>"], 400, "Invalid payload"),
    ("POST", "/prices", None, [{"token_id": "<yes>"}], 400, "Invalid side"),
    ("POST", "/prices", None, [{"token_id": UNKNOWN, "side": "BUY"}], 404, NO_BOOK),
    ("POST", "/books", None, [{"token_id": "<yes>"}] * (BATCH_LIMIT + 1), 400, "Payload exceeds the limit"),
    ("GET", "/books", {}, None, 405, None),
    ("POST", "/book", None, [], 405, None),
    ("DELETE", "/markets/0xabc", None, None, 405, None),
    ("PUT", "/", None, None, 405, None),
]


def test_errors_are_json_bodies_with_the_venues_status() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=3) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            yes = sim.exchange.markets[0].yes

            def real(value: object) -> object:
                return json.loads(json.dumps(value).replace("<yes>", yes))

            for method, path, query, body, status, error in ERRORS:
                params = {k: str(real(v)) for k, v in (query or {}).items()}
                data = body if isinstance(body, str) else json.dumps(real(body))
                async with http.request(method, sim.rest_url + path, params=params, data=data) as r:
                    case = f"{method} {path} {query} {str(body)[:60]}"
                    assert r.status == status, case
                    assert r.content_type == "application/json", f"{case}: a JSON body, not plain text"
                    answer = await r.json()
                    assert isinstance(answer, dict) and isinstance(answer["error"], str), case
                    if error is not None:
                        assert answer["error"] == error, case
                    if status == 405:
                        assert r.headers["Allow"], case

    run(scenario)


def fixture_market() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[3] / "shared/fixtures/polymarket/rest/market.json"
    if not path.exists():
        pytest.skip("../shared/fixtures/polymarket/rest/market.json not found: the shape test needs it")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_clob_market_by_condition_id_has_the_real_shape_and_gamma_markets_still_answer() -> None:
    real = fixture_market()

    async def scenario() -> None:
        async with Simulator(markets=3, seed=7) as sim, aiohttp.ClientSession() as http:
            settle(sim)
            url = sim.rest_url
            market = sim.exchange.markets[0]
            status, doc = await get(http, url + f"/markets/{market.condition_id}")
            assert status == 200
            assert set(doc) == set(real), "the real capture's keys, no more, no fewer"
            for key, value in real.items():
                if value is not None and doc[key] is not None:
                    assert isinstance(doc[key], type(value)) or {type(doc[key]), type(value)} <= {
                        int,
                        float,
                    }, key
            assert doc["condition_id"] == market.condition_id and doc["market_slug"] == market.slug
            assert doc["question"] == market.question and doc["neg_risk"] == market.neg_risk
            assert doc["minimum_tick_size"] == float(market.tick)
            assert doc["minimum_order_size"] == float(market.min_order_size)
            assert (doc["active"], doc["closed"], doc["accepting_orders"]) == (True, False, True)
            assert [(t["token_id"], t["outcome"], t["winner"]) for t in doc["tokens"]] == [
                (market.yes, "Yes", False),
                (market.no, "No", False),
            ]
            assert set(doc["tokens"][0]) == set(real["tokens"][0])
            assert all(0 < t["price"] < 1 for t in doc["tokens"])

            # Gamma's /markets on the same server is untouched by the CLOB's /markets/{condition_id}
            status, gamma = await get(http, url + "/markets", slug=market.slug)
            assert status == 200 and [m["conditionId"] for m in gamma] == [market.condition_id]
            status, by_slug = await get(http, url + f"/markets/slug/{market.slug}")
            assert status == 200 and by_slug["conditionId"] == market.condition_id

            # a resolved market is still served, closed, with its winner
            sim.resolve_market(0)
            status, closed = await get(http, url + f"/markets/{market.condition_id}")
            assert status == 200 and (closed["closed"], closed["accepting_orders"]) == (True, False)
            assert sorted(t["winner"] for t in closed["tokens"]) == [False, True]
            assert sorted(t["price"] for t in closed["tokens"]) == [0, 1]

    run(scenario)


def test_ok_and_server_time() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1, seed=3) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            assert await get(http, sim.rest_url + "/") == (200, "OK")
            status, now = await get(http, sim.rest_url + "/time")
            assert status == 200 and now == sim.exchange.now_ms // 1000, (
                "Unix seconds on the exchange's clock"
            )

    run(scenario)


# -- the official client -----------------------------------------------------------------------------


def test_official_py_clob_client_unchanged_reads_everything_it_asks_for() -> None:
    client_module = pytest.importorskip("py_clob_client.client", reason="py-clob-client is a dev extra")
    types = pytest.importorskip("py_clob_client.clob_types")
    book_params = types.BookParams

    async def scenario() -> None:
        async with Simulator(markets=2, seed=7) as sim:
            settle(sim)
            exchange = sim.exchange
            market = exchange.markets[0]
            yes, no = market.yes, market.no
            book = exchange.book(yes)
            creds = exchange.account.credentials
            client = client_module.ClobClient(
                sim.rest_url,
                chain_id=137,
                key=THROWAWAY_KEY,
                creds=types.ApiCreds(creds.api_key, creds.secret, creds.passphrase),
            )

            async def call(method: Callable[..., Any], *args: Any) -> Any:
                return await asyncio.to_thread(method, *args)  # the client is synchronous

            assert await call(client.get_ok) == "OK"
            assert await call(client.get_server_time) == exchange.now_ms // 1000

            summary = await call(client.get_order_book, yes)
            assert (summary.asset_id, summary.hash) == (yes, book.hash)
            assert [(o.price, o.size) for o in summary.bids] == [(lv.price, lv.size) for lv in book.bids]
            assert client.get_order_book_hash(summary) == book.hash, "the client recomputes our hash"
            summaries = await call(client.get_order_books, [book_params(yes), book_params(no)])
            assert [s.asset_id for s in summaries] == [yes, no]

            assert await call(client.get_price, yes, "BUY") == {"price": book.asks[-1].price}
            prices = await call(client.get_prices, [book_params(yes, "BUY"), book_params(no, "SELL")])
            assert set(prices) == {yes, no} and prices[yes] == {"BUY": book.asks[-1].price}
            mid = (Decimal(book.bids[-1].price) + Decimal(book.asks[-1].price)) / 2
            assert Decimal((await call(client.get_midpoint, yes))["mid"]) == mid
            assert set(await call(client.get_midpoints, [book_params(yes), book_params(no)])) == {yes, no}
            spread = Decimal(book.asks[-1].price) - Decimal(book.bids[-1].price)
            assert Decimal((await call(client.get_spread, yes))["spread"]) == spread
            assert set(await call(client.get_spreads, [book_params(yes), book_params(no)])) == {yes, no}

            assert await call(client.get_tick_size, no) == market.tick
            assert await call(client.get_neg_risk, yes) is market.neg_risk
            last = {"price": market.last_trade_price, "side": market.last_trade_side}
            assert await call(client.get_last_trade_price, yes) == last
            assert await call(client.get_last_trades_prices, [book_params(yes)]) == [
                {"token_id": yes, **last}
            ]

            document = await call(client.get_market, market.condition_id)
            assert [t["token_id"] for t in document["tokens"]] == [yes, no]

            # L2: py-clob-client signs with its own (unknown) address; the HMAC over the secret passes
            orders = await call(client.get_orders)
            assert {o["id"] for o in orders} == {o.id for o in exchange.account.open_orders()} != set()
            trades = await call(client.get_trades)
            assert {t["id"] for t in trades} == set(exchange.account.trades) != set()
            some = next(iter(exchange.account.orders))
            assert (await call(client.get_order, some))["id"] == some

    run(scenario)


def test_official_py_clob_client_sees_json_errors() -> None:
    client_module = pytest.importorskip("py_clob_client.client", reason="py-clob-client is a dev extra")
    types = pytest.importorskip("py_clob_client.clob_types")
    exceptions = pytest.importorskip("py_clob_client.exceptions")

    async def scenario() -> None:
        async with Simulator(markets=1, seed=3) as sim:
            sim.pause()
            creds = sim.exchange.account.credentials
            public = client_module.ClobClient(sim.rest_url)
            with pytest.raises(exceptions.PolyApiException) as missing:
                await asyncio.to_thread(public.get_order_book, UNKNOWN)
            assert (missing.value.status_code, missing.value.error_msg) == (404, {"error": NO_BOOK})

            wrong = types.ApiCreds(creds.api_key, "d3Jvbmc=", creds.passphrase)
            forger = client_module.ClobClient(sim.rest_url, chain_id=137, key=THROWAWAY_KEY, creds=wrong)
            with pytest.raises(exceptions.PolyApiException) as refused:
                await asyncio.to_thread(forger.get_orders)
            assert refused.value.status_code == 401 and "error" in refused.value.error_msg

    run(scenario)
