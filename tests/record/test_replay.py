"""Record from the local exchange while keeping the live books, replay, and compare at every moment."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from polyfeed import MarketStream, UserStream
from polyfeed.book import BookStatus, CheckKind
from polyfeed.net import Backoff
from polyfeed.record import Recorder, read_recording
from polyfeed.record.format import Channel, RecordKind
from polyfeed.record.replay import Replay, replay
from polyfeed.session import Event, TradeUpdated
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.wire import PriceLevel

BOUND_S = 60
FAST = Backoff(initial_s=0.01, max_s=0.05)
Moment = tuple[tuple[list[PriceLevel], list[PriceLevel]], BookStatus, str | None]


async def until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_S
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


def test_replay_rebuilds_the_live_books_at_every_moment_through_faults(tmp_path: Path) -> None:
    live: dict[tuple[int, int], Moment] = {}
    order: list[tuple[int, int, str]] = []

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
                    await sim.inject({"kind": "corrupt", "asset_id": assets[0]})
                    await until(
                        lambda: any(isinstance(e, str) and e == "Resynced" for *_, e in order), "a resync"
                    )
                    await sim.inject({"kind": "drop", "mode": "reset"})
                    await until(lambda: sum(e == "Reconnected" for *_, e in order) >= 2, "reconnects")
                    await sim.inject({"kind": "duplicate", "count": 5})
                    await asyncio.sleep(0.5)

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
    assert replayed == order, "the same events, in the same order, with the same sequence numbers"
    assert compared == len(live)
    assert state.skipped == 0
    assert any(e == "Resynced" for *_, e in replayed) and any(e == "Reconnected" for *_, e in replayed)


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
