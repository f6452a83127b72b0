"""When a market session asks REST for a book: the budget and retries (ResyncSchedule), the answers it
may use (refusal), the snapshots that never came (SnapshotWatch). The session's half that acts on them
is tested through MarketSession (test_market.py)."""

from __future__ import annotations

import msgspec

from polyfeed.session import SessionConfig
from polyfeed.session.resync import PendingResync, ResyncSchedule, SnapshotWatch, refusal
from polyfeed.wire import Book, decode_market, timestamp_ms

S = 1_000_000_000


def test_the_budget_allows_a_burst_then_a_rate() -> None:
    schedule = ResyncSchedule(SessionConfig(resync_burst=2, resync_per_minute=6.0))
    schedule.start_clock(S)
    assert schedule.try_start("a", S, None) is None
    assert schedule.try_start("b", S, None) is None
    wait_s = schedule.try_start("c", S, None)
    assert wait_s is not None and abs(wait_s - 10.0) < 1e-9, "6 a minute: the next token in 10 s"
    assert set(schedule.pending) == {"a", "b"} and schedule.requested == 2
    assert schedule.next_due_ns() == 11 * S
    assert schedule.due(11 * S - 1) == []
    assert schedule.due(11 * S) == ["c"], "deferred, then due again"
    assert schedule.try_start("c", 11 * S, None) is None, "the bucket refilled meanwhile"


def test_a_failed_resync_is_due_again_after_a_pause_that_doubles_up_to_the_cap() -> None:
    schedule = ResyncSchedule(SessionConfig(resync_retry_s=1.0, max_resync_retry_s=3.0))
    now = 0
    for pause_s in (1, 2, 3, 3):
        schedule.try_start("a", now, 1000)
        schedule.failed_now("a", now)
        assert "a" not in schedule.pending
        assert schedule.next_due_ns() == now + pause_s * S
        assert schedule.due(now + pause_s * S) == ["a"]
        now += pause_s * S
    assert schedule.failed == 4
    schedule.succeeded("a")
    schedule.failed_now("a", now)
    assert schedule.next_due_ns() == now + S, "a success starts the doubling again"


def test_a_forgotten_asset_is_neither_pending_nor_due() -> None:
    schedule = ResyncSchedule(SessionConfig())
    schedule.try_start("a", 0, 5)
    assert schedule.pending["a"].seen_ms == 5
    schedule.failed_now("b", 0)
    schedule.forget("a")
    schedule.forget("b")
    assert schedule.pending == {} and schedule.next_due_ns() is None and schedule.due(10**12) == []


def book(ts: str) -> Book:
    (message,) = decode_market(
        msgspec.json.encode(
            {"event_type": "book", "market": "0xm", "asset_id": "a", "timestamp": ts, "bids": [], "asks": []}
        )
    )
    assert isinstance(message, Book)
    return message


def test_an_answer_older_than_the_stream_or_not_orderable_is_refused() -> None:
    assert refusal(book("2000"), PendingResync(0, seen_ms=1500)) is None
    assert refusal(book("2000"), PendingResync(0, seen_ms=None)) is None, "nothing applied yet"
    older = refusal(book("1000"), PendingResync(0, seen_ms=1500))
    assert older is not None and "older" in older
    bad = refusal(book("2026-12-02T20:00:00Z"), PendingResync(0, seen_ms=1500))
    assert bad is not None and "not an integer" in bad
    assert (
        timestamp_ms("1700000000000") == 1_700_000_000_000
        and timestamp_ms("１２") is None
        and timestamp_ms(None) is None
    )


def test_a_snapshot_not_come_in_time_is_overdue_until_one_arrives() -> None:
    watch = SnapshotWatch(10.0)
    watch.expect(["a", "b"], 0)
    watch.expect(["c"], 5 * S)
    assert watch.next_due_ns() == 10 * S
    watch.arrived("b")
    assert watch.expired(10 * S) == ["a"] and watch.expired(10 * S) == []
    watch.mark_overdue("a")
    assert watch.overdue("a") and watch.next_due_ns() == 15 * S
    watch.expect(["z"], 20 * S, only=True)
    assert watch.expired(10**12) == ["z"], "only: a new connection expects its assets afresh"
    watch.arrived("a")
    assert not watch.overdue("a")
