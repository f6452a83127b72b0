"""``/metrics`` and ``/healthz`` scraped over real HTTP while the local exchange injects faults: the
counters move as the faults say, parsed with ``prometheus_client``'s own parser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from polyfeed import MarketStream
from polyfeed.book import BookStatus
from polyfeed.fanout import Collector, NatsMarketStream, publish
from polyfeed.metrics import MetricsServer, serve_metrics
from polyfeed.net import Backoff
from polyfeed.session import SessionConfig
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.stream import UserStream
from tests.natsserver import NatsServer
from tests.waiting import BOUND_S, until, until_async

FAST = Backoff(initial_s=0.01, max_s=0.05)


class Scrape:
    """One ``/metrics`` answer, parsed by ``prometheus_client``: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        found = [s for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert found, f"no sample {name} {labels}"
        return sum(s.value for s in found)

    def books_by_status(self) -> dict[str, float]:
        return {s.labels["status"]: s.value for s in self.samples if s.name == "polyfeed_books"}


async def scrape(http: aiohttp.ClientSession, server: MetricsServer) -> Scrape:
    async with http.get(server.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == prometheus_client.CONTENT_TYPE_LATEST
        return Scrape(await response.text())


async def healthz(http: aiohttp.ClientSession, server: MetricsServer) -> tuple[int, dict[str, Any]]:
    async with http.get(server.url + "/healthz") as response:
        body: dict[str, Any] = json.loads(await response.text())
        return response.status, body


Body = Callable[[Simulator, MarketStream, MetricsServer, aiohttp.ClientSession], Awaitable[None]]


def scenario(body: Body, *, config: SessionConfig | None = None, markets: int = 2) -> None:
    """A stream of every token of the exchange, its metrics served on a free loopback port; ``body``
    runs once every book is live. Every scrape's books by status add up to the books followed."""

    async def main() -> None:
        async with Simulator(markets=markets, seed=9, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            stream = MarketStream(assets, venue=sim.venue, backoff=FAST, config=config)
            async with (
                stream,
                await serve_metrics(0, streams=[stream]) as server,
                aiohttp.ClientSession() as http,
            ):
                assert server.host == "127.0.0.1" and server.port > 0
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                first = await scrape(http, server)
                assert first.books_by_status() == {s.value: 0.0 for s in BookStatus} | {"live": len(assets)}
                assert (await healthz(http, server))[0] == 200
                await body(sim, stream, server, http)
                last = await scrape(http, server)
                assert sum(last.books_by_status().values()) == len(stream.books) == len(assets)

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))


async def until_scraped(
    http: aiohttp.ClientSession, server: MetricsServer, condition: Callable[[Scrape], bool], what: str
) -> Scrape:
    """Scrape until ``condition`` holds of a scrape (bounded); returns that scrape."""
    seen: list[Scrape] = []

    async def holds() -> bool:
        seen.append(await scrape(http, server))
        return condition(seen[-1])

    await until_async(holds, what)
    return seen[-1]


def test_a_reset_is_one_reconnect() -> None:
    async def body(
        sim: Simulator, stream: MarketStream, server: MetricsServer, http: aiohttp.ClientSession
    ) -> None:
        before = await scrape(http, server)
        assert before.value("polyfeed_reconnects_total") == 0
        assert before.value("polyfeed_connects_total") == 1
        assert before.value("polyfeed_connections_open", channel="market") == 1
        await sim.inject({"kind": "drop", "mode": "reset"})
        after = await until_scraped(
            http,
            server,
            lambda s: s.value("polyfeed_reconnects_total") >= 1 and s.value("polyfeed_connection_up") == 1,
            "the reconnect after the reset, scraped",
        )
        assert after.value("polyfeed_reconnects_total", connection="1", channel="market") == 1
        assert after.value("polyfeed_connects_total") == 2
        # a reset is neither silence nor a missing PONG, and no zombie: the connection was closed
        assert after.value("polyfeed_idle_timeouts_total") == after.value("polyfeed_pong_timeouts_total") == 0
        assert after.value("polyfeed_messages_received_total") > before.value(
            "polyfeed_messages_received_total"
        )
        assert after.value("polyfeed_received_bytes_total") > before.value("polyfeed_received_bytes_total")

    scenario(body)


def test_a_corrupted_level_is_one_failed_hash_check_and_one_resync() -> None:
    async def body(
        sim: Simulator, stream: MarketStream, server: MetricsServer, http: aiohttp.ClientSession
    ) -> None:
        asset = sorted(stream.books)[0]
        sim.pause()  # without flow no venue snapshot can mend the book first: the hash must catch it
        before = await scrape(http, server)
        failed = {"kind": "hash", "result": "failed"}
        assert before.value("polyfeed_book_checks_total", **failed) == 0
        await sim.inject({"kind": "corrupt", "asset_id": asset})
        after = await until_scraped(
            http,
            server,
            lambda s: (
                s.value("polyfeed_resyncs_total", outcome="completed") >= 1
                and s.books_by_status()["live"] == len(stream.books)
            ),
            "the resync, scraped, and every book live again",
        )
        assert after.value("polyfeed_book_checks_total", **failed) == 1
        assert after.value("polyfeed_book_checks_total", kind="hash", result="passed") >= before.value(
            "polyfeed_book_checks_total", kind="hash", result="passed"
        )
        assert after.value("polyfeed_resyncs_total", outcome="requested") == 1
        assert after.value("polyfeed_resyncs_total", outcome="completed") == 1
        assert after.value("polyfeed_resyncs_total", outcome="failed") == 0
        assert after.value("polyfeed_resyncs_pending") == 0
        budget = SessionConfig().resync_burst
        assert budget - 1 <= after.value("polyfeed_resync_budget") <= budget, "one REST call taken"
        sim.resume()

    scenario(body, config=SessionConfig(settle_after_s=0.05, final_settle_after_s=0.2))


def test_a_zombie_is_one_zombie_and_healthz_is_503_until_the_books_are_live_again() -> None:
    async def body(
        sim: Simulator, stream: MarketStream, server: MetricsServer, http: aiohttp.ClientSession
    ) -> None:
        assert await healthz(http, server) == (
            200,
            {
                "status": "ok",
                "books_followed": 4,
                "books_by_status": {"syncing": 0, "live": 4, "suspect": 0, "stale": 0, "closed": 0},
                "books_not_live": [],
                "connections_down": [],
                "streams_failed": [],
                "connections_up": {"market": 1},
            },
        )
        before = await scrape(http, server)
        assert before.value("polyfeed_zombies_detected_total") == 0
        # Reconnects are refused until the test says so: the outage lasts as long as the test needs,
        # whatever the machine's load, instead of the few milliseconds of a reconnect.
        await sim.inject({"kind": "reject_connects", "count": 1_000_000})
        await sim.inject({"kind": "zombie"})
        await until(lambda: not stream.sessions[0].connected, "the silence closes the connection")
        status, health = await healthz(http, server)
        assert status == 503 and health["status"] == "unhealthy"
        assert health["connections_down"] == [{"stream": "market", "channel": "market", "connection": 1}]
        assert health["books_followed"] == 4 and health["books_by_status"]["stale"] == 4
        assert {b["asset_id"] for b in health["books_not_live"]} == set(stream.books)
        assert all("zombie connection" in b["reason"] for b in health["books_not_live"])
        down = await scrape(http, server)
        assert down.value("polyfeed_connection_up") == 0 and down.value("polyfeed_connections_open") == 0
        assert down.value("polyfeed_idle_timeouts_total") == 1
        await sim.inject({"kind": "reject_connects", "count": 1})  # one more refusal, then the way is open

        async def healthy() -> bool:
            return (await healthz(http, server))[0] == 200

        await until_async(healthy, "/healthz 200 once reconnected with every book live")
        # The flow went on while the zombie passed nothing on: the fresh snapshots differ from the books.
        after = await until_scraped(
            http, server, lambda s: s.value("polyfeed_zombies_detected_total") >= 1, "the zombie, told"
        )
        assert after.value("polyfeed_zombies_detected_total", connection="1") == 1
        assert after.value("polyfeed_quiet_silences_total") == 0
        assert after.value("polyfeed_reconnects_total") == 1
        assert after.value("polyfeed_connect_failures_total") >= 1, "the refusals"

    scenario(body, config=SessionConfig(min_idle_s=0.5, max_idle_s=1.0))


def test_metrics_are_served_from_a_registry_of_their_own_with_the_lag_and_the_process() -> None:
    async def body(
        sim: Simulator, stream: MarketStream, server: MetricsServer, http: aiohttp.ClientSession
    ) -> None:
        scraped = await until_scraped(
            http, server, lambda s: s.value("polyfeed_lag_seconds_count") > 0, "a venue timestamp seen"
        )
        lag = scraped.families["polyfeed_lag_seconds"]
        assert lag.type == "histogram"
        buckets = [s for s in lag.samples if s.name == "polyfeed_lag_seconds_bucket"]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), "cumulative"
        assert buckets[-1].labels["le"] == "+Inf" and counts[-1] == scraped.value(
            "polyfeed_lag_seconds_count"
        )
        assert scraped.value("process_resident_memory_bytes") > 0
        assert not any(
            name.startswith("polyfeed_") for name in prometheus_client.REGISTRY._names_to_collectors
        ), "the global registry is left alone"

    scenario(body)


