"""Recording jobs: both channels into one recording, a clean stop, a recorder killed mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from polyfeed.book import BookStatus
from polyfeed.record import Channel, RecordKind, read_recording, recording_info
from polyfeed.replay.paced import replay_paced
from polyfeed.replay.replay import Replay
from polyfeed.sim import Simulator
from polyfeed.sim.account import SIM_ADDRESS, SIM_CREDENTIALS
from polyfeed.sinks.record import record

BOUND_S = 60


def test_both_channels_recorded_until_cancelled_then_replayed(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(markets=3, seed=2, events_per_s=400) as sim:
            job = asyncio.create_task(
                record(
                    tmp_path / "rec",
                    sim.exchange.asset_ids()[:4],
                    slugs=[sim.exchange.markets[2].slug],
                    ws_url=sim.ws_url + "/ws/market",
                    rest_url=sim.rest_url,
                    gamma_url=sim.rest_url,
                    user_credentials=SIM_CREDENTIALS,
                    user_ws_url=sim.ws_url + "/ws/user",
                    address=SIM_ADDRESS,
                )
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BOUND_S

            def grown() -> bool:
                return (tmp_path / "rec/meta.json").exists() and recording_info(
                    tmp_path / "rec"
                ).records >= 300

            while not grown():
                assert loop.time() < deadline, "the recording never grew"
                await asyncio.sleep(0.2)
            job.cancel()
            summary = await job
            assert summary.assets == 6 and summary.records >= 300
        channels = {(r.channel, r.kind) for r in read_recording(tmp_path / "rec")}
        assert (int(Channel.USER), int(RecordKind.FRAME)) in channels
        assert (int(Channel.MARKET), int(RecordKind.FRAME)) in channels
        assert recording_info(tmp_path / "rec").truncated_segments == 0
        state = Replay(address=SIM_ADDRESS)
        replayed = 0
        async for _, events in replay_paced(tmp_path / "rec", state=state):
            replayed += len(events)
        assert replayed > 0 and state.skipped == 0
        assert len(state.books) == 6 and all(b.status is not BookStatus.SUSPECT for b in state.books.values())
        assert state.user.trades or state.user.orders

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))


JOB = """
import asyncio, sys
from polyfeed.sinks.record import record
async def main():
    task = asyncio.create_task(record(sys.argv[1], sys.argv[4:], ws_url=sys.argv[2], rest_url=sys.argv[3]))
    from polyfeed.record import recording_info
    import pathlib
    while True:
        await asyncio.sleep(0.1)
        if (pathlib.Path(sys.argv[1]) / "meta.json").exists():
            info = recording_info(sys.argv[1])
            if info.records >= 500:
                print("written", info.records, flush=True)
                await asyncio.sleep(1.5)
                print("killable", flush=True)
                await task
asyncio.run(main())
"""


def test_a_recorder_killed_mid_run_leaves_a_readable_recording(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(markets=3, seed=6, events_per_s=400) as sim:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                JOB,
                str(tmp_path / "rec"),
                sim.ws_url + "/ws/market",
                sim.rest_url,
                *sim.exchange.asset_ids(),
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdout is not None
            written = int((await process.stdout.readline()).split()[1])
            assert await process.stdout.readline() == b"killable\n"
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
        records = list(read_recording(tmp_path / "rec"))
        assert len(records) >= written, "everything flushed more than a second before the kill is there"
        assert [r.recv_ns for r in records if r.connection == 1] == sorted(
            r.recv_ns for r in records if r.connection == 1
        )
        state = Replay()
        async for _ in replay_paced(tmp_path / "rec", state=state):
            pass
        assert all(b.status is not BookStatus.SUSPECT for b in state.books.values())
        assert sum(b.status is BookStatus.LIVE for b in state.books.values()) == 6

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
