"""``polyfeed record`` against the local exchange: the books it ends with are the books ``polyfeed replay``
rebuilds, live as they were at the stop; a recorder killed outright or stopped with Ctrl-C leaves a
readable recording; a full disk ends it at once in one line; the user channel is recorded without its
secrets; bad arguments and an absent venue are one line."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from polyfeed.record import Channel, read_recording, recording_info
from polyfeed.sim.account import SIM_CREDENTIALS
from tests.cli.conftest import Recorded
from tests.cli.harness import (
    BOUND_S,
    Exchange,
    assert_one_line_failure,
    exchange_in_thread,
    http_get,
    polyfeed,
    polyfeed_process,
    served_url,
    subprocess_env,
    venue_args_at,
)
from tests.record.recordings import index_lines

ROW = re.compile(r"^(\S+ · (?:Yes|No))\s+(\w+)\s+\S+\s+\S+\s+\d+/\d+\s+(\d+)\s+([0-9a-f]{12})\s*$")


def digests(out: str) -> dict[str, tuple[str, str]]:
    """The books table's rows: name -> (failed checks, digest)."""
    return {m[1]: (m[3], m[4]) for line in out.splitlines() if (m := ROW.match(line))}


def test_replay_lists_the_books_the_recorder_ended_with(
    exchange: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markets = exchange.sim.exchange.markets[2:4]
    directory = tmp_path / "rec"
    args = ["record", *(m.slug for m in markets), "--seconds", "2", "--out", str(directory)]
    recorded = polyfeed(capsys, *args, *exchange.venue_args())
    assert recorded.code == 0, recorded.err
    assert recorded.out.startswith("recorded ") and "of 4 books in " in recorded.out
    books = digests(recorded.out)
    assert set(books) == {f"{m.slug} · {o}" for m in markets for o in ("Yes", "No")}
    assert all(failed == "0" for failed, _ in books.values())

    replayed = polyfeed(capsys, "replay", str(directory))
    assert replayed.code == 0, replayed.err
    assert digests(replayed.out) == books, "the replay rebuilt other books than the recorder had"
    statuses = re.findall(r"^\S+ · (?:Yes|No)\s+(\w+)\s", replayed.out, re.M)
    assert statuses == ["live"] * 4, "the recording ends with a stop, not a lost connection"
    recorded_statuses = re.findall(r"^\S+ · (?:Yes|No)\s+(\w+)\s", recorded.out, re.M)
    assert recorded_statuses == statuses, "the recorder shows its books as they were when it stopped"
    info = recording_info(directory)
    assert info.truncated_segments == 0 and info.records > 4
    assert info.meta["targets"] == [m.slug for m in markets]


def test_all_records_every_open_market_and_replay_rebuilds_the_same_books(
    exchange: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "rec"
    recorded = polyfeed(
        capsys, "record", "--all", "--seconds", "2", "--out", str(directory), *exchange.venue_args()
    )
    assert recorded.code == 0, recorded.err
    markets = exchange.sim.exchange.markets
    assert f"of {2 * len(markets)} books in " in recorded.out, "every open market's two tokens"
    books = digests(recorded.out)
    assert set(books) == {f"{m.slug} · {o}" for m in markets for o in ("Yes", "No")}, (
        "named as Gamma names them"
    )
    assert all(failed == "0" for failed, _ in books.values())
    replayed = polyfeed(capsys, "replay", str(directory))
    assert replayed.code == 0, replayed.err
    rows = re.findall(r"^\S+\s+live\s+\S+\s+\S+\s+\d+/\d+\s+0\s+([0-9a-f]{12})\s*$", replayed.out, re.M)
    assert sorted(rows) == sorted(digest for _, digest in books.values()), "the same books, live"
    assert recording_info(directory).meta["targets"] == ["--all (filters: none)"]


def test_a_recorder_killed_outright_leaves_a_recording_that_replays_to_live_books(
    exchange: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[4]
    process = polyfeed_process("record", market.slug, "--out", str(directory), *exchange.venue_args())
    try:
        segment = directory / "seg-000001.pfr.zst"
        sizes: set[int] = set()
        deadline = time.monotonic() + BOUND_S
        while len(sizes - {0}) < 3:  # the first flush, then two more a second apart: books and changes
            assert time.monotonic() < deadline and process.poll() is None, "the recorder wrote nothing"
            if segment.exists():
                sizes.add(segment.stat().st_size)
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (directory / "index.jsonl").read_bytes(), "no segment was closed: the kill came first"
    records = list(read_recording(directory))
    assert records and records == sorted(records, key=lambda r: r.recv_ns)
    assert sum(r.channel == Channel.MARKET for r in records) == len(records)
    info = recording_info(directory)
    assert info.records == len(records) and info.segments == 1
    replayed = polyfeed(capsys, "replay", str(directory))  # what the kill left is a consistent prefix
    assert replayed.code == 0, replayed.err
    assert digests(replayed.out).keys() == {f"{market.slug} · Yes", f"{market.slug} · No"}
    statuses = re.findall(rf"^{market.slug} · (?:Yes|No)\s+(\w+)\s", replayed.out, re.M)
    assert statuses == ["live", "live"] and all(f == "0" for f, _ in digests(replayed.out).values())


def test_ctrl_c_closes_the_recording_and_prints_the_books(exchange: Exchange, tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[0]
    process = polyfeed_process("record", market.slug, "--out", str(directory), *exchange.venue_args())
    try:
        segment = directory / "seg-000001.pfr.zst"
        deadline = time.monotonic() + BOUND_S
        while not segment.exists() or not segment.stat().st_size:
            assert time.monotonic() < deadline and process.poll() is None, "the recorder wrote nothing"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert set(digests(out.decode())) == {f"{market.slug} · Yes", f"{market.slug} · No"}
    index = (directory / "index.jsonl").read_bytes().splitlines()
    assert len(index) == 1, "the segment was closed and indexed"
    assert recording_info(directory).truncated_segments == 0


LIMIT_BYTES = 8 * 1024  # the first frames fit (the metadata marker, a second of data), more do not
FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from polyfeed.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_full_disk_ends_the_recording_at_once_in_one_line(
    exchange: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file size limit makes the segment's write fail with a real OSError, as a full disk does: the
    command ends at once (long before --seconds), says so in one line, and what it wrote reads back."""
    directory = tmp_path / "rec"
    slugs = [m.slug for m in exchange.sim.exchange.markets[4:6]]
    args = ["record", *slugs, "--seconds", "600", "--out", str(directory), *exchange.venue_args()]
    process = subprocess.Popen(
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(LIMIT_BYTES), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
    )
    try:
        out, err = process.communicate(timeout=BOUND_S)  # it ends on its own, 600 s early
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1 and not out, err.decode()
    assert "Traceback" not in err.decode()
    # One line says what happened (and a line of counts every 10 s, should the machine be that slow).
    (line,) = [x for x in err.decode().splitlines() if not x.startswith("polyfeed record: recording to ")]
    segment = directory / "seg-000001.pfr.zst"
    said = re.fullmatch(
        rf"polyfeed record: cannot write {re.escape(str(segment))}: \[Errno 27\] File too large; the "
        r"recording holds ([\d,]+) records up to (\S+)",
        line,
    )
    assert said, line
    records = list(read_recording(directory, on_damage=pytest.fail))
    assert len(records) == int(said[1].replace(",", "")) > 0
    last = dt.datetime.fromtimestamp(max(r.recv_ns for r in records) / 1e9, dt.UTC)
    assert said[2] == last.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert segment.stat().st_size <= LIMIT_BYTES
    assert [entry["name"] for entry in index_lines(directory)] == [segment.name], "closed and indexed"
    verified = polyfeed(capsys, "verify", str(directory))
    assert verified.code == 0, verified.out
    replayed = polyfeed(capsys, "replay", str(directory))
    assert replayed.code == 0 and f"replayed {len(records):,} records" in replayed.out


def test_the_user_channel_is_recorded_without_its_secrets(
    exchange: Exchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLYMARKET_API_KEY", SIM_CREDENTIALS.api_key)
    monkeypatch.setenv("POLYMARKET_API_SECRET", SIM_CREDENTIALS.secret)
    monkeypatch.setenv("POLYMARKET_API_PASSPHRASE", SIM_CREDENTIALS.passphrase)
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[1]
    args = ["record", market.slug, "--user", "--seconds", "2", "--out", str(directory)]
    result = polyfeed(capsys, *args, *exchange.venue_args(), "--user-ws-url", exchange.sim.user_url)
    assert result.code == 0, result.err
    assert "user channel recorded" in result.out
    records = list(read_recording(directory))
    user = [r for r in records if r.channel == Channel.USER]
    assert user, "nothing of the user channel was recorded"
    everything = b"".join(r.payload for r in records) + b"".join(p.read_bytes() for p in directory.iterdir())
    for secret in (SIM_CREDENTIALS.api_key, SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase):
        assert secret.encode() not in everything
    for secret in (SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase):
        assert secret not in result.out + result.err


def test_the_user_streams_metrics_are_served_and_healthz_counts_its_connection(tmp_path: Path) -> None:
    """``record --user --metrics-port``: /healthz waits for the user connection too, and /metrics shows
    the user stream's orders open and trades by status as the exchange's account holds them (its flow
    paused, so that both hold still)."""
    with exchange_in_thread(markets=3, seed=4) as exchange:
        sim = exchange.sim
        env = subprocess_env(
            POLYMARKET_API_KEY=SIM_CREDENTIALS.api_key,
            POLYMARKET_API_SECRET=SIM_CREDENTIALS.secret,
            POLYMARKET_API_PASSPHRASE=SIM_CREDENTIALS.passphrase,
        )
        argv = ["record", sim.exchange.markets[0].slug, "--user", "--out", str(tmp_path / "rec")]
        venue = [*exchange.venue_args(), "--user-ws-url", sim.user_url]
        process = polyfeed_process(*argv, "--metrics-port", "0", *venue, env=env, stdout=subprocess.DEVNULL)
        try:
            url = served_url(process)
            deadline = time.monotonic() + BOUND_S
            while (health := http_get(url + "/healthz"))[0] != 200:
                assert time.monotonic() < deadline and process.poll() is None, ("never healthy", health)
                time.sleep(0.1)
            assert json.loads(health[1])["connections_up"] == {"market": 1, "user": 1}, health[1]

            async def pause_once_an_order_is_open() -> tuple[int, dict[str, int]] | None:
                account = sim.exchange.account
                if not account.open_orders():
                    return None
                sim.pause()  # on the exchange's loop: nothing moves from here on
                trades: dict[str, int] = {}
                for trade in account.trades.values():
                    trades[trade.status] = trades.get(trade.status, 0) + 1
                return len(account.open_orders()), trades

            while (held := exchange.call(pause_once_an_order_is_open())) is None:
                assert time.monotonic() < deadline, "the exchange's account never placed an order"
                time.sleep(0.1)
            orders_open, trades = held
            while True:  # the user stream catches up with what the exchange sent before the pause
                status, text = http_get(url + "/metrics")
                assert status == 200
                samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
                seen_open = [s.value for s in samples if s.name == "polyfeed_user_orders_open"]
                seen_trades = {
                    s.labels["status"]: int(s.value) for s in samples if s.name == "polyfeed_user_trades"
                }
                if seen_open == [orders_open] and seen_trades == trades:
                    break
                assert time.monotonic() < deadline, (orders_open, trades, seen_open, seen_trades)
                time.sleep(0.1)
            assert orders_open >= 1
            reconciliations = [s for s in samples if s.name == "polyfeed_user_reconciliations_total"]
            assert [(s.labels, s.value) for s in reconciliations] == [({"stream": "user"}, 1.0)]
            up = {s.labels["channel"]: s.value for s in samples if s.name == "polyfeed_connection_up"}
            assert up == {"market": 1, "user": 1}
            recordings = [s for s in samples if s.name == "polyfeed_recording_records_total"]
            assert len(recordings) == 1, "one recording, however many streams write to it"
            for secret in (SIM_CREDENTIALS.api_key, SIM_CREDENTIALS.secret, SIM_CREDENTIALS.passphrase):
                assert secret not in text + health[1]
        finally:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=BOUND_S)
        assert process.returncode == 0, err.decode()


def test_user_without_credentials_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("POLYMARKET_API_KEY", "POLYMARKET_API_SECRET", "POLYMARKET_API_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    result = polyfeed(capsys, "record", "sim-market-0", "--user", "--out", str(tmp_path / "rec"))
    line = assert_one_line_failure(result, "record")
    assert result.code == 2 and "POLYMARKET_API_KEY is not set" in line
    assert not (tmp_path / "rec").exists()


def test_user_with_another_market_channel_needs_its_user_channel_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user channel's URL was made from --ws-url's by string surgery; it is asked for instead."""
    args = ["record", "sim-market-0", "--user", "--ws-url", "ws://127.0.0.1:1/ws/market"]
    result = polyfeed(capsys, *args, "--out", str(tmp_path / "rec"))
    line = assert_one_line_failure(result, "record")
    assert result.code == 2 and "--user with --ws-url needs --user-ws-url" in line
    assert not (tmp_path / "rec").exists()


def test_a_directory_holding_a_recording_is_refused(
    exchange: Exchange, recording: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted((p.name, p.stat().st_size) for p in recording.directory.iterdir())
    args = ["record", recording.slugs[0], "--seconds", "1", "--out", str(recording.directory)]
    result = polyfeed(capsys, *args, *exchange.venue_args())
    line = assert_one_line_failure(result, "record")
    assert result.code == 1 and str(recording.directory) in line
    assert sorted((p.name, p.stat().st_size) for p in recording.directory.iterdir()) == before


def test_an_unreachable_venue_is_one_line_and_no_recording(
    closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{closed_port}"
    venue = venue_args_at(closed)
    result = polyfeed(capsys, "record", "1234567890", "--out", str(tmp_path / "rec"), *venue)
    line = assert_one_line_failure(result, "record")
    assert result.code == 1 and f"cannot reach {closed}: connection refused" in line
    assert not (tmp_path / "rec").exists(), "an empty recording would refuse the same command run again"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sim-market-0"], "Missing option '--out'"),
        (["--out", "x"], "give markets to follow (slugs, URLs, token ids), or --all"),
        (["sim-market-0", "--all", "--out", "x"], "--all follows every market: give no markets with it"),
        (["sim-market-0", "--tag", "3", "--out", "x"], "need --all"),
        (["--all", "--ends-before", "soon", "--out", "x"], "--ends-before 'soon' is not an ISO date"),
        (["sim-market-0", "--out", "x", "--rotate-mb", "0"], "--rotate-mb"),
        (["sim-market-0", "--out", "x", "--seconds", "-1"], "--seconds"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "record", *args)
    line = assert_one_line_failure(result, "record")
    assert result.code == 2 and says in line


def test_rejected_credentials_end_the_recording_with_one_line_and_exit_1(
    exchange: Exchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13, item 6: it exited 0 saying "user channel recorded", with no user data in the recording."""
    monkeypatch.setenv("POLYMARKET_API_KEY", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("POLYMARKET_API_SECRET", SIM_CREDENTIALS.secret)
    monkeypatch.setenv("POLYMARKET_API_PASSPHRASE", "not-the-passphrase")
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[1]
    args = ["record", market.slug, "--user", "--seconds", "600", "--out", str(directory)]
    result = polyfeed(capsys, *args, *exchange.venue_args(), "--user-ws-url", exchange.sim.user_url)
    assert result.code == 1, result.err
    line = assert_one_line_failure(result, "record")
    assert "refused" in line or "credentials" in line, line
    assert "user channel recorded" not in result.out
    assert "not-the-passphrase" not in result.err and SIM_CREDENTIALS.secret not in result.err
    assert recording_info(directory).records > 0, "what was recorded until then is kept, closed"


def test_a_websocket_url_the_venue_rejects_ends_the_recording_naming_it(
    exchange: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = exchange.sim.ws_url + "/ws/nothing"
    market = exchange.sim.exchange.markets[1]
    args = ["record", market.slug, "--seconds", "600", "--out", str(tmp_path / "rec")]
    result = polyfeed(capsys, *args, *exchange.venue_args(ws_url=wrong))
    assert result.code == 1, result.err
    line = assert_one_line_failure(result, "record")
    assert line.endswith(f"{wrong}: the WebSocket handshake was answered HTTP 404 Not Found"), line
