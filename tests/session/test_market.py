"""MarketSession, sans I/O: driven by the local exchange's frames and a fake clock."""

from __future__ import annotations

import json

import msgspec
import pytest

from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.session import (
    BookUpdated,
    DecodeFailed,
    Disconnected,
    MarketSession,
    Reconnected,
    Resynced,
    ResyncRequested,
    SessionConfig,
    StatusChanged,
)
from polyfeed.session.market import LAG_BUCKETS_MS
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import PING, Book, PriceChange, PriceChangeEntry, decode_market
from tests.driving import (
    connect,
    connect_failed,
    feed,
    lose,
    missing,
    resynced,
    subscribed,
    tick,
    unsubscribed,
)

S = 1_000_000_000


def initial_frames(exchange: Exchange, assets: list[str]) -> list[bytes]:
    return [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]


def flow(exchange: Exchange, assets: set[str], events: int) -> list[bytes]:
    """What the venue would send a connection subscribed to ``assets`` during ``events`` steps."""
    frames = []
    for out in exchange.run(events):
        if out.channel == "market" and assets & set(out.assets):
            frames.append(encode_outbound(out).encode())
    return frames


def started(
    assets: list[str], exchange: Exchange, config: SessionConfig | None = None
) -> tuple[MarketSession, dict[str, OrderBook]]:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, assets, books, config)
    connect(session, 0)
    for frame in initial_frames(exchange, assets):
        feed(session, frame, 1)
    return session, books


def test_the_subscription_comes_first_and_pings_follow_on_schedule() -> None:
    session = MarketSession(1, ["b", "a"], {})
    assert tick(session, 100 * S) == ([], []), "nothing, and never a PING, before the subscription"
    (first,) = connect(session, 0)
    assert json.loads(first) == {
        "type": "market",
        "assets_ids": ["a", "b"],
        "initial_dump": True,
        "custom_feature_enabled": False,
    }
    assert tick(session, 9 * S)[0] == []
    assert tick(session, 10 * S)[0] == [PING]
    assert session.next_timer_ns() <= 20 * S


def test_a_large_subscription_goes_out_in_batches_whose_initial_books_come_apart() -> None:
    """250 assets, batches of 100: a ``type`` frame of 100, then ``operation`` frames of 100 and 50,
    before anything else; each batch's initial books arrive as an array of their own, and all go live.
    (A connection's read buffer keeps the size of its largest frame: one dump of 500 books kept 2 MB.)"""
    exchange = Exchange(markets=125, seed=5)
    assets = sorted(exchange.asset_ids())
    session = MarketSession(1, assets, {}, SessionConfig(subscribe_batch=100))
    frames = [json.loads(frame) for frame in connect(session, 0)]
    assert [len(f["assets_ids"]) for f in frames] == [100, 100, 50]
    assert frames[0]["type"] == "market" and all(f["operation"] == "subscribe" for f in frames[1:])
    assert [a for f in frames for a in f["assets_ids"]] == assets, "each asset once, none left out"
    for batch in frames:
        dump = [book_frame(exchange.book(a, initial=True), initial=True) for a in batch["assets_ids"]]
        feed(session, msgspec.json.encode(dump), 1)
    assert all(book.status is BookStatus.LIVE for book in session.books.values())
    later = MarketSession(3, assets[:1], {}, SessionConfig(subscribe_batch=100))
    connect(later, 0)
    added = [json.loads(frame) for frame in subscribed(later, assets[1:], 1)]
    assert [len(f["assets_ids"]) for f in added] == [100, 100, 49], "at run time too"
    assert all(f["operation"] == "subscribe" for f in added)
    (one,) = connect(MarketSession(2, assets, {}, SessionConfig(subscribe_batch=0)), 0)
    assert len(json.loads(one)["assets_ids"]) == 250, "0: one frame, as before"
    with pytest.raises(ValueError, match="subscribe_batch"):
        SessionConfig(subscribe_batch=-1)


def test_books_follow_the_stream_and_only_subscribed_assets_get_books() -> None:
    exchange = Exchange(markets=2, seed=3)
    yes = exchange.markets[0].yes
    session, books = started([yes], exchange)
    events = []
    for n, frame in enumerate(flow(exchange, {yes}, 3_000)):
        events += feed(session, frame, (2 + n) * 1_000_000)
    tick(session, 10**6 * S)
    assert set(books) == {yes}, "the complement's mirrored entries create no book"
    assert books[yes].status is BookStatus.LIVE
    assert books[yes].checks.total_failed == 0, books[yes].last_failure
    rest = exchange.book(yes)
    assert books[yes].wire_levels() == (rest.bids, rest.asks)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "a per-connection sequence number"
    assert any(isinstance(e, BookUpdated) and e.asset_id == yes for e in events)


