"""The simulated account: its orders stay consistent with the book, its trades run their lifecycle."""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal

from polyfeed.sim import Exchange
from polyfeed.sim.account import SIM_CREDENTIALS
from polyfeed.wire import Order, Trade

TERMINAL = {"CONFIRMED", "FAILED"}
NEXT = {"MATCHED": {"MINED"}, "MINED": {"CONFIRMED", "RETRYING", "FAILED"}, "RETRYING": {"CONFIRMED"}}


def run_exchange(steps: int) -> tuple[Exchange, list[Order | Trade]]:
    exchange = Exchange(markets=3, seed=21)
    user = [out.message for out in exchange.run(steps, elapsed_ms=50) if out.channel == "user"]
    return exchange, user  # type: ignore[return-value]


def test_resting_orders_are_always_inside_their_level() -> None:
    exchange = Exchange(markets=3, seed=21)
    for _ in range(6_000):
        exchange.step(elapsed_ms=50)
        for order in exchange.account.open_orders():
            levels = order.market.bids if order.yes_buy else order.market.asks
            assert levels.get(order.key, Decimal(0)) >= order.remaining, "the book holds the account's size"


def test_order_events_tell_a_consistent_story() -> None:
    _, user = run_exchange(6_000)
    orders = [m for m in user if isinstance(m, Order)]
    assert {o.type for o in orders} == {"PLACEMENT", "UPDATE", "CANCELLATION"}
    by_id: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_id[order.id].append(order)
    for events in by_id.values():
        assert events[0].type == "PLACEMENT" and events[0].status == "LIVE"
        matched = [Decimal(e.size_matched) for e in events]
        assert matched == sorted(matched), "size_matched is cumulative"
        assert matched[-1] <= Decimal(events[0].original_size)
        assert all(e.owner == SIM_CREDENTIALS.api_key for e in events)


def test_trades_run_their_lifecycle_and_maker_fills_sit_on_the_order_s_own_token() -> None:
    exchange, user = run_exchange(12_000)
    trades = [m for m in user if isinstance(m, Trade)]
    history: dict[str, list[str]] = defaultdict(list)
    for trade in trades:
        history[trade.id].append(trade.status)
    assert any(h[-1] == "CONFIRMED" for h in history.values())
    for statuses in history.values():
        assert statuses[0] == "MATCHED"
        for before, after in itertools.pairwise(statuses):
            assert after in NEXT[before], statuses
    makers = [t for t in trades if t.trader_side == "MAKER" and t.status == "MATCHED"]
    takers = [t for t in trades if t.trader_side == "TAKER" and t.status == "MATCHED"]
    assert makers and takers
    for trade in makers:
        (mine,) = trade.maker_orders
        order = exchange.account.orders[mine.order_id]
        assert mine.asset_id == order.asset_id and mine.price == order.price
        market = order.market
        if order.asset_id == market.no:  # the NO leg fills at 1 - p of the taker's YES price
            assert Decimal(mine.price) == 1 - Decimal(trade.price)


def test_the_account_s_indexes_agree_with_a_walk_of_every_order_it_placed() -> None:
    """The account finds its LIVE orders by market and level instead of walking every order it ever
    placed; at every step the indexes say what such a walk would say."""
    exchange = Exchange(markets=4, seed=5, median_lifetime_s=60.0, long_dated=0)
    account = exchange.account
    most = 0
    for _ in range(8_000):
        exchange.step(elapsed_ms=50)
        live = [o for o in account.orders.values() if o.status == "LIVE"]
        most = max(most, len(live))
        assert account.open_orders() == live, "oldest first, as placed"
        for market in {o.market.condition_id: o.market for o in account.orders.values()}.values():
            mine = [o for o in live if o.market is market]
            assert account.orders_in(market) == mine
            for order in mine:
                walked = sum(
                    (o.remaining for o in mine if (o.yes_buy, o.key) == (order.yes_buy, order.key)),
                    Decimal(0),
                )
                assert account.resting(market, order.yes_buy, order.key) == walked
    assert len(exchange.resolved) > 5 and most > 2, "markets resolved with orders in them, others filled"
