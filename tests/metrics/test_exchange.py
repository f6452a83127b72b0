"""The local exchange's own ``/metrics`` and ``/healthz`` (:mod:`polyfeed.metrics.exchange`), scraped over
real HTTP and parsed with ``prometheus_client``'s parser: the counters move as clients and faults say."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polyfeed.metrics.exchange import ExchangeCollector, serve_exchange_metrics
from polyfeed.metrics.server import CollectorServer
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_CREDENTIALS
from tests.metrics.test_server import Scrape
from tests.waiting import BOUND_S, until


async def scrape(http: aiohttp.ClientSession, server: CollectorServer) -> Scrape:
    async with http.get(server.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == prometheus_client.CONTENT_TYPE_LATEST
        text = await response.text()
    assert all(f.name.startswith(("polyfeed_sim_", "process_")) for f in text_string_to_metric_families(text))
    return Scrape(text)


async def healthz(http: aiohttp.ClientSession, server: CollectorServer) -> tuple[int, dict[str, Any]]:
    async with http.get(server.url + "/healthz") as response:
        body: dict[str, Any] = json.loads(await response.text())
        return response.status, body


def test_a_client_moves_the_exchanges_connection_and_frame_counters() -> None:
    """One market client: the frames the exchange counts as sent are exactly those the client received
    (the flow paused, every queue written); its connection is counted open, then closed."""

    async def main() -> None:
        async with (
            Simulator(markets=2, seed=3, events_per_s=300) as sim,
            await serve_exchange_metrics(sim, 0) as server,
            aiohttp.ClientSession() as http,
        ):
            assert server.host == "127.0.0.1" and server.port not in (0, sim.port)
            before = await scrape(http, server)
            assert before.value("polyfeed_sim_connections_open", channel="market") == 0
            assert before.value("polyfeed_sim_frames_sent_total") == 0
            assert before.value("polyfeed_sim_markets_open") == 2
            assert await healthz(http, server) == (
                200,
                {
                    "status": "ok",
                    "serving": True,
                    "flow": "running",
                    "markets_open": 2,
                    "connections_open": {"market": 0, "user": 0},
                    "faults_injected": 0,
                },
            )
            received = 0
            async with http.ws_connect(sim.market_url) as ws:
                await ws.send_str(json.dumps({"type": "market", "assets_ids": sim.exchange.asset_ids()}))
                while received < 20:  # the initial dump, then the flow's messages
                    assert (await ws.receive()).type is aiohttp.WSMsgType.TEXT
                    received += 1
                sim.pause()
                # PONG is queued behind every frame the flow sent: once it arrives, the client has
                # received all that the exchange counts as sent (PONG included)
                await ws.send_str("PING")
                while (await ws.receive()).data != "PONG":
                    received += 1
                received += 1
                during = await scrape(http, server)
                assert during.value("polyfeed_sim_connections_open", channel="market") == 1
                assert during.value("polyfeed_sim_connections_total", channel="market") == 1
                assert during.value("polyfeed_sim_subscribed_assets") == 4
                assert during.value("polyfeed_sim_frames_sent_total", channel="market") == received
                assert during.value("polyfeed_sim_frames_sent_total", channel="user") == 0
                assert during.value("polyfeed_sim_flow_paused") == 1
                assert during.value("polyfeed_sim_flow_events_total") > 0
                status, body = await healthz(http, server)
                assert status == 200 and body["flow"] == "paused"
                assert body["connections_open"] == {"market": 1, "user": 0}
                sim.resume()
            await until(lambda: not sim.market.connections, "the connection closed at the exchange")
            after = await scrape(http, server)
            assert after.value("polyfeed_sim_connections_open", channel="market") == 0
            assert after.value("polyfeed_sim_connections_total", channel="market") == 1
            assert after.value("polyfeed_sim_flow_paused") == 0

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_faults_refusals_and_rest_answers_are_counted_by_kind_reason_route_and_status() -> None:
    async def main() -> None:
        async with (
            Simulator(markets=2, seed=3, events_per_s=300) as sim,
            await serve_exchange_metrics(sim, 0, process=False) as server,
            aiohttp.ClientSession() as http,
        ):
            token = sim.exchange.asset_ids()[0]
            await sim.inject({"kind": "rest_error", "count": 1, "status": 503})
            await sim.inject({"kind": "reject_connects", "count": 1})
            for _ in range(2):  # the first answered by the fault, the second by the exchange
                async with http.get(f"{sim.rest_url}/book", params={"token_id": token}) as response:
                    await response.read()
            async with http.get(f"{sim.rest_url}/markets/slug/sim-market-1") as response:
                assert response.status == 200
            async with http.get(f"{sim.rest_url}/markets/slug/no-such-market") as response:
                assert response.status == 404
            async with http.get(f"{sim.rest_url}/no/such/path") as response:
                assert response.status == 404
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused_by_fault:
                await http.ws_connect(sim.market_url)
            assert refused_by_fault.value.status == 429
            async with http.ws_connect(sim.market_url) as ws:  # not a subscription: closed 1008
                await ws.send_str("PING")
                assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
            wrong = {"apiKey": SIM_CREDENTIALS.api_key, "secret": "wrong", "passphrase": "wrong"}
            async with http.ws_connect(sim.user_url) as ws:  # dropped without a close frame
                await ws.send_str(json.dumps({"type": "user", "auth": wrong}))
                assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            right = {
                "apiKey": SIM_CREDENTIALS.api_key,
                "secret": SIM_CREDENTIALS.secret,
                "passphrase": SIM_CREDENTIALS.passphrase,
            }
            async with http.ws_connect(sim.user_url) as ws:
                await ws.send_str(json.dumps({"type": "user", "auth": right}))
                await until(lambda: bool(sim.user.connections), "the user connection accepted")
                await sim.inject({"kind": "zombie"})
                scraped = await scrape(http, server)
                assert scraped.value("polyfeed_sim_zombie_connections", channel="user") == 1
                assert scraped.value("polyfeed_sim_connections_open", channel="user") == 1
            scraped = await scrape(http, server)
            assert scraped.value("polyfeed_sim_faults_injected_total", kind="rest_error") == 1
            assert scraped.value("polyfeed_sim_faults_injected_total", kind="reject_connects") == 1
            assert scraped.value("polyfeed_sim_faults_injected_total", kind="zombie") == 1
            assert scraped.value("polyfeed_sim_faults_injected_total", kind="drop") == 0
            requests = {
                (s.labels["path"], s.labels["status"]): s.value
                for s in scraped.samples
                if s.name == "polyfeed_sim_http_requests_total"
            }
            assert requests == {
                ("/book", "503"): 1,
                ("/book", "200"): 1,
                ("/markets/slug/{slug}", "200"): 1,
                ("/markets/slug/{slug}", "404"): 1,
                ("other", "404"): 1,
            }, "route patterns, never the paths asked; WebSocket upgrades are not requests"
            refused = {
                (s.labels["channel"], s.labels["reason"]): s.value
                for s in scraped.samples
                if s.name == "polyfeed_sim_connections_refused_total"
            }
            assert refused == {
                ("market", "fault"): 1,
                ("market", "subscription"): 1,
                ("user", "auth"): 1,
                ("user", "subscription"): 0,
            }
            assert scraped.value("polyfeed_sim_connections_total", channel="user") == 1
            assert scraped.value("polyfeed_sim_connections_total", channel="market") == 0
            text = json.dumps([(s.name, s.labels, s.value) for s in scraped.samples])
            for secret in (SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase, SIM_CREDENTIALS.api_key):
                assert secret not in text

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_the_accounts_orders_and_trades_are_what_the_exchange_holds() -> None:
    async def main() -> None:
        async with (
            Simulator(markets=3, seed=4, events_per_s=400, clock_speed=10) as sim,
            await serve_exchange_metrics(sim, 0, process=False) as server,
            aiohttp.ClientSession() as http,
        ):
            account = sim.exchange.account
            await until(lambda: bool(account.open_orders()) and bool(account.trades), "an order, a trade")
            sim.pause()
            scraped = await scrape(http, server)
            assert scraped.value("polyfeed_sim_account_orders_open") == len(account.open_orders())
            trades = {
                s.labels["status"]: s.value
                for s in scraped.samples
                if s.name == "polyfeed_sim_account_trades"
            }
            assert sum(trades.values()) == len(account.trades) > 0
            assert {"MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"} <= trades.keys()

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_healthz_is_503_until_the_exchange_serves_and_once_it_stopped() -> None:
    async def main() -> None:
        sim = Simulator(markets=1, seed=1)
        async with (
            aiohttp.ClientSession() as http,
            await serve_exchange_metrics(sim, 0, process=False) as server,
        ):
            status, body = await healthz(http, server)
            assert (status, body["status"], body["flow"]) == (503, "unhealthy", "stopped")
            async with sim:
                assert await healthz(http, server) == (
                    200,
                    {
                        "status": "ok",
                        "serving": True,
                        "flow": "running",
                        "markets_open": 1,
                        "connections_open": {"market": 0, "user": 0},
                        "faults_injected": 0,
                    },
                )
            status, body = await healthz(http, server)  # its metrics outlive it here, not in polyfeed sim
            assert (status, body["serving"], body["flow"]) == (503, False, "stopped")

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_every_metric_served_is_on_the_operations_page() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    named = {re.sub(r"_total$", "", n) for n in re.findall(r"\bpolyfeed_sim_[a-z_]+", docs.read_text())}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExchangeCollector(Simulator(markets=1)))
    families = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families and families <= named, sorted(families - named)