def test_a_silent_connection_is_a_zombie_after_its_own_deadline() -> None:
    exchange = Exchange(markets=1, seed=3)
    yes = exchange.markets[0].yes
    session, _ = started([yes], exchange)
    now = 1
    for frame in flow(exchange, {yes}, 400):
        now += 10_000_000  # a busy connection: a frame every 10 ms
        feed(session, frame, now)
    assert session.idle_deadline_s == 15.0, "busy: the shortest deadline"
    tick(session, now + 14 * S)
    assert session.close_reason is None
    tick(session, now + 16 * S)
    assert session.close_reason is not None and "zombie" in session.close_reason


def test_a_missing_pong_closes_the_connection() -> None:
    session = MarketSession(1, ["a"], {}, SessionConfig(min_idle_s=1000, max_idle_s=1000))
    connect(session, 0)
    tick(session, 10 * S)  # PING sent
    tick(session, 35 * S)
    assert session.close_reason is None
    tick(session, 41 * S)
    assert session.close_reason == "no PONG for 30 s"
    fresh = MarketSession(2, ["a"], {}, SessionConfig(min_idle_s=1000, max_idle_s=1000))
    connect(fresh, 0)
    tick(fresh, 10 * S)
    feed(fresh, "PONG", 11 * S)
    tick(fresh, 45 * S)
    assert fresh.close_reason is None


def test_disconnect_makes_books_stale_and_the_reconnect_reports_the_gap() -> None:
    exchange = Exchange(markets=1, seed=4)
    yes = exchange.markets[0].yes
    session, books = started([yes], exchange)
    lost = lose(session, 5 * S, "reset")
    assert isinstance(lost[-1], Disconnected) and lost[-1].assets == (yes,)
    assert any(isinstance(e, StatusChanged) and e.new is BookStatus.STALE for e in lost)
    assert books[yes].status is BookStatus.STALE
    connect(session, 7 * S)
    back = []
    for frame in initial_frames(exchange, [yes]):
        back += feed(session, frame, 8 * S)
    (reconnected,) = [e for e in back if isinstance(e, Reconnected)]
    assert reconnected.gap_ns == 8 * S - 1, "from the last data before the loss to the first after"
    assert books[yes].status is BookStatus.LIVE


def test_a_corrupted_level_is_caught_resynced_from_rest_and_buffered_updates_replayed() -> None:
    exchange = Exchange(markets=1, seed=5)
    yes = exchange.markets[0].yes
    session, books = started([yes], exchange)
    truth = exchange.book(yes)
    level = truth.bids[0]
    ts = str(exchange.now_ms)
    corrupt = PriceChange(
        market=truth.market,
        timestamp=ts,
        price_changes=[
            PriceChangeEntry(
                asset_id=yes,
                price=level.price,
                size=str(int(float(level.size)) + 7),
                side="BUY",
                hash=truth.hash,  # the exchange's true hash now, so only the hash check can see the level
                best_bid=truth.bids[-1].price,
                best_ask=truth.asks[-1].price,
            )
        ],
    )
    feed(session, msgspec.json.encode(corrupt), 2 * S)
    _, events = tick(session, 20 * S)
    assert any(isinstance(e, StatusChanged) and e.new is BookStatus.SUSPECT for e in events)
    (request,) = [e for e in events if isinstance(e, ResyncRequested)]
    assert request.asset_id == yes
    rest_snapshot = exchange.book(yes)  # what GET /book answers now
    # Updates arrive while the REST call is out and are buffered. Venue snapshots are left out here: one
    # would supersede the resync (tested by the books' equality either way).
    later = [f for f in flow(exchange, {yes}, 300) if b'"event_type":"book"' not in f]
    for frame in later:
        feed(session, frame, 21 * S)
    (done,) = [e for e in resynced(session, rest_snapshot, 22 * S) if isinstance(e, Resynced)]
    assert done.replayed > 0
    tick(session, 10**6 * S)
    assert books[yes].status is BookStatus.LIVE
    now = exchange.book(yes)
    assert books[yes].wire_levels() == (now.bids, now.asks), "REST book + replayed updates = the venue's"


def test_resyncs_are_budgeted() -> None:
    exchange = Exchange(markets=1, seed=6)
    assets = exchange.asset_ids()
    session, books = started(assets, exchange, SessionConfig(resync_burst=1, resync_per_minute=0.0))
    requests = []
    for asset in assets:
        book = books[asset]
        bad = PriceChange(
            market=book.market,
            timestamp="1",
            price_changes=[
                PriceChangeEntry(
                    asset_id=asset, price="0.5", size="1", side="BUY", best_bid="0.01", best_ask="0.99"
                )
            ],
        )
        # stamped before the snapshots: the venue's clock has passed it, so its checks run at once
        requests.extend(
            e for e in feed(session, msgspec.json.encode(bad), 2 * S) if isinstance(e, ResyncRequested)
        )
    for event in tick(session, 20 * S)[1]:
        if isinstance(event, ResyncRequested):
            requests.append(event)
    assert len(requests) == 1, "one REST call allowed, the other suspect book waits"
    assert all(books[a].status is BookStatus.SUSPECT for a in assets)


