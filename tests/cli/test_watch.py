"""``polyfeed watch`` against the local exchange: plain frames when piped, one line when the venue is
not there, a clean end on Ctrl-C, a resolved market shown as resolved, and in a real terminal (tmux)
``-v``'s log lines kept below the books instead of drawn through them; ``--all``'s busiest books, its
universe counted by status, and its cached Gamma listing; ``--nats``'s books from a running collector."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from rich.cells import cell_len

from polyfeed.cli.terminal import abbreviate
from polyfeed.cli.view import panels_that_fit
from polyfeed.net.gamma import GammaMarket, MarketFilter, active_markets
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.sim import Simulator
from tests.cli.harness import (
    BOUND_S,
    Exchange,
    assert_one_line_failure,
    collector_process,
    exchange_in_thread,
    polyfeed,
    polyfeed_process,
    venue_args_at,
)
from tests.cli.tmux import EXIT_MARK, Tmux, tmux_server
from tests.natsserver import NatsServer


def test_watch_prints_live_books_by_market_and_a_summary(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    market = exchange.sim.exchange.markets[1]
    result = polyfeed(capsys, "watch", market.slug, "--seconds", "2.5", *exchange.venue_args())
    assert result.code == 0, result.err
    assert f"{market.slug} · Yes" in result.out and f"{market.slug} · No" in result.out
    assert "LIVE" in result.out
    assert "^C quits" not in result.out, "no keyboard hint in plain output"
    summary = result.out.splitlines()[-2:]
    assert summary[0].startswith("2 books for ") and summary[1].endswith(" passed, 0 failed")


def test_token_ids_are_named_from_gamma(exchange: Exchange, capsys: pytest.CaptureFixture[str]) -> None:
    market = exchange.sim.exchange.markets[2]
    result = polyfeed(capsys, "watch", market.no, "--seconds", "1", "--depth", "2", *exchange.venue_args())
    assert result.code == 0, result.err
    assert f"{market.slug} · No" in result.out


def test_an_unreachable_venue_is_one_line_and_exit_1(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{closed_port}"
    venue = venue_args_at(closed)
    for target in ("sim-market-0", "1234567890"):
        result = polyfeed(capsys, "watch", target, *venue)
        line = assert_one_line_failure(result, "watch")
        assert result.code == 1 and f"cannot reach {closed}: connection refused" in line


def test_no_market_data_within_the_timeout_is_one_line_and_exit_1(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    """The venue ignores unknown token ids silently (spec 1.3): the view would wait for ever."""
    result = polyfeed(capsys, "watch", "1234567890", "--timeout", "0.5", *exchange.venue_args())
    line = assert_one_line_failure(result, "watch")
    assert result.code == 1 and f"no market data from {exchange.ws_url} within 0.5 s" in line


def test_a_market_channel_that_refuses_connections_is_one_line_naming_it(
    exchange: Exchange, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """REST and Gamma answer, the market channel refuses: said after its tries, even with no timeout."""
    ws_url = f"ws://127.0.0.1:{closed_port}/ws/market"
    args = exchange.venue_args(ws_url=ws_url)
    result = polyfeed(capsys, "watch", "sim-market-0", "--timeout", "0", *args)
    line = assert_one_line_failure(result, "watch")
    assert result.code == 1 and f"{ws_url}: connection refused" in line and "never connected" in line


def test_ctrl_c_ends_watch_with_exit_0_a_summary_and_no_traceback(exchange: Exchange) -> None:
    process = polyfeed_process("watch", "sim-market-3", *exchange.venue_args())
    assert process.stdout is not None and process.stderr is not None
    try:
        seen = b""
        deadline = time.monotonic() + BOUND_S
        while b"LIVE" not in seen:  # plain frames every two seconds once the books are there
            assert time.monotonic() < deadline and process.poll() is None, seen.decode()
            if select.select([process.stdout], [], [], 0.5)[0]:
                seen += os.read(process.stdout.fileno(), 65536)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert b"Traceback" not in err and err == b"", err.decode()
    assert (seen + out).decode().splitlines()[-2].startswith("2 books for ")


def read_until(process: subprocess.Popen[bytes], seen: bytes, wanted: bytes) -> bytes:
    """Read the process's stdout until ``wanted`` appears in what comes after ``seen``; all of it."""
    assert process.stdout is not None
    deadline = time.monotonic() + BOUND_S
    start = len(seen)
    while wanted not in seen[start:]:
        assert time.monotonic() < deadline and process.poll() is None, seen.decode()
        if select.select([process.stdout], [], [], 0.5)[0]:
            seen += os.read(process.stdout.fileno(), 65536)
    return seen


