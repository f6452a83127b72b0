"""What Prometheus metrics cost a stream: messages a second with ``/metrics`` served and scraped versus
without, side by side in one run (issue 17's target: at most 3% slower).

Like with like: both sides are the same ``MarketStream`` (picows, sessions, books with polyfeed's default
checks) on the same recorded frames, pushed as fast as the socket takes them by ``bench/pushserver.py``
in its own process (as in ``bench_stream.py``); ``POST /books`` (the books' metadata, once at the start)
is answered in-process. With metrics, ``serve_metrics`` serves ``/metrics`` on the stream's event loop
and a scraper in another process (as Prometheus is) scrapes it ``SCRAPE_S`` after each answer, far more
often than Prometheus' usual 15 s (a loop saturated by the flow answers more slowly, so the number of
scrapes is printed). The rounds alternate which side goes first; the best round of each is compared,
by wall time and by the process's CPU time (which suffers less from other work on a shared machine).

What a scrape costs the event loop grows with the books, not with the message rate: printed for this
stream's books and for the whole market's 45,600 (divide by 15 s, Prometheus' default interval, for the
share of a core). The counters the sessions keep for the metrics (messages, bytes, the lag histogram)
are kept whether or not anything scrapes them, so both sides pay them; their cost a frame is printed
apart, timed with
``timeit`` on the same statements.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import timeit
from bisect import bisect_left
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from baseline import subscribed_stream
from polyfeed import MarketStream
from polyfeed.book import OrderBook
from polyfeed.metrics import StreamCollector, serve_metrics
from polyfeed.net import Backoff, MarketPool
from polyfeed.session import Event, MessageReceived
from polyfeed.session.market import LAG_BUCKETS_MS
from pushserver import frame

N_FRAMES = 100_000
ROUNDS = 4
SCRAPE_S = 0.2
HERE = Path(__file__).parent

SCRAPER = """
import sys, time, urllib.request
url, every = sys.argv[1], float(sys.argv[2])
while True:
    with urllib.request.urlopen(url) as answer:
        answer.read()
    print("scraped", flush=True)
    time.sleep(every)
"""


async def books_rest(initial: list[bytes]) -> tuple[web.AppRunner, str]:
    """``POST /books`` answered with the stream's own initial books."""
    body = b"[" + b",".join(f[1:-1] for f in initial) + b"]"

    async def books(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/books", books)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def run_stream(
    ws_url: str, assets: list[str], initial: list[bytes], total: int, metrics: bool
) -> tuple[float, float, int]:
    """(messages a second of wall time, of CPU time, scrapes during the run)."""
    runner, rest_url = await books_rest(initial)
    done = asyncio.Event()
    count = 0
    wall = cpu = 0.0

    def on_event(event: Event) -> None:
        nonlocal count, wall, cpu
        if event.__class__ is MessageReceived:
            count += 1
            if count == 1:
                wall, cpu = time.perf_counter(), time.process_time()
            elif count == total:
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                done.set()

    stream = MarketStream(
        assets, ws_url=ws_url, rest_url=rest_url, on_event=on_event, max_queue=0, backoff=Backoff(1.0, 1.0)
    )
    scraper = None
    scrapes = 0
    async with stream:
        if metrics:
            server = await serve_metrics(0, streams=[stream])
            scraper = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SCRAPER, server.url + "/metrics", str(SCRAPE_S), stdout=subprocess.PIPE
            )
            assert scraper.stdout is not None
            await scraper.stdout.readline()  # one scrape done before the flow: the server is up
        await done.wait()
        if scraper is not None:
            scraper.terminate()
            output, _ = await scraper.communicate()
            scrapes = output.count(b"scraped")
            await server.close()
    await runner.cleanup()
    return total / wall, total / cpu, scrapes


def scrape_ms(books: int) -> float:
    """One scrape of a stream of ``books`` books, rendered as ``/metrics`` renders it (no HTTP)."""
    stream = MarketStream()
    stream._pool = MarketPool("ws://127.0.0.1:1/ws/market", lambda _: None, http=None)
    stream._pool.books.update((str(n), OrderBook(str(n))) for n in range(books))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamCollector([stream]))
    generate_latest(registry)  # the first scrape notes the books
    return min(timeit.repeat(lambda: generate_latest(registry), number=5, repeat=3)) / 5 * 1e3