def test_a_malformed_frame_is_counted_and_the_stream_goes_on() -> None:
    exchange = Exchange(markets=1, seed=7)
    yes = exchange.markets[0].yes
    session, books = started([yes], exchange)
    (failed,) = feed(session, b'{"event_type": "price_change", "market": "0x', 2 * S)
    assert isinstance(failed, DecodeFailed) and failed.raw.startswith(b'{"event_type"')
    assert session.decode_failures == 1
    for frame in flow(exchange, {yes}, 200):
        feed(session, frame, 3 * S)
    assert books[yes].status is BookStatus.LIVE


def test_operations_in_place_skip_duplicates() -> None:
    session = MarketSession(1, ["a"], {})
    connect(session, 0)
    assert subscribed(session, ["a"]) == []
    (frame,) = subscribed(session, ["a", "b"])
    assert json.loads(frame) == {"operation": "subscribe", "assets_ids": ["b"], "initial_dump": True}
    (frame,) = unsubscribed(session, ["a", "z"])
    assert json.loads(frame) == {"operation": "unsubscribe", "assets_ids": ["a"]}
    assert session.assets == {"b"}


def test_a_print_reaches_the_books_of_its_market_only_also_when_it_names_the_complement() -> None:
    exchange = Exchange(markets=6, seed=9)
    a, b = exchange.markets[0], exchange.markets[1]
    assets = [a.no, b.yes, b.no]  # a's prints name a.yes, which this connection does not follow
    session, books = started(assets, exchange)
    before = books[a.no].last_trade_price
    for i, frame in enumerate(flow(exchange, set(assets), 6000)):
        feed(session, frame, (2 + i) * 1000)
    for book in books.values():
        book.settle(final=True)
    assert books[a.no].last_trade_price == exchange.book(a.no).last_trade_price != before
    for asset in assets:
        assert books[asset].status is BookStatus.LIVE, books[asset].status_reason
        assert books[asset].checks.passed[CheckKind.HASH] > 0
        assert sum(books[asset].checks.failed.values()) == 0
    assert set(books) == set(assets)  # no book for what is not followed


# -- quiet market or zombie (spec 11.1) -----------------------------------------------------------------


def silent(session: MarketSession, since_ns: int) -> int:
    """Nothing but PONGs reach the session (a tick a second, every PING answered, as on a zombie or a
    quiet connection) until it closes for want of data; returns when it closed."""
    now = since_ns
    while session.close_reason is None:
        now += S
        assert now - since_ns <= 3600 * S, "the session never gave up on the silence"
        frames, _ = tick(session, now)
        if PING in frames:
            feed(session, "PONG", now)
    return now


def reconnect(session: MarketSession, exchange: Exchange, assets: list[str], closed_ns: int) -> int:
    """The driver's reconnect: the loss, a new connection a second later, the venue's initial dump a
    second after that (the books as the exchange has them now); returns the time of the dump."""
    assert session.close_reason is not None
    lose(session, closed_ns, session.close_reason)
    connect(session, closed_ns + S)
    for frame in initial_frames(exchange, assets):
        feed(session, frame, closed_ns + 2 * S)
    return closed_ns + 2 * S


def test_a_quiet_market_doubles_its_idle_deadline_up_to_the_cap_and_trading_resets_it() -> None:
    exchange = Exchange(markets=1, seed=3)
    assets = exchange.asset_ids()
    session, books = started(assets, exchange)
    last_data, deadlines = 1, []
    for _ in range(8):
        deadline = session.idle_deadline_s  # read right after the dump: the verdict needs no timer tick
        deadlines.append(deadline)
        closed = silent(session, last_data)
        assert session.close_reason is not None and session.close_reason.startswith("no data")
        assert deadline * S < closed - last_data <= (deadline + 1) * S, "closed at that deadline"
        last_data = reconnect(session, exchange, assets, closed)
        assert all(books[a].status is BookStatus.LIVE for a in assets)
    assert deadlines == [15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0], "doubling, capped"
    assert (session.quiet_confirmed, session.zombies_detected) == (8, 0)
    for frame in flow(exchange, set(assets), 50):  # the market trades again
        feed(session, frame, last_data + S)
    assert session.idle_deadline_s == 15.0, "normal data brings back the adaptive deadline"


