"""``polyfeed replay``: a window of a recording, its events as JSON lines, the watch screen, and the
recording served over Polymarket's protocol to a client; a damaged recording replayed past its losses,
each named; bad arguments are one line and exit 2."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest

from polyfeed.cli.recording import LABELS_META
from polyfeed.record import Channel, Recorder, RecordKind, read_recording, recording_info
from polyfeed.replay.replay import replay
from polyfeed.sinks.record import record
from tests.cli.conftest import Recorded
from tests.cli.harness import BOUND_S, Exchange, assert_one_line_failure, polyfeed, polyfeed_process
from tests.cli.test_record import digests
from tests.record.recordings import flip, frame_offsets, index_lines
from tests.waiting import until

S = 1_000_000_000


def test_jsonl_writes_every_event_the_replay_makes_within_the_window(
    recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    first_ns = recording_info(recording.directory).first_ns
    assert first_ns is not None
    window = (first_ns + S // 2, first_ns + S + S // 2)
    expected = [
        type(event).__name__
        for record, events in replay(recording.directory, from_ns=window[0], until_ns=window[1])
        for event in events
    ]
    result = polyfeed(
        capsys, "replay", str(recording.directory), "--view", "jsonl", "--from", "+0.5s", "--until", "+1.5s"
    )
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [line["type"] for line in lines] == expected and expected
    assert all(window[0] <= line["recv_ns"] <= window[1] for line in lines)
    assert {"MessageReceived", "BookUpdated"} <= set(expected)


def test_until_stops_the_books_at_that_moment(
    recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = polyfeed(capsys, "replay", str(recording.directory))
    part = polyfeed(capsys, "replay", str(recording.directory), "--until", "+1s")
    assert whole.code == 0 and part.code == 0, whole.err + part.err
    records = re.compile(r"^replayed ([\d,]+) records")
    counted = [records.match(r.out) for r in (whole, part)]
    assert counted[0] and counted[1]
    assert int(counted[1][1].replace(",", "")) < int(counted[0][1].replace(",", ""))
    info = recording_info(recording.directory)
    assert info.first_ns is not None
    until = info.first_ns + S
    assert int(counted[1][1].replace(",", "")) == sum(
        1 for r in read_recording(recording.directory) if r.recv_ns <= until
    )


def test_the_watch_view_draws_the_recorded_books(
    recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "replay", str(recording.directory), "--view", "watch", "--speed", "max")
    assert result.code == 0, result.err
    for slug in recording.slugs:
        assert f"{slug} · Yes" in result.out and f"{slug} · No" in result.out
    assert "│" in result.out, "the ladder was drawn"
    last_frame = result.out[result.out.rindex("polyfeed 4 books") : result.out.index("replayed ")]
    assert last_frame.count("LIVE") == 4, "the last frame shows the books as the recorder stopped them"
    assert "STALE" not in last_frame


def test_serve_sends_every_recorded_frame_to_a_client_then_stops_on_ctrl_c(recording: Recorded) -> None:
    frames = [r.payload for r in read_recording(recording.directory) if r.kind == RecordKind.FRAME]
    assert all(r.channel == Channel.MARKET for r in read_recording(recording.directory))
    assets = sorted({str(m["asset_id"]) for f in frames for m in _messages(f) if "asset_id" in m})
    process = polyfeed_process("replay", str(recording.directory), "--serve", "--port", "0", "--speed", "max")
    assert process.stdout is not None
    try:
        line = process.stdout.readline().decode()
        found = re.search(
            r"on (ws://127\.0\.0\.1:\d+/ws/market) as fast as clients read, REST on (http://127\.0\.0\.1:\d+);",
            line,
        )
        assert found, line
        received = asyncio.run(asyncio.wait_for(_read(found[1], assets, len(frames)), BOUND_S))
        book = asyncio.run(asyncio.wait_for(_book(found[2], assets[0]), BOUND_S))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert received == frames, "the server sends the recorded frames byte for byte, in order"
    assert book["asset_id"] == assets[0] and book["bids"], "REST answers from the replayed books"
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "served 1 clients"


async def _read(url: str, assets: list[str], count: int) -> list[bytes]:
    received: list[bytes] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"assets_ids": assets, "type": "market"}))
        while len(received) < count:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            received.append(message.data.encode())
    return received


async def _book(rest_url: str, asset: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(rest_url + "/book", params={"token_id": asset}) as got,
    ):
        assert got.status == 200, await got.text()
        body: dict[str, object] = await got.json()
    return body


def _messages(frame: bytes) -> list[dict[str, object]]:
    body = json.loads(frame)
    return body if isinstance(body, list) else [body]


def test_not_a_recording_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "replay", str(tmp_path))
    line = assert_one_line_failure(result, "replay")
    assert result.code == 1 and "is not a recording" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--speed", "0"], "'0' is not a speed"),
        (["--speed", "fast"], "'fast' is not a speed"),
        (["--from", "yesterday"], "'yesterday' is not a time"),
        (["--until", "+5d"], "'+5d' is not a time"),
        (["--from", "+2s", "--until", "+1s"], "--from +2s is after --until +1s"),
        (["--view", "table"], "'table' is not one of"),
        (["--serve", "--port", "70000"], "--port"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    recording: Recorded, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "replay", str(recording.directory), *args)
    line = assert_one_line_failure(result, "replay")
    assert result.code == 2 and says in line


def test_a_missing_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "replay", str(tmp_path / "nothing"))
    line = assert_one_line_failure(result, "replay")
    assert result.code == 2 and "does not exist" in line


@pytest.fixture(scope="module")
def segmented(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Two markets of the module's exchange recorded in segments of about a second each."""
    directory = tmp_path_factory.mktemp("segmented") / "rec"
    markets = exchange.sim.exchange.markets[2:4]
    labels = {t: [m.slug, o] for m in markets for t, o in ((m.yes, "Yes"), (m.no, "No"))}
    opened: list[Recorder] = []

    async def main() -> None:
        job = asyncio.create_task(
            record(
                directory,
                list(labels),
                ws_url=exchange.ws_url,
                rest_url=exchange.rest_url,
                rotate_bytes=4_000,
                meta={LABELS_META: labels},
                on_open=lambda recorder, _: opened.append(recorder),
            )
        )
        await until(lambda: bool(opened) and opened[0].segments >= 6, "six segments")
        job.cancel()
        await job

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))
    return Recorded(directory, [m.slug for m in markets])


