"""How a command fails or ends: one line for what a person can act on, a quiet end on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import typer

from polyfeed.cli.errors import CommandError, describe, run_command
from polyfeed.errors import SubscriptionError, VenueError, VenueUnreachableError
from polyfeed.net.gamma import lookup
from polyfeed.record import recording_info
from tests.cli.harness import BOUND_S, Exchange, default_signals, polyfeed_process


def test_a_refused_connection_says_which_address_and_why(closed_port: int) -> None:
    async def connect() -> None:
        async with aiohttp.ClientSession() as http:
            await lookup(http, f"http://127.0.0.1:{closed_port}", "sim-market-0")

    with pytest.raises(VenueUnreachableError) as caught:
        asyncio.run(connect())
    assert describe(caught.value) == f"cannot reach 127.0.0.1:{closed_port}: connection refused"
    https = VenueUnreachableError("https://gamma-api.polymarket.com/markets", "no answer within 30 s")
    assert describe(https) == "cannot reach gamma-api.polymarket.com:443: no answer within 30 s"


def test_an_error_answer_is_the_url_and_its_status() -> None:
    error = VenueError("http://127.0.0.1:8765/books", "answered HTTP 503 Service Unavailable", 503)
    assert describe(error) == "http://127.0.0.1:8765/books: answered HTTP 503 Service Unavailable"


def test_a_polyfeed_error_is_its_message_on_one_line() -> None:
    assert describe(SubscriptionError("no slug in\n'https://polymarket.com/'")) == (
        "no slug in 'https://polymarket.com/'"
    )


def test_run_command_prints_one_line_and_exits_with_the_errors_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def failing() -> None:
        raise CommandError("Gamma knows no market or event 'x'", exit_code=3)

    with pytest.raises(typer.Exit) as exit_info:
        run_command("markets", failing())
    assert exit_info.value.exit_code == 3
    assert capsys.readouterr().err == "polyfeed markets: Gamma knows no market or event 'x'\n"


@pytest.fixture
def ctrl_c_as_at_a_terminal() -> Iterator[None]:
    """Python's own SIGINT handler, whatever this process inherited (a suite started in the background
    by a script has SIGINT ignored, and asyncio then leaves Ctrl-C alone)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_as_at_a_terminal")
def test_ctrl_c_cancels_the_command_so_it_cleans_up_then_ends_quietly() -> None:
    cleaned_up = []

    async def interrupted() -> str:
        try:
            await asyncio.sleep(0.01)
            signal.raise_signal(signal.SIGINT)  # what a Ctrl-C at the terminal does
            await asyncio.sleep(60)
        finally:
            cleaned_up.append(True)
        return "not reached"

    assert run_command("watch", interrupted()) is None
    assert cleaned_up == [True]


def test_a_bug_keeps_its_traceback() -> None:
    async def buggy() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_command("watch", buggy())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_command_as_ctrl_c_does(signum: int) -> None:
    cleaned_up = []

    async def stopped() -> str:
        try:
            await asyncio.sleep(0.01)
            signal.raise_signal(signum)  # systemd's stop, docker stop, timeout; a closed terminal
            await asyncio.sleep(60)
        finally:
            cleaned_up.append(True)
        return "not reached"

    before = signal.signal(signum, signal.SIG_DFL)  # as at a terminal (nohup would have SIGHUP ignored)
    try:
        assert run_command("record", stopped()) is None
        assert cleaned_up == [True]
        assert signal.getsignal(signum) is signal.SIG_DFL, "the handler is the process's own again"
    finally:
        signal.signal(signum, before)


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert process.poll() is None, f"ended before {what}: {process.communicate()[1].decode()}"
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_recorder_stopped_by_a_signal_closes_indexes_and_summarises(
    signum: int, exchange: Exchange, tmp_path: Path
) -> None:
    """Issue 13, item 7: SIGTERM did what SIGKILL does (no summary, an empty index, data lost)."""
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[0]
    process = polyfeed_process("record", market.slug, "--out", str(directory), *exchange.venue_args())
    try:
        segment = directory / "seg-000001.pfr.zst"
        _wait_for(lambda: segment.exists() and segment.stat().st_size > 0, process, "a flushed segment")
        process.send_signal(signum)
        out, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert out.decode().startswith("recorded "), out.decode()
    assert f"{market.slug} · Yes" in out.decode()
    assert len((directory / "index.jsonl").read_bytes().splitlines()) == 1, "closed and indexed"
    assert recording_info(directory).truncated_segments == 0