def test_a_market_that_resolves_is_shown_resolved_with_its_winner() -> None:
    with exchange_in_thread(markets=3) as own:
        market = own.sim.exchange.markets[1]
        process = polyfeed_process("watch", market.slug, *own.venue_args())
        try:
            seen = read_until(process, b"", b"LIVE")

            async def resolve(sim: Simulator) -> None:
                sim.resolve_market(1)

            own.call(resolve(own.sim))
            seen = read_until(process, seen, b"RESOLVED")
            seen = read_until(process, seen, b"\npolyfeed ")  # the next frame, whole
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=BOUND_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0
    text = (seen + out).decode()
    frame = text[text.rindex("\npolyfeed ") : text.rindex("\n2 books for")]
    assert frame.count("RESOLVED") == 2 and "LIVE" not in frame, "both tokens' books, not live and ageing"
    winner = "Yes" if market.yes_wins else "No"
    assert frame.count(f"{winner} won") == 2


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    with tmux_server() as server:
        yield server


def test_with_v_log_lines_go_below_the_books_and_to_stderr_when_the_screen_closes(
    exchange: Exchange, tmux: Tmux
) -> None:
    tmux.start("-v", "watch", "sim-market-2", *exchange.venue_args())
    tmux.wait_for(lambda s: "LIVE" in s and "╰" in s, "the live books")
    for _ in range(2):  # frames that do not decode: a warning each, while the screen is up
        exchange.call(exchange.sim.inject({"kind": "malformed"}))
    screen = tmux.wait_for(lambda s: s.count("skipped a frame") == 2, "the two warnings")
    lines = screen.rstrip("\n").splitlines()
    assert len([line for line in lines if line.startswith("polyfeed ")]) == 1, screen
    last_border = max(i for i, line in enumerate(lines) if line.startswith("╰"))
    logged = [i for i, line in enumerate(lines) if "skipped a frame" in line]
    assert min(logged) > last_border, f"below the books, not between their borders:\n{screen}"
    assert all(lines[i].startswith("WARNING connection") for i in logged), "the log prefix shortened"
    assert not re.search(r"\d{20,}", screen), "no token id on the screen"
    tmux.keys("C-c")
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "watch end on Ctrl-C", history=True)
    assert f"{EXIT_MARK}0" in final
    assert final.count("polyfeed: WARNING polyfeed.session: connection 1: skipped a frame") == 2, final


# -- watch --all: every market followed, the busiest shown --------------------------------------------


def last_frame(out: str, books: int) -> str:
    return out[out.rindex("\npolyfeed top ") : out.rindex(f"\n{books} books for")]


def panel_updates(frame: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"─ ([\d,]+) upd/10s · ", frame)]


def test_all_shows_the_busiest_books_and_counts_every_book_by_status(
    exchange: Exchange, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYFEED_CACHE_DIR", str(tmp_path / "cache"))
    books = len(exchange.sim.exchange.asset_ids())
    result = polyfeed(capsys, "watch", "--all", "--top", "3", "--seconds", "3", *exchange.venue_args())
    assert result.code == 0, result.err
    frame = last_frame(result.out, books)
    lines = frame.strip("\n").splitlines()
    assert lines[0].startswith("polyfeed top 3  ")
    counted = re.fullmatch(
        rf"all {books} books: (\d+) live (\d+) syncing (\d+) suspect (\d+) stale (\d+) closed", lines[1]
    )
    assert counted is not None, lines[1]
    assert sum(int(n) for n in counted.groups()) == books, "every book of the universe, in one status each"
    assert sum(line.count("╭") for line in lines) == 3, "only the three busiest drawn"
    updates = panel_updates(frame)
    assert len(updates) == 3 and updates == sorted(updates, reverse=True), "busiest first"
    slugs = {m.slug for m in exchange.sim.exchange.markets}
    titles = re.findall(r"╭─ (\S+) · (Yes|No) ", frame)
    assert len(titles) == 3 and all(slug in slugs for slug, _ in titles), "named as Gamma names them"
    assert result.out.splitlines()[-2].startswith(f"{books} books for ")
    first_rate = re.search(r"^polyfeed top 3  ([\d,]+) msg/s", result.out, re.M)
    assert first_rate is not None and first_rate.group(1) != "0", "the first plain frame has a rate"
    assert list((tmp_path / "cache").glob("gamma-markets-*.json")), "Gamma's listing cached for a restart"


def test_all_subscribes_from_a_young_cached_listing_when_gamma_is_down(
    exchange: Exchange,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLYFEED_CACHE_DIR", str(tmp_path))
    no_gamma = f"http://127.0.0.1:{closed_port}"

    async def listing() -> list[GammaMarket]:
        async with aiohttp.ClientSession() as http:
            return [m async for page in active_markets(http, exchange.rest_url) for m in page]

    GammaCache().store(no_gamma, MarketFilter(), asyncio.run(listing()))
    venue = ["--ws-url", exchange.ws_url, "--rest-url", exchange.rest_url, "--gamma-url", no_gamma]
    books = len(exchange.sim.exchange.asset_ids())
    result = polyfeed(capsys, "watch", "--all", "--top", "2", "--seconds", "3", "--timeout", "20", *venue)
    assert result.code == 0, result.err
    assert f"all {books} books: " in result.out and "LIVE" in last_frame(result.out, books)

    refused = polyfeed(capsys, "watch", "--all", "--no-cache", "--timeout", "1", *venue)
    line = assert_one_line_failure(refused, "watch")
    assert (
        refused.code == 1 and f"{no_gamma} (Gamma) or {exchange.rest_url} did not answer within 1 s" in line
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give markets to follow (slugs, URLs, token ids), or --all"),
        (["sim-market-0", "--all"], "--all follows every market: give no markets with it"),
        (["sim-market-0", "--top", "3"], "--top picks among every market: it needs --all"),
        (["sim-market-0", "--min-volume", "10"], "need --all"),
        (["--all", "--top", "0"], "--top"),
    ],
)
def test_bad_all_arguments_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "watch", *args)
    line = assert_one_line_failure(result, "watch")
    assert result.code == 2 and says in line


