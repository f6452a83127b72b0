"""Replay speed: a recording of the local exchange's stream read back and driven through the same
session code as live (books kept, top-of-book, crossed and hash checks on), at ``--speed max``.

The recording holds what a live MarketStream would write: the subscription frame, then every frame
with its receive time, and a timer marker every 1,000 frames; it is written with the real Recorder.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import msgspec

from polyfeed.book import BookStatus
from polyfeed.cli import main as polyfeed
from polyfeed.record import Channel, Recorder, RecordKind, read_recording, recording_info
from polyfeed.replay.replay import Replay, replay
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from polyfeed.wire import encode_market_subscription

N_FRAMES = 300_000


def record(directory: Path) -> tuple[int, float]:
    exchange = Exchange(markets=4, seed=1)
    assets = exchange.asset_ids()
    frames = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    while len(frames) < N_FRAMES:
        frames.extend(encode_outbound(o).encode() for o in exchange.step() if o.channel == "market")
    frames = frames[:N_FRAMES]
    market = int(Channel.MARKET)
    t = 1_790_000_000_000_000_000
    started = time.perf_counter()
    with Recorder(directory) as recorder:
        recorder.write(int(RecordKind.SENT), market, 1, t, encode_market_subscription(assets))
        for i, frame in enumerate(frames):
            t += 50_000
            recorder.write(int(RecordKind.FRAME), market, 1, t, frame)
            if i % 1000 == 999:
                recorder.write(int(RecordKind.MARKER), market, 1, t, b'{"marker":"timer"}')
    return len(frames), time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp, "rec")
        frames, _ = record(directory)
        info = recording_info(directory)
        started = time.perf_counter()
        records = sum(1 for _ in read_recording(directory))
        read_s = time.perf_counter() - started
        best = 0.0
        for _ in range(3):
            state = Replay()
            started = time.perf_counter()
            for _ in replay(directory, state=state):
                pass
            best = max(best, frames / (time.perf_counter() - started))
        live = sum(b.status is BookStatus.LIVE for b in state.books.values())
        failed = sum(b.checks.total_failed for b in state.books.values())
        command = 0.0
        for _ in range(2):  # the command: the same replay, each event counted for its summary
            with contextlib.redirect_stdout(io.StringIO()) as out:
                started = time.perf_counter()
                code = polyfeed(["replay", str(directory)])
                elapsed = time.perf_counter() - started
            assert code == 0 and "replayed " in out.getvalue(), out.getvalue()
            command = max(command, frames / elapsed)
    size = f"{info.bytes_on_disk / 1e6:.1f} MB on disk, {info.segments} segments"
    print(f"replay of {frames:,} recorded frames ({size}):")
    print(f"  read only:                          {records / read_s:>10,.0f} records/s")
    print(f"  replay --speed max, books + checks: {best:>10,.0f} messages/s (target 150,000)")
    print(f"  the command, polyfeed replay DIR:   {command:>10,.0f} messages/s (with its summary)")
    print(f"  {live} of {len(state.books)} books live at the end, {failed} checks failed")


if __name__ == "__main__":
    main()
