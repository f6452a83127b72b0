"""The chaos suite's harness: a ``MarketStream`` on every token of a local exchange while faults are
injected, judged from outside (issue 12).

Ground truth is the exchange's own books. At rest (the flow paused and the stream drained) every LIVE
book is compared with them. During the flow a sampler classifies each LIVE book whose checks are not
pending: *exact or lagging* when its levels are a state the exchange's book had at some step, *wrong*
when they are a state it never had; the longest wrong spell is the figure the documented bound is held
to. Books in the middle of a burst (``open_burst``) are not classified: their intermediate states are
the venue's messages half-applied, which the exchange never holds as a state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from polyfeed import MarketStream
from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.net import Backoff
from polyfeed.session import Disconnected, Event, SessionConfig, StatusChanged
from polyfeed.sim import Simulator
from polyfeed.wire import PriceLevel
from tests.waiting import until

BOUND_S = 60.0
FAST = Backoff(initial_s=0.05, max_s=0.5)

Levels = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def levels_of(bids: Iterable[PriceLevel], asks: Iterable[PriceLevel]) -> Levels:
    return tuple((lv.price, lv.size) for lv in bids), tuple((lv.price, lv.size) for lv in asks)


@dataclass
class Report:
    """What the suite measured; :meth:`table` prints it."""

    comparisons_at_rest: int = 0
    wrong_live_at_rest: int = 0
    resolved_live_at_rest: int = 0
    """Books of markets that resolved, still LIVE at rest (they must end CLOSED)."""
    samples_in_flow: int = 0
    wrong_samples_in_flow: int = 0
    longest_wrong_live_s: float = 0.0
    zombie_detection_s: list[tuple[float, float]] = field(default_factory=list)  # (detected after, deadline)
    suspect_spells: int = 0
    levels_caught: int = 0
    """Failed hash and snapshot checks: a wrong level found by the hash, or by the snapshot that replaced
    it before the book's next hash check was due (``hash_interval_s``), which leaves no SUSPECT spell."""
    recovered_after_s: float = 0.0
    exceptions: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    wrong_examples: list[str] = field(default_factory=list)

    def table(self) -> str:
        zombies = ", ".join(f"{d:.1f} s (deadline {dl:.0f} s)" for d, dl in self.zombie_detection_s) or "-"
        rows = [
            ("faults injected", ", ".join(f"{k} x{v}" for k, v in sorted(self.faults.items()))),
            ("LIVE comparisons at rest", f"{self.comparisons_at_rest:,}"),
            ("wrong LIVE at rest", str(self.wrong_live_at_rest)),
            ("resolved markets' books LIVE at rest", str(self.resolved_live_at_rest)),
            ("LIVE samples during the flow", f"{self.samples_in_flow:,}"),
            ("wrong LIVE samples during the flow", str(self.wrong_samples_in_flow)),
            ("longest LIVE and wrong during the flow", f"{self.longest_wrong_live_s:.2f} s"),
            ("zombie detected after", zombies),
            ("SUSPECT spells", str(self.suspect_spells)),
            ("wrong levels caught (failed hash and snapshot checks)", str(self.levels_caught)),
            ("every book LIVE again after the faults stopped", f"{self.recovered_after_s:.1f} s"),
            ("exceptions", str(len(self.exceptions))),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class Chaos:
    """One exchange, one stream on all its tokens, the truth recorded, and the sampler running."""

    def __init__(self, sim: Simulator, stream: MarketStream, report: Report) -> None:
        self.sim = sim
        self.stream = stream
        self.report = report
        self.truth: dict[str, set[Levels]] = {}
        self._wrong_since: dict[str, float] = {}
        self._zombie_at: float | None = None
        self.zombies_found: set[int] = set()
        """Connections found zombie since the last ``zombie`` fault."""
        self._record_truth()

    # -- the exchange's states ---------------------------------------------------------------------------

    def _record_truth(self) -> None:
        exchange = self.sim.exchange
        for asset in exchange.asset_ids():
            self._remember(asset)
        step = exchange.step

        def step_and_remember(elapsed_ms: int = 1) -> list[Any]:
            out = step(elapsed_ms)
            touched = {a for o in out if o.channel == "market" for a in o.assets}
            for asset in touched:
                if asset in exchange.by_asset:
                    self._remember(asset)
            return out

        exchange.step = step_and_remember  # type: ignore[method-assign]

    def _remember(self, asset: str) -> None:
        book = self.sim.exchange.book(asset)
        self.truth.setdefault(asset, set()).add(levels_of(book.bids, book.asks))

    # -- judging ---------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, StatusChanged) and event.new is BookStatus.SUSPECT:
            self.report.suspect_spells += 1
        if isinstance(event, Disconnected) and self._zombie_at is not None and "no data" in event.reason:
            self.zombies_found.add(event.connection_id)
            if len(self.zombies_found) == len(self.stream.sessions):  # every connection was a zombie
                deadline = max(s.idle_deadline_s for s in self.stream.sessions)
                self.report.zombie_detection_s.append((time.monotonic() - self._zombie_at, deadline))
                self._zombie_at = None

    def sample(self) -> None:
        now = time.monotonic()
        report = self.report
        for asset, book in self.stream.books.items():
            if book.status is not BookStatus.LIVE or book.open_burst is not None:
                self._close_spell(asset, now)
                continue
            report.samples_in_flow += 1
            if levels_of(*book.wire_levels()) in self.truth.get(asset, ()):
                self._close_spell(asset, now)
            else:
                report.wrong_samples_in_flow += 1
                self._wrong_since.setdefault(asset, now)

    def _close_spell(self, asset: str, now: float) -> None:
        since = self._wrong_since.pop(asset, None)
        if since is not None:
            self.report.longest_wrong_live_s = max(self.report.longest_wrong_live_s, now - since)

    async def sampling(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.02)

    async def at_rest(self) -> None:
        """Pause the flow, let the stream drain and settle, compare every LIVE book with the exchange."""
        self.sim.pause()
        try:
            await until(self._drained, "the stream drained and settled")
            for asset, book in self.stream.books.items():
                if book.status is BookStatus.LIVE and asset not in self.sim.exchange.by_asset:
                    self.report.resolved_live_at_rest += 1
                if book.status is not BookStatus.LIVE or asset not in self.sim.exchange.by_asset:
                    continue
                truth = self.sim.exchange.book(asset)
                self.report.comparisons_at_rest += 1
                if levels_of(*book.wire_levels()) != levels_of(truth.bids, truth.asks):
                    self.report.wrong_live_at_rest += 1
                    self.report.wrong_examples.append(
                        f"{asset[:8]} after {sum(self.report.faults.values())} faults: {book.status_reason}, "
                        f"book at {book.timestamp}, exchange at {truth.timestamp}"
                    )
        finally:
            self.sim.resume()

    def _drained(self) -> bool:
        books: list[OrderBook] = list(self.stream.books.values())
        sent = self.sim.messages_sent
        quiet = getattr(self, "_last_sent", None) == sent
        self._last_sent = sent
        # Every frame written, not only none sent for a moment: under load a slow reader holds a send
        # back for longer than a poll, and its books would be judged with frames still on their way.
        written = all(
            c.idle and (c.transport is None or c.transport.get_write_buffer_size() == 0)
            for c in self.sim.market.connections
        )  # and out of the exchange's transports: bytes still buffered there have not reached the client
        return quiet and written and all(b.open_burst is None and b.awaiting_print is None for b in books)

    async def inject(self, fault: dict[str, Any]) -> None:
        self.report.faults[str(fault.get("kind"))] += 1
        if fault.get("kind") == "zombie":
            self._zombie_at = time.monotonic()
            self.zombies_found.clear()
        await self.sim.inject(fault)


async def run_chaos(
    script: Callable[[Chaos], Awaitable[None]],
    *,
    markets: int = 12,
    seed: int = 21,
    events_per_s: float = 300.0,
    config: SessionConfig | None = None,
) -> Report:
    """Run ``script`` against an exchange and a stream on every token; returns the report."""
    report = Report()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: report.exceptions.append(str(context.get("message"))))
    async with Simulator(markets=markets, seed=seed, events_per_s=events_per_s) as sim:
        chaos: Chaos | None = None

        def on_event(event: Event) -> None:
            if chaos is not None:
                chaos.on_event(event)

        stream = MarketStream(
            sim.exchange.asset_ids(),
            ws_url=sim.ws_url + "/ws/market",
            rest_url=sim.rest_url,
            per_connection=max(2, markets // 2),
            config=config,
            backoff=FAST,
            on_event=on_event,
            max_queue=0,
        )
        async with stream:
            chaos = Chaos(sim, stream, report)
            await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "all live")
            sampler = asyncio.create_task(chaos.sampling())
            try:
                await script(chaos)
            finally:
                sampler.cancel()
            report.exceptions.extend(f"callback: {n}" for n in range(stream.callback_errors))
            report.levels_caught = sum(
                b.checks.failed[CheckKind.HASH] + b.checks.failed[CheckKind.SNAPSHOT]
                for b in stream.books.values()
            )
            pool = stream._pool
            assert pool is not None
            for runner in pool._runners:  # a connection task that ended on its own died of something
                if runner.done() and not runner.cancelled() and runner.exception() is not None:
                    report.exceptions.append(repr(runner.exception()))
    return report