def test_a_book_that_moved_during_the_silence_is_a_zombie_and_the_deadline_stays_short() -> None:
    exchange = Exchange(markets=1, seed=4)
    assets = exchange.asset_ids()
    session, books = started(assets, exchange)
    last_data = reconnect(session, exchange, assets, silent(session, 1))
    assert (session.idle_deadline_s, session.quiet_confirmed) == (30.0, 1), "first silence: quiet"
    missed = flow(exchange, set(assets), 300)  # the venue trades on; a zombie passes none of it on
    assert any(b'"price_change"' in frame for frame in missed)
    closed = silent(session, last_data)
    assert closed - last_data == 31 * S, "the grown deadline"
    reconnect(session, exchange, assets, closed)
    assert session.zombies_detected == 1
    assert session.idle_deadline_s == 15.0, "after a zombie, the short deadline again"
    assert session.quiet_confirmed == 1
    for asset in assets:
        truth = exchange.book(asset)
        assert books[asset].status is BookStatus.LIVE
        assert books[asset].wire_levels() == (truth.bids, truth.asks), "the fresh snapshot replaced it"


def test_the_verdict_waits_for_every_live_book_or_for_the_new_snapshots_to_settle() -> None:
    exchange = Exchange(markets=2, seed=5)
    assets = exchange.asset_ids()
    session, _ = started(assets, exchange)
    closed = silent(session, 1)
    lose(session, closed, "no data")
    connect(session, closed + S)
    first, second, *_ = initial_frames(exchange, assets)
    feed(session, first, closed + 2 * S)
    feed(session, second, closed + 2 * S)
    assert session.quiet_confirmed == 0, "two of the four books have not been compared yet"
    tick(session, closed + 2 * S + 2 * S)
    assert session.quiet_confirmed == 0, "the new snapshots may still be coming"
    # Two snapshots never come (resubscribing may bring none, spec 11.2): once the connection has been
    # quiet for final_settle_after_s, the two that came decide.
    tick(session, closed + 2 * S + 3 * S)
    assert (session.quiet_confirmed, session.idle_deadline_s) == (1, 30.0)


def test_notices_and_other_markets_broadcasts_do_not_hide_a_zombie() -> None:
    exchange = Exchange(markets=2, seed=6)
    m0, m1 = exchange.markets
    follow = [m0.yes, m0.no]
    session, _ = started(follow, exchange, SessionConfig(custom_feature_enabled=True))
    (opened,) = exchange.add_market()
    resolved = [o for o in exchange.resolve_market(m1) if o.channel == "broadcast"]
    chatter = {
        4 * S: b"NO NEW ASSETS",
        7 * S: msgspec.json.encode(opened.message),
        8 * S: b"NO NEW ASSETS",
        9 * S: msgspec.json.encode(resolved[0].message),
        12 * S: b"NO NEW ASSETS",
    }
    now = 1
    while session.close_reason is None:
        now += S
        feed(session, chatter.get(now - 1, b"PONG"), now)
        tick(session, now)
    assert now - 1 == 16 * S, "only data about this connection's assets moves its idle clock"
    assert session.resolved_assets == set(), "another market's resolution resolves nothing here"
    lose(session, now, session.close_reason)
    connect(session, now + S)
    assert not any(isinstance(e, Reconnected) for e in feed(session, "NO NEW ASSETS", now + S))
    back = feed(session, initial_frames(exchange, [m0.yes])[0], now + 2 * S)
    assert any(isinstance(e, Reconnected) for e in back), "data is back with the first snapshot"


def test_a_connection_whose_markets_all_resolved_gets_the_longest_deadline() -> None:
    exchange = Exchange(markets=3, seed=7)
    m0, m1, _ = exchange.markets
    follow = [m0.yes, m0.no, m1.yes]
    session = MarketSession(1, follow, {}, SessionConfig(custom_feature_enabled=True))
    (subscription,) = connect(session, 0)
    assert json.loads(subscription)["custom_feature_enabled"] is True, "market_resolved needs it"
    for frame in initial_frames(exchange, follow):
        feed(session, frame, 1)

    def resolve(market: object, now_ns: int) -> None:
        for out in exchange.resolve_market(market):  # type: ignore[arg-type]
            if out.channel == "broadcast":
                feed(session, msgspec.json.encode(out.message), now_ns)

    resolve(m0, 2 * S)
    assert session.resolved_assets == {m0.yes, m0.no}
    assert session.idle_deadline_s <= SessionConfig().max_idle_s, "the adaptive deadline: m1 may still trade"
    resolve(m1, 3 * S)
    assert session.resolved_assets == set(follow), "m1.no is not followed here"
    assert session.idle_deadline_s == 600.0
    assert silent(session, 3 * S) - 3 * S == 601 * S, "no reconnect every 15 s for markets that are over"


