"""ResyncSchedule: the REST budget of a connection, the retries with a doubling pause, the resyncs under
way."""

from __future__ import annotations

from polyfeed.session import SessionConfig
from polyfeed.session.resync import ResyncSchedule

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
