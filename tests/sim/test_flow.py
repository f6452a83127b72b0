"""The order flow's pacing (polyfeed.sim.flow): the rate asked for, and no burst after a stall, over a
clock the tests move themselves; then a real stall of the simulator's event loop."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from polyfeed.sim import Simulator
from polyfeed.sim.flow import MAX_CATCH_UP_S, FlowPacer
from tests.sim.simclient import run
from tests.waiting import until


def test_ticks_run_the_rate_asked_for_carrying_fractions() -> None:
    pacer = FlowPacer(events_per_s=250, now_s=100.0)
    counts = [pacer.due(100.0 + 0.01 * tick)[0] for tick in range(1, 401)]  # 4 s of 10 ms ticks
    assert sum(counts) in (999, 1000) and set(counts) <= {2, 3}, "2.5 an event a tick, none lost"
    assert pacer.skipped == 0


def test_a_stall_is_caught_up_by_at_most_the_cap_and_the_rest_dropped_and_counted() -> None:
    """A loop that stalled 5 s at 2,048 events/s owes 10,240 events: it runs 0.1 s of them (204) in
    one tick, not a burst of 10,240 to every connection, and counts the rest (times in 1/64 s, exact)."""
    pacer = FlowPacer(events_per_s=2_048, now_s=0.0, step_ms=2)
    assert pacer.cap == int(2_048 * MAX_CATCH_UP_S) == 204
    assert pacer.due(1 / 64) == (32, 0)
    events, dropped = pacer.due(5 + 1 / 64)
    assert events == pacer.cap and dropped == 10_240 - pacer.cap
    assert pacer.skipped == dropped and pacer.skipped_ms(dropped) == 2 * dropped, "the clock moves on"
    assert pacer.due(5 + 2 / 64) == (32, 0), "then the rate again"
    for stall in range(1, 50):  # a loop that never keeps up runs the cap at every tick, no more
        assert pacer.due(5 + 2 / 64 + stall)[0] == pacer.cap
    assert pacer.largest == pacer.cap


def test_a_pause_owes_nothing() -> None:
    pacer = FlowPacer(events_per_s=1_024, now_s=0.0)
    assert pacer.due(1 / 16) == (64, 0)
    pacer.pause(60.0)
    assert pacer.due(60 + 1 / 64) == (16, 0) and pacer.skipped == 0
    with pytest.raises(ValueError, match="positive"):
        FlowPacer(events_per_s=0, now_s=0.0)


def test_a_stalled_simulator_drops_what_it_owes_beyond_the_cap_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with Simulator(markets=5, seed=3, events_per_s=2_000) as sim:
            await until(lambda: sim.flow.largest > 0, "the flow ran")
            start_ms = sim.exchange.now_ms
            time.sleep(0.5)  # the event loop stalls: 1,000 events owed, the cap is 200
            await until(lambda: sim.flow.skipped > 0, "the debt dropped")
            assert sim.flow.largest <= sim.flow.cap == 200
            assert sim.exchange.now_ms - start_ms >= 500, "the exchange's clock kept the wall clock's"

    with caplog.at_level(logging.INFO, logger="polyfeed.sim.server"):
        run(scenario)
    assert any("fell behind" in r.getMessage() for r in caplog.records)


def test_control_flow_pauses_and_resumes_from_another_process() -> None:
    async def scenario() -> None:
        async with Simulator(markets=2, seed=3, events_per_s=500) as sim, aiohttp.ClientSession() as http:
            url = sim.rest_url + "/control/flow"
            async with http.post(url, json={"paused": True}) as response:
                assert (response.status, await response.json()) == (200, {"paused": True})
            await asyncio.sleep(0.05)  # an event already under way finishes
            held = sim.exchange.now_ms
            await asyncio.sleep(0.1)
            assert sim.exchange.now_ms == held, "no flow while paused"
            async with http.post(url, json={"paused": False}) as response:
                assert await response.json() == {"paused": False}
            await until(lambda: sim.exchange.now_ms > held, "the flow resumed")
            async with http.post(url, json={"paused": "yes"}) as response:
                assert response.status == 400

    run(scenario)
