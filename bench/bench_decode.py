"""Decode cost per message of a realistic mixed market stream (95% price_change, 4% last_trade_price,
1% book): polyfeed's decode_market beside stdlib json.loads (and orjson when installed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from polyfeed.wire import decode_market
from synthetic import market_stream

N_MESSAGES = 20_000
REPEATS = 7


def per_message_us(decode: Callable[[bytes], Any], frames: list[bytes]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        for frame in frames:
            decode(frame)
        best = min(best, time.perf_counter_ns() - start)
    return best / len(frames) / 1000


def main() -> None:
    frames = market_stream(N_MESSAGES)
    mean_bytes = sum(map(len, frames)) / len(frames)
    print(f"decode, {len(frames)} frames of a mixed stream (mean {mean_bytes:.0f} bytes), best of {REPEATS}:")
    print(
        f"  polyfeed decode_market (msgspec, typed): {per_message_us(decode_market, frames):6.2f} us/message"
    )
    print(f"  stdlib json.loads (untyped dicts):       {per_message_us(json.loads, frames):6.2f} us/message")
    try:
        import orjson  # type: ignore[import-not-found]
    except ImportError:
        print("  orjson: not installed")
    else:
        print(
            f"  orjson.loads (untyped dicts):{'':11} {per_message_us(orjson.loads, frames):6.2f} us/message"
        )


if __name__ == "__main__":
    main()