# -- resyncs that fail, are refused or deferred (issue 12, items 3-5) ---------------------------------


def hand_book(asset: str, ts: str, bid: str = "0.40") -> bytes:
    """A snapshot frame with no hash (nothing to verify, nothing to fail)."""
    frame = {
        "market": "0xm",
        "asset_id": asset,
        "timestamp": ts,
        "bids": [{"price": bid, "size": "10"}],
        "asks": [{"price": "0.60", "size": "10"}],
        "tick_size": "0.01",
        "event_type": "book",
    }
    return msgspec.json.encode([frame])


def made_suspect(session: MarketSession, asset: str, ts: str, now_ns: int) -> list[object]:
    """A change whose top of book the local book cannot match: the book turns suspect."""
    wrong = {
        "market": "0xm",
        "timestamp": ts,
        "event_type": "price_change",
        "price_changes": [
            {
                "asset_id": asset,
                "price": "0.41",
                "size": "1",
                "side": "BUY",
                "best_bid": "0.3",
                "best_ask": "0.6",
            }
        ],
    }
    feed(session, msgspec.json.encode(wrong), now_ns)
    return list(tick(session, now_ns + S)[1])


def rest_book(asset: str, ts: str, bid: str = "0.41") -> Book:
    (book,) = decode_market(hand_book(asset, ts, bid))
    assert isinstance(book, Book)
    return book


def requests_in(events: list[object]) -> list[str]:
    return [e.asset_id for e in events if isinstance(e, ResyncRequested)]