def test_a_user_stream_shows_its_orders_trades_and_reconciliation() -> None:
    async def main() -> None:
        async with (
            Simulator(markets=3, seed=4, events_per_s=400, clock_speed=10) as sim,
            UserStream(
                SIM_CREDENTIALS,
                address=SIM_ADDRESS,
                ws_url=sim.ws_url + "/ws/user",
                rest_url=sim.rest_url,
                backoff=FAST,
            ) as stream,
            await serve_metrics(0, streams=[stream]) as server,
            aiohttp.ClientSession() as http,
        ):
            assert stream.connection is not None
            session = stream.connection.session
            await until(lambda: session.reconciliations == 1 and bool(stream.state.trades), "a trade")
            scraped = await scrape(http, server)
            assert scraped.value("polyfeed_user_reconciliations_total", stream="user") >= 1
            assert scraped.value("polyfeed_connection_up", channel="user") == 1
            assert scraped.value("polyfeed_user_orders_open") == sum(
                o.is_open for o in stream.state.orders.values()
            )
            trades = {
                s.labels["status"]: s.value for s in scraped.samples if s.name == "polyfeed_user_trades"
            }
            assert sum(trades.values()) == len(stream.state.trades)
            async with http.get(server.url + "/metrics") as response:
                text = await response.text() + json.dumps((await healthz(http, server))[1])
            for secret in (SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase, SIM_CREDENTIALS.api_key):
                assert secret not in text, "no secret in the metrics or the health answer"

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))


