"""Replay speed: a recording of the local exchange's stream read back and driven through the same
session code as live (books kept, top-of-book and crossed checks at every burst end, the hash on its
default schedule), at ``--speed max``, beside a minimal replay of the same recording that reads it and
does the same book work without the session.

The recording holds what a live MarketStream would write: the subscription frame, then every frame
with its receive time, and a timer marker every 1,000 frames; it is written with the real Recorder.
Like with like (bench/baseline.py): every frame concerns the subscribed books (the connection holds every
token of a local exchange whose markets never resolve; the share is printed), the minimal replay routes
messages to books as polyfeed does (the apply calls of both are counted and printed), and the figure
that means something is the ratio of the two, measured side by side in the same rounds.

The same rounds time the session alone: the records read beforehand (untimed) and fed straight to a
MarketSession as Replay feeds them. Its share of the replay's time is what the reader and the replay loop
cannot win back: the rest is theirs.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from statistics import median

import msgspec

from baseline import CALLS, CountingBook, MinimalBooks, calls_text, checks, concerning, subscribed_stream
from polyfeed.book import BookStatus, OrderBook
from polyfeed.cli import main as polyfeed
from polyfeed.record import Channel, Recorder, RecordKind, read_recording, recording_info
from polyfeed.replay.replay import Replay, replay
from polyfeed.session import MarketSession, SessionConfig
from polyfeed.wire import encode_market_subscription

N_FRAMES = 60_000
ROUNDS = 5
HASH_EVERY_MS = int(SessionConfig().hash_interval_s * 1000)  # the hash schedule replay's sessions use
_FRAME = int(RecordKind.FRAME)
_SENT = int(RecordKind.SENT)
_MARKER = int(RecordKind.MARKER)


def record(directory: Path, frames: list[bytes], assets: list[str]) -> None:
    market = int(Channel.MARKET)
    t = 1_790_000_000_000_000_000
    with Recorder(directory) as recorder:
        recorder.write(int(RecordKind.SENT), market, 1, t, encode_market_subscription(assets))
        for i, frame in enumerate(frames):
            t += 50_000
            recorder.write(int(RecordKind.FRAME), market, 1, t, frame)
            if i % 1000 == 999:
                recorder.write(int(RecordKind.MARKER), market, 1, t, b'{"marker":"timer"}')


def polyfeed_replay(directory: Path, book: type[OrderBook] = OrderBook, verify_hash: bool = True) -> Replay:
    """``replay`` as the library runs it; ``book``: the class of the books (made before the session's)."""
    state = Replay()
    if book is not OrderBook or not verify_hash:
        subscription = next(r for r in read_recording(directory) if r.kind == _SENT)
        assets = msgspec.json.decode(subscription.payload)["assets_ids"]
        state.books.update({a: book(a, verify_hash=verify_hash) for a in assets})
    for _ in replay(directory, state=state):
        pass
    return state


def minimal_replay(
    directory: Path, book: type[OrderBook] = OrderBook, verify_hash: bool = True
) -> MinimalBooks:
    """The recording read, and its frames applied to the subscribed books as polyfeed routes them."""
    minimal: MinimalBooks | None = None
    for record in read_recording(directory):
        if record.kind == _FRAME and minimal is not None:
            minimal.frame(record.payload)
        elif record.kind == _SENT:
            assets = msgspec.json.decode(record.payload)["assets_ids"]
            minimal = MinimalBooks(assets, verify_hash=verify_hash, hash_every_ms=HASH_EVERY_MS, book=book)
    assert minimal is not None
    return minimal


def session_only(directory: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) the session takes on the recording's records, read beforehand: the replay's
    work without the reader and the replay loop."""
    records = list(read_recording(directory))
    session: MarketSession | None = None
    started, cpu_started = time.perf_counter(), time.process_time()
    for record in records:
        if record.kind == _FRAME and session is not None:
            session.receive_data(record.payload, record.recv_ns)
        elif record.kind == _SENT:
            session = MarketSession(record.connection, msgspec.json.decode(record.payload)["assets_ids"], {})
            session.connection_made(record.recv_ns)
        elif record.kind == _MARKER and session is not None:
            session.timer(record.recv_ns)
        else:
            continue
        session.data_to_send()
        session.requests_received()
        session.events_received()
    return time.perf_counter() - started, time.process_time() - cpu_started


def counted(run: Callable[..., object], directory: Path) -> Counter[str]:
    """The apply calls of a run of ``polyfeed_replay`` or ``minimal_replay`` (no hash: it changes no call)."""
    CALLS.clear()
    run(directory, book=CountingBook, verify_hash=False)
    return Counter(CALLS)


def main() -> None:
    frames, assets = subscribed_stream(N_FRAMES)
    in_books, total = concerning(frames, assets)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp, "rec")
        record(directory, frames, assets)
        info = recording_info(directory)
        started = time.perf_counter()
        records = sum(1 for _ in read_recording(directory))
        read_s = time.perf_counter() - started
        polyfeed_calls = counted(polyfeed_replay, directory)
        minimal_calls = counted(minimal_replay, directory)
        wall: dict[str, list[float]] = {"polyfeed": [], "minimal": []}
        cpu: dict[str, list[float]] = {"polyfeed": [], "minimal": []}
        books: dict[str, dict[str, OrderBook]] = {}
        in_session: dict[str, list[float]] = {"wall": [], "cpu": []}
        for round_ in range(ROUNDS):  # every other round in reverse: neither side always goes first
            for key in ("polyfeed", "minimal") if round_ % 2 == 0 else ("minimal", "polyfeed"):
                run = polyfeed_replay if key == "polyfeed" else minimal_replay
                started, cpu_started = time.perf_counter(), time.process_time()
                books[key] = run(directory).books
                wall[key].append(total / (time.perf_counter() - started))
                cpu[key].append(total / (time.process_time() - cpu_started))
            session_wall, session_cpu = session_only(directory)
            in_session["wall"].append(session_wall * wall["polyfeed"][-1] / total)
            in_session["cpu"].append(session_cpu * cpu["polyfeed"][-1] / total)
        with contextlib.redirect_stdout(io.StringIO()) as out:  # the command: events counted for a summary
            started, cpu_started = time.perf_counter(), time.process_time()
            code = polyfeed(["replay", str(directory)])
            command = total / (time.perf_counter() - started)
            command_cpu = total / (time.process_time() - cpu_started)
        assert code == 0 and "replayed " in out.getvalue(), out.getvalue()
    best, minimal = max(wall["polyfeed"]), max(wall["minimal"])
    best_cpu, minimal_cpu = max(cpu["polyfeed"]), max(cpu["minimal"])
    each = {
        figure: " ".join(f"{a / b:.2f}" for a, b in zip(rates["polyfeed"], rates["minimal"], strict=True))
        for figure, rates in (("wall", wall), ("cpu", cpu))
    }
    size = f"{info.bytes_on_disk / 1e6:.1f} MB on disk, {info.segments} segments"
    share = in_books / len(frames)
    print(f"replay of {len(frames):,} recorded frames ({total:,} messages, {size}):")
    print(f"  frames concerning the subscribed books: {in_books:,} of {len(frames):,} ({share:.1%})")
    print("  book work on these frames, counted in an untimed pass:")
    print(f"    polyfeed replay: {calls_text(polyfeed_calls)}")
    print(f"    minimal replay:  {calls_text(minimal_calls)}")
    done = {key: "{:,}/{:,}".format(*checks(b)) for key, b in books.items()}
    live = sum(b.status is BookStatus.LIVE for b in books["polyfeed"].values())
    print(
        f"  checks passed/failed: polyfeed {done['polyfeed']}, minimal {done['minimal']}; "
        f"{live} of {len(books['polyfeed'])} polyfeed books live at the end"
    )
    rows = [
        ("read only", f"{records / read_s:,.0f} records/s"),
        (f"replay --speed max, books + checks, best of {ROUNDS}", f"{best:,.0f} messages/s (target 150,000)"),
        (f"minimal replay: read, decode, the same books, best of {ROUNDS}", f"{minimal:,.0f} messages/s"),
        ("replay / minimal replay, of the best runs", f"{best / minimal:.2f} (each round: {each['wall']})"),
        ("  the same by CPU time", f"{best_cpu / minimal_cpu:.2f} (each round: {each['cpu']})"),
        (
            "  share of the replay's time in the session (books, checks)",
            f"{median(in_session['wall']):.0%} by wall, {median(in_session['cpu']):.0%} by CPU (median)",
        ),
        ("the command, polyfeed replay DIR, one run", f"{command:,.0f} messages/s, with its summary"),
        (
            "the command / minimal replay, by wall and by CPU time",
            f"{command / minimal:.2f}, {command_cpu / minimal_cpu:.2f}",
        ),
    ]
    for what, figure in rows:
        print(f"  {what:<62} {figure}")


if __name__ == "__main__":
    main()
