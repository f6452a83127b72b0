"""The exchange's user channel and the account's L2-signed REST calls, over real connections."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import msgspec

from polyfeed.sim import Simulator
from polyfeed.wire import Credentials, Order, Trade, decode_user, encode_user_subscription
from polyfeed.wire.signing import l2_headers
from tests.sim.simclient import run

SUBSCRIBE = encode_user_subscription


def test_the_account_hears_its_orders_and_trades_and_only_its_markets() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=3_000) as sim, aiohttp.ClientSession() as http:
            credentials = sim.exchange.account.credentials
            market = sim.exchange.markets[0].condition_id
            async with http.ws_connect(sim.ws_url + "/ws/user") as ws:
                await ws.send_str(SUBSCRIBE(credentials, [market]).decode())
                kinds: set[type] = set()
                markets: set[str] = set()
                async for frame in ws:
                    for message in decode_user(frame.data):
                        kinds.add(type(message))
                        markets.add(message.market)  # type: ignore[union-attr]
                        assert message.owner == credentials.api_key  # type: ignore[union-attr]
                    if {Order, Trade} <= kinds:
                        break
                assert markets == {market}, "only the subscribed market's events"

    run(scenario)


def test_bad_credentials_drop_the_connection_without_a_close_frame() -> None:
    async def scenario() -> None:
        async with Simulator(markets=1) as sim, aiohttp.ClientSession() as http:
            wrong = Credentials(sim.exchange.account.credentials.api_key, "d3Jvbmc=", "nope")
            async with http.ws_connect(sim.ws_url + "/ws/user") as ws:
                await ws.send_str(SUBSCRIBE(wrong).decode())
                frame = await ws.receive()
                assert frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                assert frame.type is not aiohttp.WSMsgType.CLOSE, "no close handshake, as on the venue"
            assert sim.user.rejected_auth == 1

    run(scenario)


def test_signed_rest_lists_open_orders_and_trades_and_refuses_unsigned_calls() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=3_000) as sim, aiohttp.ClientSession() as http:
            account = sim.exchange.account
            while not (account.open_orders() and account.trades):
                await asyncio.sleep(0.05)
            sim.pause()

            def signed(path: str, credentials: Credentials = account.credentials) -> dict[str, str]:
                return l2_headers(credentials, "0xabc", str(int(time.time())), "GET", path)

            async with http.get(sim.rest_url + "/data/orders", headers=signed("/data/orders")) as r:
                body = await r.json()
                assert r.status == 200 and body["next_cursor"] == "LTE="
                assert {o["id"] for o in body["data"]} == {o.id for o in account.open_orders()}
            async with http.get(sim.rest_url + "/data/trades", headers=signed("/data/trades")) as r:
                rows = (await r.json())["data"]
                assert {t["id"] for t in rows} == set(account.trades)
                assert all(isinstance(msgspec.convert(row, Trade), Trade) for row in rows), (
                    "REST rows are trades"
                )
            async with http.get(sim.rest_url + "/data/orders") as r:
                assert r.status == 401
            forged = Credentials(account.credentials.api_key, "AAAA", account.credentials.passphrase)
            async with http.get(sim.rest_url + "/data/orders", headers=signed("/data/orders", forged)) as r:
                assert r.status == 401
            async with http.get(sim.rest_url + "/data/orders", headers=signed("/data/trades")) as r:
                assert r.status == 401, "a signature covers its own path only"

    run(scenario)


def test_signed_rest_reads_header_names_case_insensitively_and_filters_as_py_clob_client_asks() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=5) as sim, aiohttp.ClientSession() as http:
            sim.pause()
            account = sim.exchange.account
            for _ in range(200_000):
                if len(account.open_orders()) > 1 and account.trades:
                    break
                sim.exchange.step()
            now = str(int(time.time()))

            def lower(path: str) -> dict[str, str]:  # as an HTTP/2 client sends them
                headers = l2_headers(account.credentials, "0xabc", now, "GET", path)
                return {name.lower(): value for name, value in headers.items()}

            order = account.open_orders()[0]
            query = {"id": order.id, "next_cursor": "MA=="}
            async with http.get(
                sim.rest_url + "/data/orders", params=query, headers=lower("/data/orders")
            ) as r:
                assert r.status == 200
                assert [o["id"] for o in (await r.json())["data"]] == [order.id]
            trade = next(iter(account.trades.values()))
            query = {"id": trade.id, "market": trade.market, "next_cursor": "MA=="}
            async with http.get(
                sim.rest_url + "/data/trades", params=query, headers=lower("/data/trades")
            ) as r:
                assert r.status == 200
                assert [t["id"] for t in (await r.json())["data"]] == [trade.id]

    run(scenario)