def counters_ns() -> float:
    """What the session's metric counters cost a frame (one message, a new venue timestamp): the
    statements ``MarketSession.receive_data`` runs for them, timed alone."""

    class Session:
        messages_received = bytes_received = lag_sum_ms = 0
        lag_counts = [0] * (len(LAG_BUCKETS_MS) + 1)

    setup = (
        "s = Session(); data = b'x' * 600; messages = [1]; "
        "now_ns = 1_790_000_000_123_000_000; ms = 1_790_000_000_000"
    )
    stmt = (
        "s.bytes_received += len(data)\n"
        "s.messages_received += len(messages)\n"
        "lag_ms = now_ns // 1_000_000 - ms\n"
        "s.lag_counts[bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1\n"
        "s.lag_sum_ms += lag_ms"
    )
    names = {"Session": Session, "bisect_left": bisect_left, "LAG_BUCKETS_MS": LAG_BUCKETS_MS}
    n = 1_000_000
    return min(timeit.repeat(stmt, setup, number=n, repeat=5, globals=names)) / n * 1e9


def main() -> None:
    frames, assets = subscribed_stream(N_FRAMES)
    initial = frames[: len(assets)]
    with tempfile.NamedTemporaryFile(suffix=".ws", delete=False) as tmp:
        tmp.write(b"".join(frame(f) for f in frames))
    server = subprocess.Popen([sys.executable, str(HERE / "pushserver.py"), tmp.name], stdout=subprocess.PIPE)
    results: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    try:
        assert server.stdout is not None
        url = f"ws://127.0.0.1:{int(server.stdout.readline())}/ws/market"
        for round_ in range(ROUNDS):
            for metrics in (False, True) if round_ % 2 == 0 else (True, False):
                results[metrics].append(asyncio.run(run_stream(url, assets, initial, len(frames), metrics)))
    finally:
        server.terminate()
        server.wait()
        Path(tmp.name).unlink()

    mean = sum(map(len, frames)) / len(frames)
    print(
        f"one MarketStream, {len(frames):,} recorded frames (one message each, mean {mean:.0f} bytes) "
        f"pushed as fast as the server can, {len(assets)} books; best of {ROUNDS} rounds:"
    )
    off_wall, off_cpu = max(r[0] for r in results[False]), max(r[1] for r in results[False])
    print(f"    {'':<58} {'msg/s':>8} {'ratio':>6} {'msg/CPU-s':>10} {'ratio':>6}")
    print(f"    {'metrics off':<58} {off_wall:>8,.0f} {'':>6} {off_cpu:>10,.0f}")
    on_wall, on_cpu = max(r[0] for r in results[True]), max(r[1] for r in results[True])
    scrapes = sum(r[2] for r in results[True])
    what = f"metrics on: scraped {SCRAPE_S:g} s after each answer ({scrapes} in all)"
    ratios = f"{on_wall:>8,.0f} {on_wall / off_wall:>6.3f} {on_cpu:>10,.0f} {on_cpu / off_cpu:>6.3f}"
    print(f"    {what:<58} {ratios}")
    for metrics in (False, True):
        each = ", ".join(f"{w:,.0f}/{c:,.0f}" for w, c, _ in results[metrics])
        print(f"    each round, {'on' if metrics else 'off'} (msg/s wall/CPU): {each}")
    for books in (len(assets), 45_600):
        print(f"  one scrape of a stream of {books:,} books: {scrape_ms(books):.2f} ms on the event loop")
    cost = counters_ns()
    print(
        f"  the session's metric counters, paid on both sides: {cost:.0f} ns a frame at most (a frame of one "
        f"message with a new venue timestamp), {cost * 1e-9 * off_cpu:.1%} of a frame's CPU time here"
    )


if __name__ == "__main__":
    main()