def test_a_rest_book_older_than_the_stream_is_refused_and_the_resync_tried_again() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a"], books)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    assert requests_in(made_suspect(session, "a", "2000", 2 * S)) == ["a"]
    events = resynced(session, rest_book("a", "1500"), 4 * S)  # older than the change at 2000
    assert not [e for e in events if isinstance(e, Resynced)]
    assert books["a"].status is BookStatus.SUSPECT and session.resyncs_failed == 1
    assert books["a"].best_bid is not None and str(books["a"].best_bid.price) == "0.41", "not taken back"
    assert requests_in(list(tick(session, 4 * S + S // 2)[1])) == [], "not before the pause"
    assert requests_in(list(tick(session, 5 * S + 1)[1])) == ["a"]
    events = resynced(session, rest_book("a", "2500"), 6 * S)
    assert [e for e in events if isinstance(e, Resynced)] and books["a"].status is BookStatus.LIVE


def test_a_rest_book_with_a_timestamp_that_is_not_an_integer_is_refused_without_an_exception() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a"], books)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    made_suspect(session, "a", "2000", 2 * S)
    events = resynced(session, rest_book("a", "2026-12-02T20:00:00Z"), 4 * S)
    assert not [e for e in events if isinstance(e, Resynced)]
    assert books["a"].status is BookStatus.SUSPECT and session.resyncs_failed == 1


def test_a_failed_resync_is_tried_again_with_a_pause_that_doubles() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a"], books, SessionConfig(resync_retry_s=1.0, max_resync_retry_s=3.0))
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    made_suspect(session, "a", "2000", 2 * S)
    now = 10 * S
    for pause_s in (1, 2, 3, 3):  # doubling, capped
        session.resync_failed("a", now)
        assert session.next_timer_ns() <= now + pause_s * S
        assert requests_in(list(tick(session, now + pause_s * S - 1)[1])) == []
        now += pause_s * S
        assert requests_in(list(tick(session, now)[1])) == ["a"]
    assert session.resyncs_failed == 4


def test_a_resync_the_budget_deferred_is_asked_for_once_the_budget_allows() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a", "b"], books, SessionConfig(resync_burst=1, resync_per_minute=30.0))
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    feed(session, hand_book("b", "1000"), 1)
    made_suspect(session, "a", "2000", 2 * S)
    assert requests_in(made_suspect(session, "b", "2000", 2 * S)) == [], "the budget is spent"
    assert requests_in(list(tick(session, 4 * S)[1])) == [], "a token comes back after 2 s"
    assert requests_in(list(tick(session, 6 * S)[1])) == ["b"]


# -- checks bounded in the venue's time (issue 12, items 2 and 14) -----------------------------------


def stamped_change(asset: str, ts: int, price: str, size: str, *, hash_: str = "") -> bytes:
    entry = {
        "asset_id": asset,
        "price": price,
        "size": size,
        "side": "BUY",
        "best_bid": price,
        "best_ask": "0.60",
    }
    if hash_:
        entry["hash"] = hash_
    frame = {"market": "0xm", "timestamp": str(ts), "event_type": "price_change", "price_changes": [entry]}
    return msgspec.json.encode(frame)


def test_a_wrong_hash_on_a_quiet_token_is_judged_while_another_token_keeps_the_connection_busy() -> None:
    """The connection is never quiet, and the corrupted token never sends again: its check still runs
    within settle_after_s + final_settle_after_s of the venue's time (issue 12, item 2)."""
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a", "b"], books)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    feed(session, hand_book("b", "1000"), 1)
    feed(session, stamped_change("a", 2000, "0.41", "5", hash_="0" * 40), 2 * S)
    suspect_at = None
    for n in range(1, 500):  # b changes every 10 ms of venue time, every 1 ms of the client's clock
        ts = 2000 + 10 * n
        now = 2 * S + n * 1_000_000
        feed(session, stamped_change("b", ts, "0.41" if n % 2 else "0.42", "5"), now)
        tick(session, now)
        if suspect_at is None and books["a"].status is BookStatus.SUSPECT:
            suspect_at = ts
    assert suspect_at is not None, "the wrong hash was never judged"
    assert suspect_at - 2000 <= 3250
    assert books["a"].checks.failed[CheckKind.HASH] == 1


def test_a_message_of_another_market_a_little_later_does_not_close_a_burst() -> None:
    """The venue's clock closes a burst only ``settle_after_s`` past it: messages of other markets with
    close timestamps may come between the burst's own messages."""
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a", "b"], books)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    feed(session, hand_book("b", "1000"), 1)
    final = OrderBook("a", market="0xm", tick_size="0.01")
    final.apply(rest_book("a", "1000", bid="0.40"))
    final.apply(decode_market(stamped_change("a", 2000, "0.41", "5"))[0])
    final.apply(decode_market(stamped_change("a", 2000, "0.42", "5"))[0])
    claims = final.compute_hash("2000")
    # b's messages at 2100 come between the burst's two halves (another market, a close timestamp)
    feed(session, stamped_change("a", 2000, "0.41", "5", hash_=claims), 2 * S)
    feed(session, stamped_change("b", 2100, "0.41", "5"), 2 * S)
    feed(session, stamped_change("a", 2000, "0.42", "5", hash_=claims), 2 * S)
    feed(session, stamped_change("b", 2300, "0.42", "5"), 2 * S)
    tick(session, 10 * S)
    assert books["a"].checks.total_failed == 0 and books["a"].checks.passed[CheckKind.HASH] == 1
    assert books["a"].status is BookStatus.LIVE


def test_books_kept_open_past_the_usual_deadline_say_they_are_unconfirmed() -> None:
    """A grown deadline saves reconnects on a quiet market but could hide a zombie: past the usual
    deadline the books say since when they are unconfirmed, and data clears it (issue 12, item 6)."""
    exchange = Exchange(markets=1, seed=3)
    assets = exchange.asset_ids()
    session, books = started(assets, exchange)
    last_data = reconnect(session, exchange, assets, silent(session, 1))
    assert session.idle_deadline_s == 30.0, "grown: the market looked quiet"
    tick(session, last_data + 14 * S)
    assert all(books[a].unconfirmed_since_ns is None for a in assets)
    tick(session, last_data + 16 * S)
    assert session.close_reason is None, "still open: the grown deadline is 30 s"
    assert all(books[a].unconfirmed_since_ns == last_data + 15 * S for a in assets)
    assert all(books[a].status is BookStatus.LIVE for a in assets)
    for frame in flow(exchange, set(assets), 20)[:1]:
        feed(session, frame, last_data + 17 * S)
    assert all(books[a].unconfirmed_since_ns is None for a in assets), "data confirms the connection"


# -- books the venue has none for (issue 12, items 7 and 13) ------------------------------------------


def test_a_book_without_a_snapshot_is_asked_of_rest_and_closed_when_the_venue_has_none() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a", "gone"], books, SessionConfig(snapshot_timeout_s=10.0))
    connect(session, 0)
    feed(session, hand_book("a", "1000"), S)
    assert requests_in(list(tick(session, 9 * S)[1])) == []
    events = list(tick(session, 10 * S)[1])
    (request,) = [e for e in events if isinstance(e, ResyncRequested)]
    assert request.asset_id == "gone" and "no snapshot" in request.reason
    closed = missing(session, "gone", 11 * S)
    assert books["gone"].status is BookStatus.CLOSED and "no book" in books["gone"].status_reason
    assert [e.new for e in closed if isinstance(e, StatusChanged)] == [BookStatus.CLOSED]
    assert session.books_missing == 1 and books["a"].status is BookStatus.LIVE
    assert requests_in(list(tick(session, 100 * S)[1])) == [], "final: never asked again"


def test_a_book_without_a_snapshot_that_rest_has_goes_live() -> None:
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["late"], books, SessionConfig(snapshot_timeout_s=10.0))
    connect(session, 0)
    assert requests_in(list(tick(session, 10 * S)[1])) == ["late"]
    session.resync_failed("late", 11 * S)  # the REST call failed: tried again, the book still has none
    assert requests_in(list(tick(session, 12 * S)[1])) == ["late"]
    resynced(session, rest_book("late", "5000"), 13 * S)
    assert books["late"].status is BookStatus.LIVE


def test_a_resolved_market_closes_its_books_and_a_404_closes_a_suspect_one() -> None:
    books: dict[str, OrderBook] = {}
    config = SessionConfig(custom_feature_enabled=True)
    session = MarketSession(1, ["a", "b"], books, config)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), S)
    feed(session, hand_book("b", "1000").replace(b'"0xm"', b'"0xn"'), S)
    resolved = {
        "event_type": "market_resolved",
        "id": "1",
        "market": "0xm",
        "assets_ids": ["a", "a2"],
        "winning_asset_id": "a",
        "winning_outcome": "Yes",
        "timestamp": "2000",
    }
    events = feed(session, msgspec.json.encode(resolved), 2 * S)
    assert books["a"].status is BookStatus.CLOSED and "market resolved" in books["a"].status_reason
    assert any(isinstance(e, StatusChanged) and e.new is BookStatus.CLOSED for e in events)
    assert requests_in(made_suspect(session, "b", "3000", 3 * S)) == ["b"]
    missing(session, "b", 4 * S)  # its market resolved during the flow; no market_resolved came
    assert books["b"].status is BookStatus.CLOSED
    lose(session, 5 * S, "closed by the server")
    assert {b.status for b in books.values()} == {BookStatus.CLOSED}, "closed stays closed"


