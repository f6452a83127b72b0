"""UserSession, sans I/O: the liveness of the user channel, its requests, and the events of your
orders and trades (the state rules themselves: test_account.py)."""

from __future__ import annotations

import json

import msgspec

from polyfeed.session import (
    CredentialsRejected,
    Disconnected,
    OrderUpdated,
    Reconciled,
    ReconcileRequested,
    Reconnected,
    TradeUpdated,
)
from polyfeed.session.user import UserConfig, UserSession, UserState
from polyfeed.wire import PING
from tests.driving import connect, feed, lose, tick
from tests.session.accounts import CREDS, KEY, S, order, trade


def test_the_subscription_comes_first_then_a_ping_and_a_pong_confirms_the_credentials() -> None:
    state = UserState(KEY)
    session = UserSession(1, CREDS, state, ["0xm"])
    subscription, ping = connect(session, 0)
    body = json.loads(subscription)
    assert body["type"] == "user" and body["markets"] == ["0xm"] and body["auth"]["apiKey"] == KEY
    assert ping == PING
    assert not session.authenticated
    (request,) = feed(session, b"PONG", S)
    assert session.authenticated and isinstance(request, ReconcileRequested)
    assert session.requests_received() == [request], "the driver is asked to fetch the REST view"
    assert tick(session, 5 * S) == ([], [])
    frames, _ = tick(session, 10 * S)
    assert frames == [PING]


def test_connections_dropped_before_confirmation_count_as_authentication_failures() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    for n in range(1, 3):
        connect(session, n * S)
        (lost,) = lose(session, n * S + 1, "reset")
        assert isinstance(lost, Disconnected)
        assert session.auth_failures == n
        assert session.requests_received() == []
    connect(session, 3 * S)
    lost, rejected = lose(session, 3 * S + 1, "reset")
    assert isinstance(lost, Disconnected) and session.auth_failures == 3
    assert session.requests_received() == [rejected], "the third asks the driver to give up"
    assert rejected == CredentialsRejected(recv_ns=3 * S + 1, seq=rejected.seq, connection_id=1, failures=3)
    connect(session, 10 * S)
    feed(session, b"PONG", 10 * S + 1)
    assert session.auth_failures == 0


def test_a_gap_is_reported_when_the_channel_is_confirmed_again() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    connect(session, 0)
    feed(session, msgspec.json.encode(order("PLACEMENT", "LIVE", "0", ts=1)), 2 * S)
    lose(session, 3 * S, "reset")
    connect(session, 5 * S)
    reconnected, request = feed(session, b"PONG", 6 * S)
    assert isinstance(reconnected, Reconnected) and reconnected.gap_ns == 4 * S
    assert isinstance(request, ReconcileRequested), "a reconciliation after every confirmed connection"


def test_messages_become_events_and_state() -> None:
    session = UserSession(1, CREDS, UserState(KEY))
    connect(session, 0)
    frame = msgspec.json.encode([order("PLACEMENT", "LIVE", "0", ts=1), trade("MATCHED", ts=2)])
    events = feed(session, frame, S)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ReconcileRequested",
        "MessageReceived",
        "OrderUpdated",
        "MessageReceived",
        "TradeUpdated",
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    update = events[4]
    assert isinstance(update, TradeUpdated) and update.new
    again = feed(session, frame, 2 * S)
    assert [type(e).__name__ for e in again] == ["MessageReceived"] * 2, "a resent frame changes nothing"


def test_quiet_is_tolerated_long_but_not_forever() -> None:
    session = UserSession(1, CREDS, UserState(KEY), config=UserConfig(idle_timeout_s=600))
    connect(session, 0)
    for t in range(10, 600, 10):
        tick(session, t * S)
        feed(session, b"PONG", t * S + 1)
        assert session.close_reason is None
    tick(session, 601 * S)
    assert session.close_reason is not None and "no data" in session.close_reason


def test_reconciliation_adds_closes_and_moves_on() -> None:
    state = UserState(KEY)
    session = UserSession(1, CREDS, state)
    connect(session, 0)
    feed(session, b"PONG", 1)
    state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    state.apply_trade(trade("MATCHED", ts=1000))
    assert session.orders_to_look_up([]) == ["0xo1"]
    placed_in_gap = order("PLACEMENT", "LIVE", "0", ts=1500, oid="0xo2")
    closed = order("", "MATCHED", "10", ts=0)
    session.reconcile(
        [placed_in_gap], [closed], [trade("MINED", ts=2000), trade("MATCHED", ts=2100, tid="t2")], 5 * S
    )
    events = session.events_received()
    summary = events[-1]
    assert isinstance(summary, Reconciled) and summary.changed
    assert (summary.orders_added, summary.orders_closed) == (("0xo2",), ("0xo1",))
    assert (summary.trades_added, summary.trades_changed) == (("t2",), ("t1",))
    assert sum(isinstance(e, OrderUpdated) for e in events) == 2
    session.reconcile([placed_in_gap], [], [], 6 * S)
    assert session.events_received()[-1] == Reconciled(
        recv_ns=6 * S,
        seq=summary.seq + 1,
        connection_id=1,
        orders_added=(),
        orders_changed=(),
        orders_closed=(),
        trades_added=(),
        trades_changed=(),
    )


def test_reconciliations_and_what_they_changed_are_counted() -> None:
    state = UserState(KEY)
    session = UserSession(1, CREDS, state)
    connect(session, 0)
    feed(session, b"PONG", 1)
    assert session.messages_received == 1 and session.bytes_received == 4
    state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    closed = order("", "MATCHED", "10", ts=0)
    session.reconcile(
        [order("PLACEMENT", "LIVE", "0", ts=1500, oid="0xo2")], [closed], [trade("MINED", ts=2000)], S
    )
    session.reconcile([], [], [], 2 * S)
    assert session.reconciliations == 2
    assert session.reconciled == {
        "orders_added": 1,
        "orders_changed": 0,
        "orders_closed": 1,
        "trades_added": 1,
        "trades_changed": 0,
    }
