"""Recording: the cost of Recorder.write per message, bytes on disk per million messages, reading speed,
and the Parquet export's speed, on frames the local exchange sends.

The recorder compresses and writes on a thread of its own (zstd and os.write release the GIL), so the
cost of recording is given three ways, each the best of REPEATS runs of write() for every frame and
close(): the CPU time of the thread that records (the stream's event loop: what recording costs it), the
CPU time of the whole process (compression included, on the other core), and the wall time to the
recording closed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import msgspec

from polyfeed.record import Channel, Recorder, RecordKind, read_recording
from polyfeed.replay.export import export_parquet
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound

N_FRAMES = 100_000
RATE_PER_S = 20_000  # receive times spaced as a busy stream's: a flush (one zstd frame) a second
REPEATS = 5


def exchange_frames(n: int) -> list[bytes]:
    """What a connection subscribed to every token of 20 markets receives: initial books, then flow."""
    exchange = Exchange(markets=20, seed=1)
    assets = set(exchange.asset_ids())
    frames = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    for out in exchange.run(10 * n):
        if out.channel == "market" and assets & set(out.assets):
            frames.append(encode_outbound(out).encode())
            if len(frames) == n:
                break
    return frames


class Cost(NamedTuple):
    """Seconds spent recording: CPU of the recording thread, CPU of the process, wall."""

    thread: float
    process: float
    wall: float


def record(directory: Path, frames: list[bytes], level: int) -> tuple[Cost, Recorder]:
    """Time spent in write() (and close()) for all frames."""
    step = 1_000_000_000 // RATE_PER_S
    recv_ns = time.time_ns()
    recorder = Recorder(directory, level=level)
    write = recorder.write
    kind, channel = RecordKind.FRAME, Channel.MARKET
    start, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
    for frame in frames:
        recv_ns += step
        write(kind, channel, 1, recv_ns, frame)
    recorder.close()
    cost = Cost(time.thread_time() - thread, time.process_time() - process, time.perf_counter() - start)
    return cost, recorder


def main() -> None:
    frames = exchange_frames(N_FRAMES)
    n = len(frames)
    mean = sum(map(len, frames)) / n
    print(f"recording {n} frames of the local exchange (mean {mean:.0f} bytes), best of {REPEATS}:")
    work = Path(tempfile.mkdtemp(prefix="bench_record_"))
    try:
        for level in (1, 3):
            best = Cost(float("inf"), float("inf"), float("inf"))
            recorder = None
            for run in range(REPEATS):
                directory = work / f"level{level}-{run}"
                cost, recorder = record(directory, frames, level)
                best = Cost(*map(min, best, cost))
                if run:
                    shutil.rmtree(directory)
            assert recorder is not None
            per_million = recorder.bytes_written / n * 1e6
            print(
                f"  zstd level {level}: {best.thread / n * 1e6:5.2f} us/message on the recording thread, "
                f"{best.process / n * 1e6:5.2f} us/message CPU in all (compression included), "
                f"{best.wall / n * 1e6:5.2f} us/message wall; "
                f"{per_million / 2**20:5.1f} MiB on disk per million messages, "
                f"ratio {recorder.bytes_in / recorder.bytes_written:4.1f}x"
            )
        flush_free = float("inf")
        chunk = 5_000  # about 3 MiB: under the buffer that makes write() flush
        for run in range(REPEATS):
            directory = work / f"buffer-{run}"
            recorder = Recorder(directory, flush_s=1e9, rotate_s=1e9)
            write = recorder.write
            spent = 0.0
            for first in range(0, n, chunk):
                start = time.thread_time()
                for i in range(first, min(n, first + chunk)):
                    write(1, 0, 1, i + 1, frames[i])
                spent += time.thread_time() - start
                recorder.flush()  # not timed
            flush_free = min(flush_free, spent)
            recorder.close()
            shutil.rmtree(directory)
        print(f"  of which buffering alone (no flush due): {flush_free / n * 1e6:5.2f} us/message")

        source = work / "level3-0"
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            count = sum(1 for _ in read_recording(source))
            best = min(best, time.perf_counter() - start)
        assert count == n
        print(f"  read_recording: {n / best:,.0f} records/s")

        best = float("inf")
        summary = None
        for run in range(3):
            start = time.perf_counter()
            summary = export_parquet(source, work / f"parquet-{run}")
            best = min(best, time.perf_counter() - start)
        assert summary is not None
        rows = ", ".join(f"{name} {count:,}" for name, count in summary.rows.items())
        print(
            f"  export_parquet: {summary.messages / best:,.0f} messages/s "
            f"({summary.messages:,} messages, {summary.files} files; rows: {rows})"
        )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