def test_a_rest_answer_that_comes_after_a_snapshot_superseded_its_resync_is_not_applied() -> None:
    """Found by the long chaos run with slow REST: the answer, older than the venue snapshot that came
    while the call was out, took the book back in time and left it LIVE and wrong."""
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, ["a"], books)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    assert requests_in(made_suspect(session, "a", "2000", 2 * S)) == ["a"]
    feed(session, hand_book("a", "3000", bid="0.45"), 4 * S)  # the venue's snapshot: newer
    events = resynced(session, rest_book("a", "2500", bid="0.39"), 5 * S)  # the slow answer
    assert not [e for e in events if isinstance(e, Resynced)]
    book = books["a"]
    assert book.status is BookStatus.LIVE and book.best_bid is not None and str(book.best_bid.price) == "0.45"


def test_interleaved_entries_apply_once_per_book_with_one_update_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14, item 3: ``[A, B, A, B]`` was applied twice to each book, with four BookUpdated."""
    exchange = Exchange(markets=1, seed=5)
    market = exchange.markets[0]
    yes, no = market.yes, market.no
    session, books = started([yes, no], exchange)
    before = {a: books[a].checks.total_passed + books[a].checks.total_failed for a in (yes, no)}

    def entry(asset: str, price: str, size: str, side: str) -> PriceChangeEntry:
        return PriceChangeEntry(asset_id=asset, price=price, size=size, side=side)

    message = PriceChange(
        market=books[yes].market,
        timestamp=str(exchange.now_ms + 1),
        price_changes=[
            entry(yes, "0.02", "11", "BUY"),
            entry(no, "0.98", "11", "SELL"),
            entry(yes, "0.03", "12", "BUY"),
            entry(no, "0.97", "12", "SELL"),
        ],
    )
    given: list[list[str]] = []
    apply = OrderBook.apply_price_change

    def spy(book: OrderBook, change: PriceChange) -> bool:
        if book is books[yes]:
            given.append([e.asset_id for e in change.price_changes])
        return apply(book, change)

    monkeypatch.setattr(OrderBook, "apply_price_change", spy)
    events = feed(session, msgspec.json.encode(message), 2 * S)
    updated = [e.asset_id for e in events if isinstance(e, BookUpdated)]
    assert updated == [yes, no]
    assert given == [[yes, yes]], "grouped by asset once: the book is given its own entries only"
    bids = {level.price: level.size for level in books[yes].wire_levels()[0]}
    assert bids["0.02"] == "11" and bids["0.03"] == "12"
    asks = {level.price: level.size for level in books[no].wire_levels()[1]}
    assert asks["0.98"] == "11" and asks["0.97"] == "12"
    after = {a: books[a].checks.total_passed + books[a].checks.total_failed for a in (yes, no)}
    assert after == before, "no check ran twice for one message (nor at all, mid-burst)"


def test_a_quiet_connection_settles_only_the_books_with_something_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exchange = Exchange(markets=3, seed=12)
    assets = exchange.asset_ids()
    session, _books = started(assets, exchange)
    settled: list[str] = []
    original = OrderBook.settle

    def spy(book: OrderBook, *, final: bool = False) -> None:
        settled.append(book.asset_id)
        original(book, final=final)

    monkeypatch.setattr(OrderBook, "settle", spy)
    (frame,) = [f for f in flow(exchange, {assets[0]}, 60) if b"price_change" in f][:1]
    feed(session, frame, 2 * S)
    tick(session, 2 * S + S // 2)  # quiet for settle_after_s: bursts close
    assert settled and set(settled) <= {e.asset_id for e in decode_market(frame)[0].price_changes}, (
        "the books the frame changed, not all six"
    )


def test_a_timestamp_of_digits_that_are_not_ascii_is_no_integer_and_raises_nothing() -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: the hash schedule parsed a burst's timestamp
    with ``isdigit`` alone, and one such frame raised out of the session."""
    session = MarketSession(1, ["a"], {})
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    hostile = {
        "market": "0xm",
        "timestamp": "²",
        "event_type": "price_change",
        "price_changes": [{"asset_id": "a", "price": "0.41", "size": "1", "side": "BUY", "hash": "0" * 40}],
    }
    feed(session, msgspec.json.encode(hostile), 2 * S)
    tick(session, 2 * S + S // 2)  # quiet: the burst closes and its claim is judged
    events = feed(session, hand_book("a", "3000"), 3 * S)
    assert session.books["a"].status is BookStatus.LIVE and events, "the stream went on"


# -- the counters polyfeed.metrics reads (issue 17) ------------------------------------------------------


def test_messages_bytes_and_the_lag_of_each_venue_timestamp_are_counted() -> None:
    session = MarketSession(1, ["a", "b"], {})
    connect(session, 0)
    ms = 1_000_000
    snapshot = hand_book("a", "1000")
    feed(session, snapshot, 1_003 * ms)  # received 3 ms after the venue stamped it
    feed(session, hand_book("b", "1000"), 1_400 * ms)  # the same stamp: its lag was counted already
    later = hand_book("a", "2000")
    feed(session, later, 4_000 * ms)  # 2 s late
    feed(session, b"PONG", 4_000 * ms)
    assert session.messages_received == 4, "three snapshots and a PONG"
    assert session.bytes_received == 2 * len(snapshot) + len(later) + len(b"PONG")
    assert session.lag_counts[LAG_BUCKETS_MS.index(5)] == 1, "3 ms: in the bucket up to 5 ms"
    assert session.lag_counts[LAG_BUCKETS_MS.index(2500)] == 1, "2000 ms: in the bucket up to 2.5 s"
    assert sum(session.lag_counts) == 2 and session.lag_sum_ms == 3 + 2000
    feed(session, b'{"event_type": "price_change", "market": "0x', 5_000 * ms)
    assert session.decode_failures == 1 and session.messages_received == 4, "nothing decoded"


def test_connections_made_and_the_deadlines_that_closed_them_are_counted_once_each() -> None:
    session = MarketSession(1, ["a"], {}, SessionConfig(min_idle_s=1.0, max_idle_s=1.0))
    assert not session.connected
    connect(session, 0)
    assert session.connected and session.connections_made == 1
    tick(session, 2 * S)
    tick(session, 3 * S)  # still closing: the same close, counted once
    assert session.close_reason is not None and session.idle_timeouts == 1 and session.pong_timeouts == 0
    lose(session, 3 * S, session.close_reason)
    assert not session.connected
    connect_failed(session, 4 * S, "connection refused")
    connect_failed(session, 5 * S, "connection refused")
    connect(session, 6 * S)
    assert session.connections_made == 2 and session.connects_failed == 2 and session.connect_failures == 0


def test_resyncs_completed_deferred_and_the_budget_left() -> None:
    books: dict[str, OrderBook] = {}
    config = SessionConfig(resync_burst=1, resync_per_minute=30.0)
    session = MarketSession(1, ["a", "b"], books, config)
    connect(session, 0)
    feed(session, hand_book("a", "1000"), 1)
    feed(session, hand_book("b", "1000"), 1)
    assert session.resyncs.budget(2 * S) == 1.0
    made_suspect(session, "a", "2000", 2 * S)
    made_suspect(session, "b", "2000", 2 * S)
    schedule = session.resyncs
    assert (schedule.requested, schedule.deferred, schedule.completed) == (1, 1, 0)
    # the suspect books are judged, and their resyncs asked for, at the tick a second after the change
    assert schedule.budget(3 * S) == 0.0 and schedule.budget(4 * S) == 0.5, "half a token a second"
    resynced(session, rest_book("a", "2500"), 4 * S)
    assert schedule.completed == 1 and books["a"].status is BookStatus.LIVE
