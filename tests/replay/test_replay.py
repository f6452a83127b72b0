"""Record from the local exchange while keeping the live books, replay, and compare at every moment;
an orderly stop replays to the books as they were; records lost to damage replay as a disconnect."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from polyfeed import MarketStream, UserStream
from polyfeed.book import BookStatus, CheckKind
from polyfeed.net import Backoff
from polyfeed.record import Recorder, read_recording
from polyfeed.record.format import Channel, Damage, RecordKind
from polyfeed.replay.replay import Replay, replay
from polyfeed.session import (
    Disconnected,
    Event,
    MessageReceived,
    Reconnected,
    StatusChanged,
    TradeUpdated,
)
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.wire import Book, PriceLevel
from tests.record.recordings import flip, frame_offsets, is_gap
from tests.waiting import BOUND_S, until

FAST = Backoff(initial_s=0.01, max_s=0.05)
Moment = tuple[tuple[list[PriceLevel], list[PriceLevel]], BookStatus, str | None]


def test_replay_rebuilds_the_live_books_at_every_moment_through_faults(tmp_path: Path) -> None:
    """... up to the stream's close: that is recorded as a stop (``stopped``), which leaves the replayed
    books as they were, where the live stream reports its connections closed by the client."""
    live: dict[tuple[int, int], Moment] = {}
    order: list[tuple[int, int, str]] = []
    events_by_key: dict[tuple[int, int], Event] = {}

    async def main() -> None:
        async with Simulator(markets=4, seed=11, events_per_s=400) as sim:
            assets = sim.exchange.asset_ids()
            with Recorder(tmp_path / "rec", flush_s=0.2) as recorder:
                stream = MarketStream(
                    assets,
                    ws_url=sim.ws_url + "/ws/market",
                    rest_url=sim.rest_url,
                    per_connection=4,
                    backoff=FAST,
                    recorder=recorder,
                )

                def keep(event: Event) -> None:
                    order.append((event.connection_id, event.seq, type(event).__name__))
                    events_by_key[(event.connection_id, event.seq)] = event
                    asset = getattr(event, "asset_id", None)
                    if asset is not None:
                        book = stream.books[asset]
                        live[(event.connection_id, event.seq)] = (
                            book.wire_levels(),
                            book.status,
                            book.timestamp,
                        )

                stream._queue.on_event = keep
                async with stream:
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live"
                    )
                    # Paused: a venue snapshot of that book arriving first would cure it without a resync.
                    sim.pause()
                    await sim.inject({"kind": "corrupt", "asset_id": assets[0]})
                    await until(
                        lambda: any(isinstance(e, str) and e == "Resynced" for *_, e in order), "a resync"
                    )
                    sim.resume()
                    await sim.inject({"kind": "drop", "mode": "reset"})
                    await until(lambda: sum(e == "Reconnected" for *_, e in order) >= 2, "reconnects")
                    await sim.inject({"kind": "duplicate", "count": 5})
                    await asyncio.sleep(0.5)
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live again"
                    )

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
    assert len(live) > 500
    state = Replay()
    replayed: list[tuple[int, int, str]] = []
    compared = 0
    for _, events in replay(tmp_path / "rec", state=state):
        for event in events:
            replayed.append((event.connection_id, event.seq, type(event).__name__))
            moment = live.get((event.connection_id, event.seq))
            asset = getattr(event, "asset_id", None)
            if moment is not None and asset is not None:
                book = state.books[asset]
                assert (book.wire_levels(), book.status, book.timestamp) == moment, (
                    event,
                    book.status_reason,
                )
                compared += 1
    assert replayed == order[: len(replayed)], "the same events, in order, with the same sequence numbers"
    closing = [events_by_key[key[:2]] for key in order[len(replayed) :]]
    assert compared == len(live) - sum(isinstance(e, StatusChanged) for e in closing)
    assert state.skipped == 0 and state.gaps == 0
    assert any(e == "Resynced" for *_, e in replayed) and any(e == "Reconnected" for *_, e in replayed)
    # Live, the close turned every book stale and each connection reported it closed by the client;
    # the replay ends with the books as they were at the stop.
    disconnects = [e for e in closing if isinstance(e, Disconnected)]
    assert len(disconnects) == len(state.sessions) == 2
    assert all(e.reason == "closed by the client" for e in disconnects)
    stale = {e.asset_id: e for e in closing if isinstance(e, StatusChanged)}
    assert len(stale) == len(closing) - len(disconnects) == len(state.books) == 8
    for asset, event in stale.items():
        assert event.new is BookStatus.STALE and event.reason == "connection lost: closed by the client"
        book = state.books[asset]
        levels, _, timestamp = live[(event.connection_id, event.seq)]
        assert (book.wire_levels(), book.status, book.timestamp) == (levels, event.old, timestamp)
        assert book.status is BookStatus.LIVE


def test_user_channel_recordings_hold_no_secret_and_replay_the_same_state(tmp_path: Path) -> None:
    live_trades: list[tuple[str, str]] = []

    async def main() -> None:
        async with Simulator(markets=3, seed=4, events_per_s=400) as sim:
            with Recorder(tmp_path / "rec", flush_s=0.2) as recorder:
                stream = UserStream(
                    SIM_CREDENTIALS,
                    address=SIM_ADDRESS,
                    ws_url=sim.ws_url + "/ws/user",
                    rest_url=sim.rest_url,
                    backoff=FAST,
                    recorder=recorder,
                    on_event=lambda e: (
                        live_trades.append((e.trade_id, e.status)) if isinstance(e, TradeUpdated) else None
                    ),
                )
                async with stream:
                    await until(lambda: len(live_trades) >= 20, "twenty trade updates")
                    assert stream.connection is not None
                    for conn in list(sim.user.connections):
                        assert conn.transport is not None
                        conn.transport.abort()
                    await until(
                        lambda: stream.connection is not None and stream.connection.reconciliations >= 2,
                        "a second reconciliation",
                    )
                    snapshot = {t.id: t.status for t in stream.state.trades.values()}
                    fills = sorted((f.order_id, f.size) for f in stream.state.fills(include_failed=True))
            state = Replay(address=SIM_ADDRESS)
            for _ in replay(tmp_path / "rec", state=state):
                pass
            assert {t.id: t.status for t in state.user.trades.values()} == snapshot
            assert sorted((f.order_id, f.size) for f in state.user.fills(include_failed=True)) == fills

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
    raw = b"".join(p.read_bytes() for p in (tmp_path / "rec").iterdir())
    payloads = b"".join(r.payload for r in read_recording(tmp_path / "rec"))
    for secret in (SIM_CREDENTIALS.api_key, SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase):
        assert secret.encode() not in payloads and secret.encode() not in raw
    assert b"<redacted-api-key>" in payloads


def test_a_recordings_metadata_marker_gives_the_tick_size_a_snapshot_lacked(tmp_path: Path) -> None:
    """December 2025 initial books had no tick_size (spec 7.3): the metadata marker written from REST
    ``/books`` keeps it, so the replayed book verifies the snapshot's hash, which covers the tick."""
    asset, market = "7667", "0xfeed"
    hashed = {
        "market": market,
        "asset_id": asset,
        "timestamp": "1000",
        "hash": "",
        "bids": [{"price": "0.4", "size": "10"}],
        "asks": [{"price": "0.6", "size": "10"}],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "last_trade_price": "0.500",
    }
    digest = hashlib.sha1(json.dumps(hashed, separators=(",", ":")).encode()).hexdigest()
    snapshot = {k: v for k, v in hashed.items() if k not in ("min_order_size", "tick_size", "neg_risk")}
    frame = json.dumps([{**snapshot, "hash": digest, "event_type": "book"}]).encode()
    marker = {
        "marker": "metadata",
        "books": [{"asset_id": asset, "min_order_size": "5", "tick_size": "0.01"}],
    }
    for with_tick in (True, False):
        directory = tmp_path / f"rec-{with_tick}"
        with Recorder(directory) as recorder:
            if with_tick:
                recorder.write(int(RecordKind.MARKER), int(Channel.MARKET), 0, 1, json.dumps(marker).encode())
            subscription = json.dumps({"type": "market", "assets_ids": [asset]}).encode()
            recorder.write(int(RecordKind.SENT), int(Channel.MARKET), 1, 2, subscription)
            recorder.write(int(RecordKind.FRAME), int(Channel.MARKET), 1, 3, frame)
        state = Replay()
        for _ in replay(directory, state=state):
            pass
        book = state.books[asset]
        book.settle(final=True)
        if with_tick:
            assert book.tick_size == "0.01" and book.status is BookStatus.LIVE
            assert book.checks.passed[CheckKind.HASH] == 1 and book.checks.total_failed == 0
        else:
            assert book.checks.failed[CheckKind.HASH] == 1, "without the tick the hash cannot verify"
            assert book.last_failure is not None and "tick size unknown" in book.last_failure.detail


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of the local exchange in small segments of several frames each."""
    directory = tmp_path_factory.mktemp("segmented") / "rec"

    async def main() -> None:
        async with Simulator(markets=3, seed=5, events_per_s=400) as sim:
            with Recorder(directory, rotate_bytes=60_000, flush_s=0.02) as recorder:
                stream = MarketStream(
                    sim.exchange.asset_ids(), ws_url=sim.ws_url + "/ws/market", rest_url=sim.rest_url
                )
                stream.recorder = recorder
                async with stream:
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live"
                    )
                    await until(lambda: recorder.segments >= 10, "ten segments")

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
    return directory


@pytest.mark.parametrize("damage", ["missing", "flipped"])
def test_records_lost_to_damage_replay_as_a_disconnect_and_books_resync_at_the_next_snapshot(
    segmented: Path, tmp_path: Path, damage: str
) -> None:
    """A middle segment deleted, or 16 bytes flipped inside one of its frames: the replay goes on past
    the loss as after a live disconnect (every book stale, the gap reported), and each book is, from
    its next snapshot on, the book a replay of the intact recording has at the same record."""
    directory = tmp_path / "rec"
    shutil.copytree(segmented, directory)
    target = directory / "seg-000004.pfr.zst"
    if damage == "missing":
        target.unlink()
    else:
        starts = frame_offsets(target)
        assert len(starts) >= 3, "several frames in the segment"
        middle = len(starts) // 2
        flip(target, (starts[middle] + starts[middle + 1]) // 2 - 8)
    losses: list[Damage] = []
    clean, damaged = Replay(), Replay()
    clean_records = replay(segmented, state=clean)
    resynced: set[str] = set()
    gaps = compared = 0
    reconnected = False
    for record, events in replay(directory, state=damaged, on_damage=losses.append):
        if is_gap(record):
            gaps += 1
            disconnects = [e for e in events if isinstance(e, Disconnected)]
            assert len(disconnects) == len(damaged.sessions) == 1
            assert disconnects[0].reason.startswith(f"records lost: {target.name} is ")
            assert all(b.status is BookStatus.STALE for b in damaged.books.values()), "as live: all stale"
            continue
        for seen, _ in clean_records:
            if seen == record:
                break
        else:
            pytest.fail("a record the intact recording does not hold")
        if not gaps:
            continue
        reconnected = reconnected or any(isinstance(e, Reconnected) for e in events)
        resynced.update(
            e.message.asset_id
            for e in events
            if isinstance(e, MessageReceived) and isinstance(e.message, Book)
        )
        for asset in resynced:
            book, intact = damaged.books[asset], clean.books[asset]
            assert (book.wire_levels(), book.timestamp, book.status) == (
                intact.wire_levels(),
                intact.timestamp,
                intact.status,
            )
            compared += 1
    for _ in clean_records:
        pass
    (loss,) = losses
    assert gaps == 1 and loss.segment == target.name and loss.problem == damage.replace("flipped", "damaged")
    assert loss.records_lost == clean.records - (damaged.records - gaps) > 0
    assert reconnected, "the sessions report the gap when data comes again"
    assert resynced and compared, "books resynced at snapshots after the loss"
    for asset, book in damaged.books.items():  # never live and wrong
        assert book.status is BookStatus.STALE or book.wire_levels() == clean.books[asset].wire_levels()
