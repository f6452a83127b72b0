"""The recording tap: it writes exactly what a session is fed, and a replay of what it wrote feeds a
fresh session the same inputs, so the replay's events are the live ones, by construction."""

from __future__ import annotations

import json

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.record.format import REDACTED_API_KEY, Channel, Record, RecordKind, decode_marker
from polyfeed.replay import Replay
from polyfeed.session import Event, MarketSession, ResyncRequested
from polyfeed.session.base import CLOSED_BY_CLIENT
from polyfeed.session.tap import MarketTap, UserTap
from polyfeed.session.user import UserSession, UserState
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import PING, Credentials, Order

S = 1_000_000_000
KEY = "00000000-0000-4000-8000-0000000000aa"
CREDS = Credentials(KEY, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=", "pass-phrase-value")


class Sink:
    """A recorder in memory."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.ticks: list[int] = []

    def write(self, kind: int, channel: int, connection: int, recv_ns: int, payload: bytes) -> None:
        self.records.append(Record(kind, channel, connection, recv_ns, bytes(payload)))

    def tick(self, now_ns: int) -> None:
        self.ticks.append(now_ns)


def drained(tap: MarketTap | UserTap) -> list[Event]:
    """What a driver pulls after an input (the frames are recorded as they are pulled)."""
    tap.data_to_send()
    return tap.events_received()


def test_a_market_session_replayed_from_its_tap_emits_the_live_events_and_ends_with_the_live_books() -> None:
    exchange = Exchange(markets=3, seed=21)
    first, second, third = exchange.markets
    books: dict[str, OrderBook] = {}
    sink = Sink()
    tap = MarketTap(MarketSession(1, [first.yes, first.no, second.yes], books), sink)
    live: list[Event] = []
    now = S
    failed: list[str] = []

    def flow(steps: int) -> None:
        nonlocal now
        for n, out in enumerate(exchange.run(steps)):
            if out.channel == "market":
                now += 1_000_000
                tap.receive_data(encode_outbound(out).encode(), now)
                live.extend(drained(tap))
            if n % 50 == 0:
                now += 1_000_000
                tap.timer(now)
                live.extend(drained(tap))
                answer_requests()

    def answer_requests() -> None:
        for request in tap.requests_received():
            assert isinstance(request, ResyncRequested)
            if request.asset_id not in failed:  # the venue errs once, then answers
                failed.append(request.asset_id)
                tap.resync_failed(request.asset_id, now)
                continue
            body = msgspec.json.encode(exchange.book(request.asset_id))
            tap.resync_received(request.asset_id, body, now)
            live.extend(drained(tap))

    tap.connection_made(now)
    live.extend(drained(tap))
    for asset in (first.yes, first.no, second.yes):
        tap.receive_data(
            msgspec.json.encode([book_frame(exchange.book(asset, initial=True), initial=True)]), now
        )
        live.extend(drained(tap))
    flow(300)
    corrupt = {
        "market": second.condition_id,
        "timestamp": str(now // 1_000_000),
        "event_type": "price_change",
        "price_changes": [
            {
                "asset_id": second.yes,
                "price": "0.01",
                "size": "7",
                "side": "BUY",
                "best_bid": "0.9",
                "best_ask": "0.99",
            }
        ],
    }
    tap.receive_data(msgspec.json.encode(corrupt), now)
    live.extend(drained(tap))
    tap.timer(now + 5 * S)  # the burst settles, the check fails: a resync is requested and fails once
    live.extend(drained(tap))
    answer_requests()
    now += 7 * S
    tap.timer(now)  # the retry is due
    live.extend(drained(tap))
    answer_requests()
    tap.subscribe([third.yes], now)
    live.extend(drained(tap))
    tap.connection_lost(now + 1, "closed by the server")
    live.extend(drained(tap))
    tap.connect_failed(now + 2, "connection refused")
    live.extend(drained(tap))
    now += S
    tap.connection_made(now)
    live.extend(drained(tap))
    for asset in (first.yes, first.no, second.yes, third.yes):
        tap.receive_data(msgspec.json.encode([book_frame(exchange.book(asset), initial=True)]), now)
        live.extend(drained(tap))
    flow(200)
    tap.book_missing(third.yes, now)
    live.extend(drained(tap))
    kinds = {type(e).__name__ for e in live}
    assert {"Resynced", "ResyncRequested", "Disconnected", "Reconnected", "ConnectFailed"} <= kinds
    live_books = {a: (b.status, b.wire_levels()) for a, b in books.items()}

    replay = Replay()
    replayed = [e for record in sink.records for e in replay.feed(record)]
    assert replay.skipped == 0
    assert replayed == live, "the same events, sequence numbers and times"
    assert {a: (b.status, b.wire_levels()) for a, b in replay.books.items()} == live_books
    assert books[third.yes].status is BookStatus.CLOSED
    assert sink.ticks == [
        r.recv_ns for r in sink.records if r.kind == RecordKind.MARKER and r.payload == b'{"marker":"timer"}'
    ]


def test_a_stop_by_the_client_is_recorded_as_stopped_and_leaves_the_replayed_books_as_they_were() -> None:
    exchange = Exchange(markets=1, seed=3)
    yes = exchange.markets[0].yes
    sink = Sink()
    books: dict[str, OrderBook] = {}
    tap = MarketTap(MarketSession(1, [yes], books), sink)
    tap.connection_made(S)
    tap.data_to_send()  # the subscription is written as the driver takes it
    tap.receive_data(msgspec.json.encode([book_frame(exchange.book(yes, initial=True), initial=True)]), S)
    tap.connection_lost(2 * S, CLOSED_BY_CLIENT)
    assert books[yes].status is BookStatus.STALE, "live, the stream's books are closed with it"
    marker = decode_marker(sink.records[-1].payload)
    assert type(marker).__name__ == "StoppedMarker"
    replay = Replay()
    for record in sink.records:
        replay.feed(record)
    assert replay.books[yes].status is BookStatus.LIVE, (
        "a recording that ends in a stop replays to live books"
    )


def test_the_market_tap_writes_subscriptions_and_operations_but_no_ping() -> None:
    sink = Sink()
    tap = MarketTap(MarketSession(4, ["a"], {}), sink)
    tap.connection_made(S)
    assert tap.data_to_send() and tap.connection_id == 4
    tap.timer(20 * S)
    assert tap.data_to_send() == [PING]
    tap.subscribe(["b"], 21 * S)
    tap.data_to_send()
    sent = [(r.recv_ns, json.loads(r.payload)) for r in sink.records if r.kind == RecordKind.SENT]
    assert sent == [
        (S, {"type": "market", "assets_ids": ["a"], "initial_dump": True, "custom_feature_enabled": False}),
        (21 * S, {"operation": "subscribe", "assets_ids": ["b"], "initial_dump": True}),
    ]
    assert all(r.channel == Channel.MARKET and r.connection == 4 for r in sink.records)


def order(status: str, ts: int) -> Order:
    return Order(
        id="0xo1",
        owner=KEY,
        market="0xm",
        asset_id="111",
        side="BUY",
        price="0.4",
        type="PLACEMENT",
        original_size="10",
        size_matched="0",
        status=status,
        timestamp=str(ts),
    )


def test_the_user_tap_never_writes_a_secret_and_its_replay_emits_the_live_events() -> None:
    sink = Sink()
    tap = UserTap(UserSession(1, CREDS, UserState(KEY)), sink)
    live: list[Event] = []
    tap.connection_made(S)
    subscription, ping = tap.data_to_send()
    assert CREDS.secret.encode() in subscription and ping == PING, "the venue gets the credentials"
    tap.receive_data(b"PONG", 2 * S)
    live.extend(drained(tap))
    assert [type(r).__name__ for r in tap.requests_received()] == ["ReconcileRequested"]
    tap.reconcile([order("LIVE", 1000)], [], [], 3 * S)
    live.extend(drained(tap))
    tap.receive_data(msgspec.json.encode([order("CANCELED", 2000)]), 4 * S)
    live.extend(drained(tap))
    tap.timer(20 * S)
    live.extend(drained(tap))
    written = b"".join(r.payload for r in sink.records)
    for secret in (KEY, CREDS.secret, CREDS.passphrase):
        assert secret.encode() not in written
    assert REDACTED_API_KEY.encode() in written, "your key, where the venue named it, is replaced"
    assert b"PING" not in written
    replay = Replay()
    replayed = [e for record in sink.records for e in replay.feed(record)]
    assert replay.skipped == 0
    assert [type(e).__name__ for e in replayed] == [type(e).__name__ for e in live]
    assert [(e.seq, e.recv_ns) for e in replayed] == [(e.seq, e.recv_ns) for e in live]
    assert replay.user.orders["0xo1"].status == "CANCELED"
