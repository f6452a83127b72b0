"""The local exchange: messages/s it pushes to 1 and to 100 clients, and its memory with 1,000 markets.

Clients run in a separate process (counting frames, no parsing), so they do not share the server's
core; the order flow is set well above what the server can send, so the figure is the server's limit.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time

from polyfeed.sim import Exchange, Simulator

CLIENT = """
import asyncio, sys, time
import aiohttp

async def one(session, url, assets, counts, i, stop):
    async with session.ws_connect(url, max_msg_size=0) as ws:
        await ws.send_str('{"type":"market","assets_ids":' + assets + ',"initial_dump":false}')
        async for frame in ws:
            counts[i] += 1
            if stop.is_set():
                return

async def main():
    url, assets, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    counts = [0] * n
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(one(session, url, assets, counts, i, stop)) for i in range(n)]
        await asyncio.sleep(1.0)  # warm-up
        start, before = time.perf_counter(), sum(counts)
        await asyncio.sleep(seconds)
        total = sum(counts) - before
        elapsed = time.perf_counter() - start
        stop.set()
        for t in tasks:
            t.cancel()
    print(total / elapsed)

asyncio.run(main())
"""


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def push_rate(clients: int, seconds: float, events_per_s: float) -> tuple[float, float]:
    async with Simulator(markets=20, seed=1, events_per_s=events_per_s) as sim:
        assets = "[" + ",".join(f'"{a}"' for a in sim.exchange.asset_ids()) + "]"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            sim.ws_url + "/ws/market",
            assets,
            str(clients),
            str(seconds),
            stdout=subprocess.PIPE,
        )
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        out, _ = await process.communicate()
        server_cpu = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
        return float(out.decode().strip()), server_cpu


def main() -> None:
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    exchange = Exchange(markets=1_000, seed=1)
    built_s = time.perf_counter() - start
    print(
        f"memory: 1,000 markets (2,000 books): {rss_mib() - before:.0f} MiB more resident, "
        f"built in {built_s:.1f} s"
    )
    start = time.perf_counter()
    steps = 20_000
    messages = sum(len(exchange.step()) for _ in range(steps))
    elapsed = time.perf_counter() - start
    print(f"engine alone: {steps / elapsed:,.0f} events/s, {messages / elapsed:,.0f} messages/s")
    del exchange
    for clients, rate in ((1, 40_000), (100, 1_000)):
        per_s, cpu = asyncio.run(push_rate(clients, 5.0, rate))
        print(
            f"push to {clients:>3} client(s), every client subscribed to all 40 tokens: "
            f"{per_s:,.0f} messages/s in total (server process at {cpu:.0%} of a core)"
        )


if __name__ == "__main__":
    main()
