"""``polyfeed watch`` against the local exchange: plain frames when piped, one line when the venue is
not there, a clean end on Ctrl-C."""

from __future__ import annotations

import os
import select
import signal
import time

import pytest

from tests.cli.harness import (
    BOUND_S,
    Exchange,
    assert_one_line_failure,
    polyfeed,
    polyfeed_process,
    venue_args_at,
)


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
    exchange: Exchange, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """REST and Gamma answer, the market channel does not: the view would wait for ever without it."""
    ws_url = f"ws://127.0.0.1:{closed_port}/ws/market"
    args = exchange.venue_args(ws_url=ws_url)
    result = polyfeed(capsys, "watch", "sim-market-0", "--timeout", "0.5", *args)
    line = assert_one_line_failure(result, "watch")
    assert result.code == 1 and f"no market data from {ws_url} within 0.5 s" in line


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
