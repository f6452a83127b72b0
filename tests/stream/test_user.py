"""UserStream against the local exchange's account: state, reconciliation after a gap, bad credentials,
and secrets that never leak."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

import pytest

from polyfeed import UserStream
from polyfeed.errors import AuthenticationError, InvalidURLError
from polyfeed.net import Backoff
from polyfeed.session import Event, Reconciled
from polyfeed.session.user import UserState
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.venue import Venue
from polyfeed.wire import Credentials
from tests.waiting import until

BOUND_S = 60
FAST = Backoff(initial_s=0.01, max_s=0.05)


def run(main: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))  # type: ignore[arg-type]


def disagreement(state: UserState, sim: Simulator) -> str:
    """How the stream's state differs from the simulated account's ("" when it does not).

    An order placed and cancelled unfilled while the stream was cut off appears nowhere in REST and
    changes neither open orders nor fills: it may be missing, nothing else may."""
    account = sim.exchange.account
    for order in account.orders.values():
        mine = state.orders.get(order.id)
        if mine is None:
            if order.status == "LIVE" or order.matched:
                return f"order {order.id[:10]} ({order.status}, matched {order.matched}) unknown"
        elif mine.status != order.status or Decimal(mine.size_matched) != order.matched:
            return (
                f"order {order.id[:10]}: {mine.status} {mine.size_matched} != {order.status} {order.matched}"
            )
    for trade_id, trade in account.trades.items():
        if trade_id not in state.trades or state.trades[trade_id].status != trade.status:
            return f"trade {trade_id[:8]} {trade.status} is {state.trades.get(trade_id)}"
    return ""


async def until_agrees(stream: UserStream, sim: Simulator) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_S
    while difference := disagreement(stream.state, sim):
        assert loop.time() < deadline, f"the stream's state never matched the exchange's: {difference}"
        await asyncio.sleep(0.02)


def user_stream(sim: Simulator, **kwargs: object) -> UserStream:
    return UserStream(
        kwargs.pop("credentials", SIM_CREDENTIALS),  # type: ignore[arg-type]
        address=SIM_ADDRESS,
        ws_url=sim.ws_url + "/ws/user",
        rest_url=sim.rest_url,
        backoff=FAST,
        **kwargs,  # type: ignore[arg-type]
    )


def test_orders_placed_filled_and_cancelled_give_the_exchanges_state() -> None:
    async def main() -> None:
        # a trade takes 7 s of the exchange's clock to reach CONFIRMED: at clock_speed 10, 0.7 s of ours
        async with (
            Simulator(markets=3, seed=4, events_per_s=400, clock_speed=10) as sim,
            user_stream(sim) as stream,
        ):
            account = sim.exchange.account
            markets = {m.condition_id: m for m in sim.exchange.markets}

            def seen_everything() -> bool:
                orders = account.orders.values()
                return (
                    any(0 < o.matched < o.original for o in orders)
                    and any(o.status == "MATCHED" for o in orders)
                    and any(o.status == "CANCELED" for o in orders)
                    and any(o.asset_id == markets[o.market.condition_id].no and o.matched for o in orders)
                    and any(t.status == "CONFIRMED" for t in account.trades.values())
                )

            await until(seen_everything, "partial and full fills, a cancel, a NO-token fill, a confirmation")
            sim.pause()
            await until_agrees(stream, sim)
            state = stream.state
            fills_by_order: dict[str, Decimal] = {}
            for fill in state.fills(include_failed=True):
                fills_by_order[fill.order_id] = fills_by_order.get(fill.order_id, Decimal(0)) + Decimal(
                    fill.size
                )
            for order in account.orders.values():
                if order.matched:
                    assert fills_by_order[order.id] == order.matched, "each fill counted exactly once"
            no_fills = [
                f
                for f in state.fills(include_failed=True)
                if f.role == "MAKER" and f.asset_id == markets[state.trades[f.trade_id].market].no
            ]
            assert no_fills, "a maker fill on the NO token"
            for fill in no_fills:
                assert fill.price == account.orders[fill.order_id].price  # at 1 - p of the taker's YES price
                assert Decimal(fill.price) == 1 - Decimal(state.trades[fill.trade_id].trade.price)

    run(main)


def test_a_connection_dropped_in_the_middle_of_fills_is_reconciled_to_the_exchange() -> None:
    events: list[Event] = []

    async def main() -> None:
        async with (
            Simulator(markets=3, seed=8, events_per_s=400) as sim,
            user_stream(sim, on_event=events.append) as stream,
        ):
            assert stream.connection is not None
            connection = stream.connection
            await until(
                lambda: connection.reconciliations == 1 and sim.user.connections, "first reconciliation"
            )
            account = sim.exchange.account
            await until(lambda: any(o.is_open for o in stream.state.orders.values()), "an open order known")
            # The venue goes silent for this connection (messages are lost), then resets it.
            for conn in sim.user.connections:
                conn.zombie = True
            known = len(stream.state.trades)
            await until(lambda: len(account.trades) >= known + 3, "three trades the stream never heard of")
            await until(
                lambda: any(
                    o.status != "LIVE"
                    for o in account.orders.values()
                    if o.id in stream.state.orders and stream.state.orders[o.id].is_open
                ),
                "an order the stream holds open closed meanwhile",
            )
            for conn in list(sim.user.connections):
                assert conn.transport is not None
                conn.transport.abort()
            await until(lambda: connection.reconciliations == 2, "reconciliation after the reconnect")
            sim.pause()
            await until_agrees(stream, sim)
            assert connection.connects == 2

    run(main)
    second = [e for e in events if isinstance(e, Reconciled)][1]
    assert len(second.trades_added) >= 3 and second.orders_closed


def test_bad_credentials_end_in_an_authentication_error_not_an_endless_loop() -> None:
    wrong = Credentials(SIM_CREDENTIALS.api_key, SIM_CREDENTIALS.secret, "not-the-passphrase")

    async def main() -> None:
        async with Simulator(markets=1, seed=1) as sim, user_stream(sim, credentials=wrong) as stream:
            with pytest.raises(AuthenticationError, match="dropped 3 connections") as error:
                async for _ in stream:
                    pass
            assert (error.value.url, error.value.status) == (sim.user_url, None), "no HTTP answer said so"
            assert sim.user.rejected_auth == 3
            assert stream.connection is not None and stream.connection.connects == 3

    run(main)


def test_secrets_never_reach_a_log_line_a_repr_or_an_error(caplog: pytest.LogCaptureFixture) -> None:
    secrets = [SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase, "not-the-passphrase"]
    texts: list[str] = []

    async def main() -> None:
        async with Simulator(markets=2, seed=3, events_per_s=300) as sim:
            async with user_stream(sim) as stream:
                assert stream.connection is not None
                connection = stream.connection
                await until(lambda: connection.reconciliations == 1, "a reconciliation")
                texts.extend(
                    [repr(stream), str(stream.credentials), repr(stream.connection.session.credentials)]
                )
            wrong = Credentials(SIM_CREDENTIALS.api_key, SIM_CREDENTIALS.secret, "not-the-passphrase")
            async with user_stream(sim, credentials=wrong) as bad:
                with pytest.raises(AuthenticationError) as error:
                    async for _ in bad:
                        pass
                texts.append(str(error.value))

    with caplog.at_level(logging.DEBUG):
        run(main)
    texts.extend(r.getMessage() for r in caplog.records)
    texts.extend(str(r.args) for r in caplog.records)
    assert len(texts) > 5
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_a_stream_built_from_a_simulators_venue_connects_and_reconciles() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=3, events_per_s=300) as sim:
            stream = UserStream(SIM_CREDENTIALS, address=SIM_ADDRESS, venue=sim.venue, backoff=FAST)
            assert (stream.ws_url, stream.rest_url) == (sim.user_url, sim.rest_url)
            async with stream:
                async for event in stream:  # the user channel confirmed, then the venue's REST answered
                    if isinstance(event, Reconciled):
                        break
                assert stream.connection is not None and stream.connection.reconciliations >= 1

    run(main)


def test_a_venue_given_and_single_urls_in_place_of_its_own() -> None:
    local = Venue.local("ws://127.0.0.1:8765")
    assert UserStream(SIM_CREDENTIALS).venue == Venue.polymarket()
    stream = UserStream(SIM_CREDENTIALS, venue=local, ws_url="ws://127.0.0.1:9/ws/user")
    assert stream.venue == local.with_urls(user_url="ws://127.0.0.1:9/ws/user")
    assert (stream.ws_url, stream.rest_url) == ("ws://127.0.0.1:9/ws/user", local.rest_url)
    with pytest.raises(InvalidURLError, match="ws_url must be a ws:// or wss:// URL"):
        UserStream(SIM_CREDENTIALS, venue=local, ws_url="http://127.0.0.1:9/ws/user")
    with pytest.raises(InvalidURLError, match="rest_url must be a http:// or https:// URL"):
        UserStream(SIM_CREDENTIALS, rest_url="ws://127.0.0.1:9")