@pytest.mark.parametrize("command", ["demo", "watch", "stream", "sim"])
def test_every_long_running_command_ends_cleanly_on_sigterm(command: str, exchange: Exchange) -> None:
    market = exchange.sim.exchange.markets[0]
    argv = {
        "demo": ["demo", "--seconds", "600"],
        "watch": ["watch", market.slug, "--seconds", "600", *exchange.venue_args()],
        "stream": ["stream", market.slug, "--format", "jsonl", *exchange.venue_args()],
        "sim": ["sim", "--port", "0"],
    }[command]
    process = polyfeed_process(*argv)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # it is up and printing
        assert first, process.communicate()[1].decode()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()


@pytest.mark.parametrize("command", ["demo", "watch", "stream", "record", "replay"])
def test_a_reader_that_leaves_early_ends_the_command_quietly(
    command: str, exchange: Exchange, tmp_path: Path
) -> None:
    """``polyfeed demo | head -1`` exited 1 with a BrokenPipeError."""
    market = exchange.sim.exchange.markets[0]
    recording = tmp_path / "rec"
    if command == "replay":
        made = polyfeed_process(
            "record", market.slug, "--out", str(recording), "--seconds", "2", *exchange.venue_args()
        )
        _, err = made.communicate(timeout=BOUND_S)
        assert made.returncode == 0, err.decode()
    argv = {
        "demo": ["demo", "--seconds", "600"],
        "watch": ["watch", market.slug, "--seconds", "600", *exchange.venue_args()],
        "stream": ["stream", market.slug, "--format", "jsonl", *exchange.venue_args()],
        "record": ["record", market.slug, "--out", str(recording), "--seconds", "2", *exchange.venue_args()],
        "replay": ["replay", str(recording), "--view", "jsonl"],
    }[command]
    process = polyfeed_process(*argv)
    try:
        assert process.stdout is not None
        assert process.stdout.readline(), "printed nothing"
        process.stdout.close()  # as head does once it has its line
        _, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def started_in_the_background() -> None:
    default_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_recorder_started_with_sigint_ignored_still_stops_in_order_on_sigterm(
    exchange: Exchange, tmp_path: Path
) -> None:
    """A recorder started in the background by a script (``polyfeed record ... &``) has SIGINT ignored;
    SIGTERM stopped it only through Ctrl-C's handler, which is then not there."""
    directory = tmp_path / "rec"
    market = exchange.sim.exchange.markets[0]
    process = polyfeed_process(
        "record",
        market.slug,
        "--out",
        str(directory),
        *exchange.venue_args(),
        preexec_fn=started_in_the_background,
    )
    try:
        segment = directory / "seg-000001.pfr.zst"
        _wait_for(lambda: segment.exists() and segment.stat().st_size > 0, process, "a flushed segment")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("recorded "), out.decode()
    assert len((directory / "index.jsonl").read_bytes().splitlines()) == 1, "closed and indexed"


def test_a_signal_the_process_was_started_ignoring_stays_ignored() -> None:
    """``nohup polyfeed record ...`` ignores SIGHUP: a closed terminal must not stop the recorder."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:

        async def hung_up() -> str:
            signal.raise_signal(signal.SIGHUP)
            await asyncio.sleep(0.05)  # the loop turns: a cancellation would land here
            return "went on"

        assert run_command("record", hung_up()) == "went on"
    finally:
        signal.signal(signal.SIGHUP, before)
