"""Markets resolve after lifetimes drawn when they open, rarely at the default rates, never the
documented slugs; each resolved market is replaced, so the number of markets stays the same. The engine
is stepped directly on its simulated clock: no wall clock anywhere."""

from __future__ import annotations

import itertools
import random
import re
import statistics
from pathlib import Path

import pytest

from polyfeed.cli import COMMANDS
from polyfeed.sim import Exchange
from polyfeed.sim.lifetimes import LONG_DATED, MEDIAN_LIFETIME_S, MIN_LIFETIME, Lifetimes
from polyfeed.sim.market import SimMarket
from polyfeed.wire import MarketResolved, NewMarket

ROOT = Path(__file__).resolve().parents[2]


def market(index: int) -> SimMarket:
    return SimMarket(index, "0x", f"y{index}", f"n{index}", "?", f"sim-market-{index}", 5000)


def test_lifetimes_are_long_tailed_around_the_median_and_never_short() -> None:
    lifetimes = Lifetimes(random.Random(4), median_s=600.0, long_dated=0)
    drawn = []
    for index in range(4_000):
        opened = market(index)
        lifetimes.opened(opened, now_ms=1_000)
        assert opened.resolves_at_ms is not None
        drawn.append((opened.resolves_at_ms - 1_000) / 1000)
    assert min(drawn) == MIN_LIFETIME * 600.0, "the shortest lives are cut at a quarter of the median"
    assert 540 < statistics.median(drawn) < 660
    assert sum(d > 3 * 600 for d in drawn) > 0.05 * len(drawn), "a long tail: some live far longer"


def test_long_dated_markets_and_an_exchange_without_lifetimes_never_get_a_date() -> None:
    lifetimes = Lifetimes(random.Random(1), median_s=600.0, long_dated=3)
    early, late = market(2), market(3)
    lifetimes.opened(early, 0)
    lifetimes.opened(late, 0)
    assert early.resolves_at_ms is None and late.resolves_at_ms is not None
    assert lifetimes.next_due_ms() == late.resolves_at_ms
    never = Lifetimes(random.Random(1), median_s=None, long_dated=0)
    never.opened(late, 0)
    assert late.resolves_at_ms is None and never.next_due_ms() is None
    with pytest.raises(ValueError, match="positive"):
        Lifetimes(random.Random(1), median_s=0.0, long_dated=0)


def test_resolved_markets_are_replaced_at_once_and_each_lived_its_drawn_lifetime() -> None:
    exchange = Exchange(markets=12, seed=3, median_lifetime_s=60.0, long_dated=0)
    opened_ms = {m.condition_id: exchange.now_ms for m in exchange.markets}
    resolved = 0
    for _ in range(6_000):  # 100 ms a step: ten minutes, ten median lifetimes
        outs = exchange.step(elapsed_ms=100)
        notices = [o.message for o in outs if o.channel == "broadcast"]
        for notice, following in itertools.pairwise(notices):
            if isinstance(notice, MarketResolved):
                assert isinstance(following, NewMarket), "a new market opens in its place"
        for notice in notices:
            if isinstance(notice, NewMarket):
                opened_ms[notice.market] = exchange.now_ms
            elif isinstance(notice, MarketResolved):
                resolved += 1
                (ended,) = [m for m in exchange.resolved if m.condition_id == notice.market]
                assert ended.resolves_at_ms is not None
                assert ended.resolves_at_ms <= exchange.now_ms < ended.resolves_at_ms + 100
                assert exchange.now_ms - opened_ms[notice.market] >= MIN_LIFETIME * 60_000
        assert len(exchange.markets) == 12
    # 12 markets for ten medians (a mean lifetime of about 1.7 medians): about 70 resolutions
    assert 40 <= resolved <= 110
    assert len({m.slug for m in exchange.markets + exchange.resolved}) == 12 + resolved


def test_at_the_default_rates_no_market_resolves_for_minutes() -> None:
    for seed in range(1, 6):
        exchange = Exchange(markets=50, seed=seed)
        soonest = exchange.lifetimes.next_due_ms()
        assert soonest is not None
        assert soonest - exchange.now_ms >= MIN_LIFETIME * MEDIAN_LIFETIME_S * 1000 >= 5 * 60_000
    exchange = Exchange(markets=50, seed=1)
    for _ in range(6_000):  # 50 ms a step: five minutes
        assert not any(isinstance(o.message, MarketResolved) for o in exchange.step(elapsed_ms=50))


def documented_slug_indexes() -> set[int]:
    texts = [ROOT.joinpath("README.md").read_text()]
    texts += [p.read_text() for p in ROOT.joinpath("docs").iterdir() if p.is_file()]
    texts += [epilog for _, _, epilog in COMMANDS]
    texts += [p.read_text() for p in ROOT.joinpath("src/polyfeed/cli").glob("*.py")]  # help texts
    return {int(n) for text in texts for n in re.findall(r"sim-market-(\d+)", text)}


def test_the_documented_slugs_are_long_dated_and_never_resolve_over_hours() -> None:
    documented = documented_slug_indexes()
    assert {0, 1} <= documented and max(documented) < LONG_DATED
    exchange = Exchange(markets=50, seed=1)
    for _ in range(10_000):  # 3 s a step: more than eight hours, some 16 median lifetimes
        exchange.step(elapsed_ms=3_000)
    assert len(exchange.markets) == 50
    assert len(exchange.resolved) > 50, "the run was long enough for the others to resolve"
    still_open = {m.slug for m in exchange.markets}
    assert {f"sim-market-{i}" for i in range(LONG_DATED)} <= still_open
    assert all(m.index >= LONG_DATED for m in exchange.resolved)
