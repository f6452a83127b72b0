"""UserSession and UserState, sans I/O: the state rules and the liveness of the user channel."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from polyfeed.session import Disconnected, OrderUpdated, Reconciled, Reconnected, TradeUpdated
from polyfeed.session.user import UserConfig, UserSession, UserState
from polyfeed.wire import PING, Credentials, MakerOrder, Order, Trade, decode_user

S = 1_000_000_000
KEY = "00000000-0000-4000-8000-0000000000aa"
ME = "0x00000000000000000000000000000000000000Aa"
CREDS = Credentials(KEY, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=", "pass-phrase-value")
YES, NO, MARKET = "111", "222", "0xmarket"


def order(
    kind: str, status: str, matched: str, *, ts: int, oid: str = "0xo1", trades: list[str] | None = None
) -> Order:
    return Order(
        id=oid,
        market=MARKET,
        asset_id=YES,
        side="BUY",
        price="0.4",
        type=kind,
        original_size="10",
        size_matched=matched,
        status=status,
        associate_trades=trades,
        timestamp=str(ts),
    )


def trade(status: str, *, ts: int, tid: str = "t1", maker: bool = False, size: str = "4") -> Trade:
    makers = [
        MakerOrder(order_id="0xo1", matched_amount=size, price="0.6", asset_id=NO, owner=KEY, side="BUY"),
        MakerOrder(order_id="0xother", matched_amount="1", price="0.4", asset_id=YES, owner="someone else"),
    ]
    return Trade(
        id=tid,
        market=MARKET,
        asset_id=YES,
        side="BUY",
        size=size,
        price="0.4",
        status=status,
        taker_order_id="0xtaker",
        trader_side="MAKER" if maker else "TAKER",
        timestamp=str(ts),
        maker_orders=makers,
    )


def test_an_order_through_placement_fills_and_cancellation() -> None:
    state = UserState(KEY)
    assert state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    assert state.apply_order(order("UPDATE", "LIVE", "4", ts=2000, trades=["t1"]))
    assert state.orders["0xo1"].remaining == Decimal(6) and state.orders["0xo1"].trades == ["t1"]
    assert state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000))
    assert not state.open_orders() and state.orders["0xo1"].status == "CANCELED"


def test_an_update_that_overtook_its_cancellation_neither_reopens_nor_shrinks_the_order() -> None:
    state = UserState(KEY)
    state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000))
    assert not state.apply_order(order("UPDATE", "LIVE", "2", ts=2000))
    assert state.orders["0xo1"].status == "CANCELED" and state.orders["0xo1"].size_matched == "4"
    assert not state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000)), "a repeat changes nothing"
    assert state.duplicates == 2


def test_a_trade_resent_at_every_status_counts_its_fill_once() -> None:
    state = UserState(KEY)
    assert state.apply_trade(trade("MATCHED", ts=1000)) == (True, True)
    assert state.apply_trade(trade("MATCHED", ts=1000)) == (False, False)
    assert state.apply_trade(trade("MINED", ts=2000)) == (False, True)
    assert state.apply_trade(trade("CONFIRMED", ts=3000)) == (False, True)
    assert state.apply_trade(trade("MINED", ts=2000)) == (False, False), "late MINED after CONFIRMED"
    assert [f.size for f in state.fills()] == ["4"]
    assert state.trades["t1"].history == ["MATCHED", "MINED", "CONFIRMED"]
    assert state.position(YES) == Decimal(4)


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        ([("MATCHED", 1), ("MINED", 2), ("RETRYING", 3), ("MINED", 4), ("CONFIRMED", 5)], "CONFIRMED"),
        ([("MATCHED", 1), ("RETRYING", 3), ("MINED", 2)], "RETRYING"),  # an older MINED does not undo it
        ([("MATCHED", 1), ("MINED", 2), ("RETRYING", 3), ("FAILED", 4), ("CONFIRMED", 5)], "FAILED"),
        ([("CONFIRMED", 5), ("MATCHED", 1), ("MINED", 2)], "CONFIRMED"),  # first seen late: final stays
    ],
)
def test_the_lifecycle_moves_forward_only(sequence: list[tuple[str, int]], final: str) -> None:
    state = UserState(KEY)
    for status, ts in sequence:
        state.apply_trade(trade(status, ts=ts * 1000))
    assert state.trades["t1"].status == final
    assert len(list(state.fills(include_failed=True))) == 1


def test_a_failed_trade_leaves_the_position() -> None:
    state = UserState(KEY)
    state.apply_trade(trade("MATCHED", ts=1000))
    state.apply_trade(trade("FAILED", ts=2000))
    assert state.position(YES) == 0 and list(state.fills()) == []


def test_as_maker_the_fill_is_my_maker_entry_on_its_own_token() -> None:
    state = UserState(KEY)
    state.apply_trade(trade("MATCHED", ts=1000, maker=True))
    (fill,) = state.fills()
    assert (fill.order_id, fill.asset_id, fill.side, fill.price, fill.size, fill.role) == (
        "0xo1",
        NO,
        "BUY",
        "0.6",
        "4",
        "MAKER",
    )
    assert state.position(NO) == Decimal(4) and state.position(YES) == 0


def test_real_maker_trades_pick_out_fills_by_maker_address(polymarket_fixtures: Path) -> None:
    """user_trade4: a taker SELL of 15 against three makers, two of them this address (spec 5.2)."""
    (message,) = decode_user((polymarket_fixtures / "ws/user/user_trade4.json").read_bytes())
    assert isinstance(message, Trade)
    state = UserState("not-the-owner-key", "0xa3d82ed56f4c68d2328fb8c29e568ba2caf7d7c8")
    state.apply_trade(message)
    fills = list(state.fills())
    assert [(f.side, f.size, f.role) for f in fills] == [("BUY", "5", "MAKER")] * 2
    (message,) = decode_user((polymarket_fixtures / "ws/user/user_trade3.json").read_bytes())
    assert isinstance(message, Trade)
    state = UserState("not-the-owner-key", "0xA3D82ED56F4C68D2328FB8C29E568BA2CAF7D7C8")
    state.apply_trade(message)
    (fill,) = state.fills()
    assert (fill.price, fill.side) == ("0.513", "BUY"), "the maker's own leg, not the taker's 0.49 on No"


def test_the_subscription_comes_first_then_a_ping_and_a_pong_confirms_the_credentials() -> None:
    state = UserState(KEY)
    session = UserSession(1, CREDS, state, ["0xm"])
    subscription, ping = session.connection_made(0)
    body = json.loads(subscription)
    assert body["type"] == "user" and body["markets"] == ["0xm"] and body["auth"]["apiKey"] == KEY
    assert ping == PING
    assert not session.authenticated
    events = session.data_received(b"PONG", S)
    assert session.authenticated and session.reconciliation_due and events == []
    assert session.timer(5 * S) == ([], [])
    frames, _ = session.timer(10 * S)
    assert frames == [PING]


def test_connections_dropped_before_confirmation_count_as_authentication_failures() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    for n in range(1, 4):
        session.connection_made(n * S)
        (lost,) = session.connection_lost(n * S + 1, "reset")
        assert isinstance(lost, Disconnected)
        assert session.auth_failures == n
    session.connection_made(10 * S)
    session.data_received(b"PONG", 10 * S + 1)
    assert session.auth_failures == 0


def test_a_gap_is_reported_when_the_channel_is_confirmed_again() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    session.connection_made(0)
    session.data_received(msgspec.json.encode(order("PLACEMENT", "LIVE", "0", ts=1)), 2 * S)
    session.connection_lost(3 * S, "reset")
    session.connection_made(5 * S)
    (reconnected,) = session.data_received(b"PONG", 6 * S)
    assert isinstance(reconnected, Reconnected) and reconnected.gap_ns == 4 * S


def test_messages_become_events_and_state() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    session.connection_made(0)
    frame = msgspec.json.encode([order("PLACEMENT", "LIVE", "0", ts=1), trade("MATCHED", ts=2)])
    events = session.data_received(frame, S)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["MessageReceived", "OrderUpdated", "MessageReceived", "TradeUpdated"]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    update = events[3]
    assert isinstance(update, TradeUpdated) and update.new
    again = session.data_received(frame, 2 * S)
    assert [type(e).__name__ for e in again] == ["MessageReceived"] * 2, "a resent frame changes nothing"


def test_quiet_is_tolerated_long_but_not_forever() -> None:
    session = UserSession(1, CREDS, UserState(KEY), config=UserConfig(idle_timeout_s=600))
    session.connection_made(0)
    for t in range(10, 600, 10):
        session.timer(t * S)
        session.data_received(b"PONG", t * S + 1)
        assert session.close_reason is None
    session.timer(601 * S)
    assert session.close_reason is not None and "no data" in session.close_reason


def test_reconciliation_adds_closes_and_moves_on() -> None:
    state = UserState(KEY)
    session = UserSession(1, CREDS, state)
    session.connection_made(0)
    session.data_received(b"PONG", 1)
    state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    state.apply_trade(trade("MATCHED", ts=1000))
    assert session.orders_to_look_up([]) == ["0xo1"]
    placed_in_gap = order("PLACEMENT", "LIVE", "0", ts=1500, oid="0xo2")
    closed = order("", "MATCHED", "10", ts=0)
    events = session.reconcile(
        [placed_in_gap], [closed], [trade("MINED", ts=2000), trade("MATCHED", ts=2100, tid="t2")], 5 * S
    )
    summary = events[-1]
    assert isinstance(summary, Reconciled) and summary.changed
    assert (summary.orders_added, summary.orders_closed) == (("0xo2",), ("0xo1",))
    assert (summary.trades_added, summary.trades_changed) == (("t2",), ("t1",))
    assert sum(isinstance(e, OrderUpdated) for e in events) == 2
    assert not session.reconciliation_due
    assert session.reconcile([placed_in_gap], [], [], 6 * S)[-1] == Reconciled(
        recv_ns=6 * S,
        seq=summary.seq + 1,
        connection_id=1,
        orders_added=(),
        orders_changed=(),
        orders_closed=(),
        trades_added=(),
        trades_changed=(),
    )
