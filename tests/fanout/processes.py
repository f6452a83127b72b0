"""Collectors and consumers in processes of their own, for the fan-out's tests.

``python -m tests.fanout.processes consume URL STATE [--durable NAME] ASSET...`` runs a
:class:`polyfeed.fanout.NatsMarketStream` and rewrites ``STATE`` (JSON, replaced atomically) every 50 ms
with its books (status and levels), its counters and the stream sequences it took.
``python -m tests.fanout.processes collect URL EXCHANGE NAME [--shard I/N] ASSET...`` runs a collector
on the local exchange at base URL ``EXCHANGE`` until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from polyfeed.fanout import NatsMarketStream, publish
from polyfeed.session import Event, StatusChanged
from polyfeed.venue import Venue

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[bytes]:
    """This module run in a new process with ``args`` (its output in the test's, for failures)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.fanout.processes", *args], env=env)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def book_state(book: Any) -> dict[str, Any]:
    bids, asks = book.wire_levels()
    return {
        "status": book.status.value,
        "bids": [[level.price, level.size] for level in bids],
        "asks": [[level.price, level.size] for level in asks],
        "failed_checks": sum(book.checks.failed.values()),
        "last_failure": str(book.last_failure) if book.last_failure is not None else None,
    }


async def consume(url: str, state_path: Path, durable: str | None, assets: list[str]) -> None:
    left_live: list[str] = []  # status changes away from LIVE after a book was live once

    def on_event(event: Event) -> None:
        if type(event) is StatusChanged and event.old.value == "live":
            left_live.append(f"{event.asset_id}: {event.reason}")

    stream = NatsMarketStream(url, assets or None, durable=durable, on_event=on_event, max_queue=0)
    async with stream:
        first = None
        while True:
            if first is None and stream.last_seq:
                first = stream.last_seq
            state = {
                "pid": os.getpid(),
                "books": {a: book_state(b) for a, b in stream.books.items()},
                "first_seq": first,
                "last_seq": stream.last_seq,
                "resumed_at": stream.resumed_at,
                "gaps": stream.gaps,
                "snapshots_behind": stream.snapshots_behind,
                "snapshots_read": stream.snapshots_read,
                "skipped": stream.skipped,
                "undecodable": stream.undecodable,
                "left_live": left_live,
            }
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            tmp.replace(state_path)
            await asyncio.sleep(0.05)


async def collect(
    url: str, exchange: str, name: str, assets: list[str], shard: tuple[int, int] | None = None
) -> None:
    venue = Venue.local(exchange)
    await publish(url, assets, venue=venue, collector=name, snapshot_interval_s=1.0, shard=shard)


def main(argv: list[str]) -> None:
    command, *rest = argv
    if command == "consume":
        url, state, *more = rest
        durable = None
        if more[:1] == ["--durable"]:
            durable, more = more[1], more[2:]
        asyncio.run(consume(url, Path(state), durable, more))
    elif command == "collect":
        url, exchange, name, *assets = rest
        shard = None
        if assets[:1] == ["--shard"]:
            index, count = assets[1].split("/")
            shard, assets = (int(index), int(count)), assets[2:]
        asyncio.run(collect(url, exchange, name, assets, shard))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