def test_a_metrics_port_taken_is_an_os_error() -> None:
    async def main() -> None:
        async with await serve_metrics(0, process=False) as first:
            try:
                await serve_metrics(first.port)
            except OSError:
                return
            raise AssertionError("a second server bound the same port")

    asyncio.run(main())


def test_a_fanout_collector_and_a_nats_stream_are_scraped_and_judged_through_a_nats_outage(
    nats_server: NatsServer,
) -> None:
    """``publish``'s collector and a :class:`NatsMarketStream` reading it, served together: their
    counters move as messages go through NATS; with NATS stopped both say so and /healthz is 503 naming
    the two NATS connections; with NATS back, both reconnect and every book is live again."""

    async def main() -> None:
        async with Simulator(markets=2, seed=9, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            opened: list[tuple[MarketStream, Collector]] = []
            stop = asyncio.Event()
            job = asyncio.create_task(
                publish(
                    nats_server.url, assets, venue=sim.venue, on_open=lambda *o: opened.append(o), stop=stop
                )
            )
            await until(lambda: bool(opened) or job.done(), "the collector's stream open")
            market, collector = opened[0]
            consumer = NatsMarketStream(nats_server.url, assets, max_queue=0)
            async with (
                await serve_metrics(0, streams=[market], fanouts=[collector]) as server,
                aiohttp.ClientSession() as http,
            ):
                await until_async(lambda: healthy(http, server), "the collector's books live, NATS up")
                async with consumer:
                    assert server.collector.add_stream(consumer) == "nats"
                    await until_async(lambda: healthy(http, server), "the consumer's books live too")
                    up = await until_scraped(
                        http, server, lambda s: s.value("polyfeed_fanout_received_total") > 0, "taken"
                    )
                    assert up.value("polyfeed_fanout_nats_connected", fanout="POLYFEED") == 1
                    assert up.value("polyfeed_fanout_acked_total", fanout="POLYFEED") > 0
                    assert (
                        up.value("polyfeed_fanout_failed_total")
                        == up.value("polyfeed_fanout_gaps_published_total")
                        == 0
                    )
                    assert up.value("polyfeed_connections_open", stream="nats", channel="nats") == 1
                    assert up.value("polyfeed_messages_received_total", channel="nats") > 0
                    assert up.value("polyfeed_fanout_undecodable_total", stream="nats") == 0
                    assert up.value("polyfeed_fanout_sequence", stream="nats") > 0
                    for name in ("market", "nats"):
                        assert up.value("polyfeed_books", stream=name, status="live") == len(assets), name

                    await asyncio.to_thread(nats_server.stop)
                    down = await until_scraped(
                        http,
                        server,
                        lambda s: (
                            s.value("polyfeed_fanout_nats_connected") == 0
                            and s.value("polyfeed_connection_up", channel="nats") == 0
                        ),
                        "both NATS connections down, scraped",
                    )
                    assert down.value("polyfeed_connections_open", stream="nats", channel="nats") == 0
                    status, health = await healthz(http, server)
                    assert status == 503
                    assert {"stream": "POLYFEED", "channel": "nats", "connection": None} in health[
                        "connections_down"
                    ]
                    assert {"stream": "nats", "channel": "nats", "connection": 1} in health[
                        "connections_down"
                    ]

                    await asyncio.to_thread(nats_server.start)  # the same port and store
                    await until_async(
                        lambda: healthy(http, server), "/healthz 200 again: NATS back, books live"
                    )
                    back = await scrape(http, server)
                    assert back.value("polyfeed_fanout_nats_connected") == 1
                    assert back.value("polyfeed_connection_up", channel="nats") == 1
            stop.set()
            await job

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 3))


async def healthy(http: aiohttp.ClientSession, server: MetricsServer) -> bool:
    return (await healthz(http, server))[0] == 200
