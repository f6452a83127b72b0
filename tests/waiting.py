"""Waiting in tests: for a condition, with a bound that fails the test instead of hanging it.

A bound, never a timed assertion: how long a condition takes is not what a test checks (a loaded
machine is slower), only that it happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["BOUND_S", "until", "until_async"]

BOUND_S = 60.0
"""How long a test waits for anything before it fails."""


async def until(
    condition: Callable[[], bool], what: str, bound_s: float = BOUND_S, poll_s: float = 0.02
) -> float:
    """Wait until ``condition()`` is true, failing with ``what`` past ``bound_s``; returns how long it
    took (for reports, not for assertions)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        assert loop.time() - start < bound_s, f"never happened within {bound_s:g} s: {what}"
        await asyncio.sleep(poll_s)
    return loop.time() - start


async def until_async(
    condition: Callable[[], Awaitable[bool]], what: str, bound_s: float = BOUND_S, poll_s: float = 0.05
) -> float:
    """:func:`until` for a condition that must await (a REST call, say)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await condition():
        assert loop.time() - start < bound_s, f"never happened within {bound_s:g} s: {what}"
        await asyncio.sleep(poll_s)
    return loop.time() - start