@pytest.mark.parametrize("damage", ["missing", "flipped"])
def test_a_damaged_recording_is_replayed_past_each_loss_named_on_stderr_and_exits_3(
    segmented: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    intact = polyfeed(capsys, "replay", str(segmented.directory))
    assert intact.code == 0 and not intact.err, intact.err
    directory = tmp_path / "rec"
    shutil.copytree(segmented.directory, directory)
    target = directory / "seg-000003.pfr.zst"
    if damage == "missing":
        target.unlink()
        expected = "polyfeed replay: seg-000003.pfr.zst is missing: "
    else:  # the first frame (a segment holds one or two here), read past to the next or the end
        starts = [*frame_offsets(target), target.stat().st_size]
        flip(target, starts[1] // 2 - 8)
        expected = "polyfeed replay: seg-000003.pfr.zst is damaged at byte 0 (zstd frame does not decode: "
    result = polyfeed(capsys, "replay", str(directory))
    assert result.code == 3, result.err
    (line,) = result.err.splitlines()
    assert line.startswith(expected), line
    said = re.search(r"[:,] ([\d,]+) records lost \(per the index\)$", line)
    assert said, line
    lost = int(said[1].replace(",", ""))
    if damage == "missing":
        assert lost == index_lines(directory)[2]["records"]
    assert (
        f"1 loss in the recording: {lost:,} records lost (per the index), each named on stderr" in result.out
    )
    replayed = (
        re.search(r"^replayed ([\d,]+) records", intact.out, re.M),
        re.search(r"^replayed ([\d,]+) records", result.out, re.M),
    )
    assert replayed[0] and replayed[1]
    counts = [int(m[1].replace(",", "")) for m in replayed if m]
    assert counts[0] - counts[1] == lost
    books, whole = digests(result.out), digests(intact.out)
    assert books.keys() == whole.keys() and len(books) == 4
    statuses = dict(re.findall(r"^(\S+ · (?:Yes|No))\s+(\w+)\s", result.out, re.M))
    for name, (_, digest) in books.items():  # live again since a snapshot, or stale: never live and wrong
        assert statuses[name] == "stale" or digest == whole[name][1], name
    jsonl = polyfeed(capsys, "replay", str(directory), "--view", "jsonl")
    assert jsonl.code == 3 and jsonl.err.splitlines() == [line]
    disconnects = [json.loads(x) for x in jsonl.out.splitlines() if '"Disconnected"' in x]
    assert any(d["reason"].startswith("records lost: seg-000003.pfr.zst") for d in disconnects)
