"""REST calls: book metadata, and the L2-signed account calls against the local exchange."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from polyfeed.errors import AuthenticationError, PolyfeedError, VenueError, VenueUnreachableError
from polyfeed.net.rest import END_CURSOR, fetch_books, fetch_open_orders, fetch_order, fetch_trades, rest_row
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.wire import Credentials, Order, Trade
from polyfeed.wire.signing import verify_l2


@contextlib.asynccontextmanager
async def serving(routes: dict[str, Callable[[web.Request], Awaitable[web.Response]]]) -> AsyncIterator[str]:
    """A raw HTTP server on loopback answering ``GET`` on ``routes``; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(main: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(main(), 60))  # type: ignore[arg-type]


def test_signed_calls_list_what_the_account_holds() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=4, events_per_s=400) as sim, aiohttp.ClientSession() as http:
            account = sim.exchange.account
            while not (account.open_orders() and account.trades):
                await asyncio.sleep(0.02)
            sim.pause()
            orders = await fetch_open_orders(http, sim.rest_url, SIM_CREDENTIALS, SIM_ADDRESS)
            assert {o.id for o in orders} == {o.id for o in account.open_orders()}
            assert all(o.created_at.isdigit() for o in orders), "JSON numbers become the channel's strings"
            trades = await fetch_trades(http, sim.rest_url, SIM_CREDENTIALS, SIM_ADDRESS)
            assert {t.id for t in trades} == set(account.trades)
            some = next(iter(account.orders.values()))
            one = await fetch_order(http, sim.rest_url, SIM_CREDENTIALS, some.id, SIM_ADDRESS)
            assert one is not None and (one.id, one.status) == (some.id, some.status)
            assert await fetch_order(http, sim.rest_url, SIM_CREDENTIALS, "0xunknown", SIM_ADDRESS) is None
            market = sim.exchange.markets[0].condition_id
            only = await fetch_open_orders(http, sim.rest_url, SIM_CREDENTIALS, SIM_ADDRESS, [market])
            assert {o.market for o in only} <= {market}

    run(main)


def test_a_refused_signature_is_an_authentication_error_without_the_secret() -> None:
    wrong = Credentials(SIM_CREDENTIALS.api_key, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", "wrong-pass")

    async def main() -> None:
        async with Simulator(markets=1, seed=1) as sim, aiohttp.ClientSession() as http:
            with pytest.raises(AuthenticationError, match="HTTP 401") as error:
                await fetch_trades(http, sim.rest_url, wrong)
            assert wrong.secret not in str(error.value) and "wrong-pass" not in str(error.value)
            assert (error.value.status, error.value.url) == (401, sim.rest_url.rstrip("/") + "/data/trades")

    run(main)


def test_lists_are_read_page_by_page_with_signed_requests() -> None:
    pages = {"": ("MQ==", ["a", "b"]), "MQ==": ("Mg==", ["c"]), "Mg==": (END_CURSOR, ["d"])}
    seen: list[str] = []

    async def data_trades(request: web.Request) -> web.Response:
        assert verify_l2(SIM_CREDENTIALS, dict(request.headers), "GET", "/data/trades")
        cursor = request.query.get("next_cursor", "")
        seen.append(cursor)
        following, ids = pages[cursor]
        rows: list[dict[str, Any]] = [
            {
                "id": i,
                "market": "m",
                "asset_id": "1",
                "side": "BUY",
                "size": "1",
                "price": "0.5",
                "status": "CONFIRMED",
                "match_time": 1726043102,
                "bucket_index": 0,
            }
            for i in ids
        ]
        return web.json_response({"data": rows, "next_cursor": following})

    async def main() -> None:
        async with serving({"/data/trades": data_trades}) as url, aiohttp.ClientSession() as http:
            trades = await fetch_trades(http, url, SIM_CREDENTIALS)
        assert [t.id for t in trades] == ["a", "b", "c", "d"] and seen == ["", "MQ==", "Mg=="]
        assert trades[0].match_time == "1726043102" and trades[0].bucket_index == 0

    run(main)


def test_rest_rows_become_channel_structs_or_a_clear_error() -> None:
    row = {"id": "0x1", "market": "m", "asset_id": "1", "side": "BUY", "price": "0.5", "created_at": 17258425}
    assert rest_row(row, Order).created_at == "17258425"
    with pytest.raises(PolyfeedError, match="trade row does not fit"):
        rest_row({"id": "t"}, Trade)


def test_a_200_whose_body_is_not_json_is_a_polyfeed_error_not_a_decode_error() -> None:
    """A proxy's HTML page with status 200 during a reconciliation (issue 12, item 11)."""

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>", content_type="text/html")

    async def main() -> None:
        routes = {"/data/trades": html, "/data/orders": html}
        async with serving(routes) as url, aiohttp.ClientSession() as http:
            for call in (fetch_trades, fetch_open_orders):
                with pytest.raises(VenueError, match="not JSON") as caught:
                    await call(http, url, SIM_CREDENTIALS)
                assert caught.value.status == 200

    run(main)


def test_an_error_answer_is_a_venue_error_with_its_status_and_url() -> None:
    async def main() -> None:
        async with Simulator(markets=1, seed=1) as sim, aiohttp.ClientSession() as http:
            assets = sim.exchange.asset_ids()
            await sim.inject({"kind": "rest_error", "status": 500, "count": 2})
            with pytest.raises(VenueError) as books:
                await fetch_books(http, sim.rest_url, assets)
            with pytest.raises(VenueError) as orders:
                await fetch_open_orders(http, sim.rest_url + "/", SIM_CREDENTIALS, SIM_ADDRESS)
            for caught, path in ((books, "/books"), (orders, "/data/orders")):
                assert type(caught.value) is VenueError
                assert (caught.value.url, caught.value.status) == (sim.rest_url + path, 500)
                assert caught.value.reason == "answered HTTP 500 Internal Server Error"
            assert [b.asset_id for b in await fetch_books(http, sim.rest_url, assets)] == assets

    run(main)


def test_a_refused_port_is_a_venue_unreachable_error_naming_the_url(closed_port: int) -> None:
    async def main() -> None:
        base = f"http://127.0.0.1:{closed_port}"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(VenueUnreachableError) as books:
                await fetch_books(http, base, ["1"])
            with pytest.raises(VenueUnreachableError) as trades:
                await fetch_trades(http, base, SIM_CREDENTIALS)
        for caught, path in ((books, "/books"), (trades, "/data/trades")):
            assert (caught.value.url, caught.value.status, caught.value.reason) == (
                base + path,
                None,
                "connection refused",
            )
            assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError), "the cause is kept"

    run(main)