def test_all_in_a_terminal_shows_as_many_busiest_books_as_the_window_holds(
    exchange: Exchange, tmux: Tmux, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYFEED_CACHE_DIR", str(tmp_path))
    tmux.start("watch", "--all", *exchange.venue_args())
    books = len(exchange.sim.exchange.asset_ids())

    def panels(screen: str) -> int:
        return sum(line.count("╭") for line in screen.splitlines())

    fit = panels_that_fit(80, 23, header_rows=2)  # the last row is left free
    screen = tmux.wait_for(lambda s: f"all {books} books:" in s and panels(s) == fit, f"{fit} books")
    lines = screen.rstrip("\n").splitlines()
    assert lines[0].startswith(f"polyfeed top {fit}  ") and all(cell_len(line) <= 80 for line in lines)
    tmux.resize(120, 33)
    wider = panels_that_fit(120, 32, header_rows=2)
    assert wider > fit
    tmux.wait_for(lambda s: panels(s) == wider and f"polyfeed top {wider}  " in s, f"{wider} books, resized")
    tmux.keys("C-c")
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "watch --all ends on Ctrl-C", history=True)
    assert f"{EXIT_MARK}0" in final and f"{books} books for " in final


# -- watch --nats: the books of a fan-out ---------------------------------------------------------------


def test_watch_nats_shows_the_books_a_collector_publishes_live_and_checked(
    exchange: Exchange, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    market = exchange.sim.exchange.markets[4]
    url = nats_server.url
    with collector_process(exchange, url, market.slug):
        given = polyfeed(capsys, "watch", "--nats", url, market.yes, market.no, "--seconds", "2.5")
        every = polyfeed(capsys, "watch", "--nats", url, "--all", "--top", "1", "--seconds", "2.5")
    assert given.code == 0, given.err
    frame = given.out[given.out.rindex("\npolyfeed ") : given.out.rindex("\n2 books for")]
    assert abbreviate(market.yes) in frame and abbreviate(market.no) in frame, "with their token ids"
    assert frame.count(market.slug) == 2, "named as the collector published them (it followed the slug)"
    assert frame.count("LIVE") == 2
    assert given.out.splitlines()[-1].endswith(" passed, 0 failed"), "every hash checked here passed"
    assert every.code == 0, every.err
    frame = last_frame(every.out, 2)
    assert "all 2 books: 2 live 0 syncing 0 suspect 0 stale 0 closed" in frame, frame
    assert sum(line.count("╭") for line in frame.splitlines()) == 1, "the busiest book only"
    assert market.slug in frame, "named"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sim-market-0"], "'sim-market-0' is not a token id: with --nats give token ids"),
        (["--all", "--local"], "--local does not apply with --nats"),
        (["--all", "--tag", "21", "--ws-url", "ws://h:1"], "--ws-url, --tag do not apply with --nats"),
        (["123", "--top", "2"], "--top picks among every book: it needs --all"),
        ([], "give token ids to follow, or --all"),
    ],
)
def test_bad_nats_arguments_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("watch", "stream"):
        if "--top" in args and command == "stream":
            continue
        result = polyfeed(capsys, command, "--nats", "nats://127.0.0.1:4222", *args)
        line = assert_one_line_failure(result, command)
        assert result.code == 2 and says in line, line
