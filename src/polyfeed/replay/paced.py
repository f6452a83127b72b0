"""Replaying a recording at its recorded pace (or a multiple of it), for screens and servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from polyfeed.record.format import Damage, Record
from polyfeed.replay.replay import Replay, replay
from polyfeed.session import Event

__all__ = ["replay_paced"]


async def replay_paced(
    directory: str | Path,
    *,
    speed: float | None = None,
    from_ns: int | None = None,
    until_ns: int | None = None,
    state: Replay | None = None,
    on_damage: Callable[[Damage], None] | None = None,
) -> AsyncIterator[tuple[Record, list[Event]]]:
    """:func:`polyfeed.replay.replay.replay` at ``speed`` times the recorded pace (``None``: as fast as
    possible, yielding to the event loop now and then); losses in the recording go to ``on_damage``."""
    loop = asyncio.get_running_loop()
    start_wall = loop.time()
    start_ns: int | None = None
    count = 0
    records = replay(directory, from_ns=from_ns, until_ns=until_ns, state=state, on_damage=on_damage)
    for record, events in records:
        if speed:
            if start_ns is None:
                start_ns = record.recv_ns
            delay = start_wall + (record.recv_ns - start_ns) / 1e9 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            count += 1
            if count % 4096 == 0:
                await asyncio.sleep(0)
        yield record, events
