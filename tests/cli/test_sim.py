"""``polyfeed sim``: the local exchange on a port, until Ctrl-C; a taken port is one line."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.request

import pytest

from tests.cli.harness import BOUND_S, assert_one_line_failure, polyfeed, polyfeed_process


def test_sim_serves_until_ctrl_c_and_says_where() -> None:
    process = polyfeed_process("sim", "--port", "0", "--markets", "3", "--seed", "4")
    assert process.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "Ctrl-C to stop":
            line = process.stdout.readline().decode()
            assert line, f"sim ended early: {lines}"
            lines.append(line.rstrip("\n"))
        found = re.search(r"market channel\s+(ws://127\.0\.0\.1:(\d+))/ws/market", "\n".join(lines))
        assert found is not None, lines
        token = re.search(r"YES (\d+)", "\n".join(lines))
        assert token is not None
        rest = f"http://127.0.0.1:{found.group(2)}"
        with urllib.request.urlopen(f"{rest}/book?token_id={token.group(1)}", timeout=BOUND_S) as response:
            book = json.loads(response.read())
        assert book["asset_id"] == token.group(1) and book["bids"]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert err == b"", err.decode()


def gamma_slugs(rest: str) -> set[str]:
    with urllib.request.urlopen(f"{rest}/markets?limit=500", timeout=BOUND_S) as response:
        return {m["slug"] for m in json.loads(response.read())}


def test_markets_past_the_documented_ones_resolve_after_their_lifetime_and_are_replaced() -> None:
    process = polyfeed_process("sim", "--port", "0", "--markets", "22", "--lifetime", "0.5")
    assert process.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "Ctrl-C to stop":
            line = process.stdout.readline().decode()
            assert line, f"sim ended early: {lines}"
            lines.append(line.rstrip("\n"))
        assert "markets after sim-market-19 resolve after a median 0.5 s, each replaced by a new one" in lines
        found = re.search(r"market channel\s+ws://(127\.0\.0\.1:\d+)/ws/market", "\n".join(lines))
        assert found is not None, lines
        rest = f"http://{found.group(1)}"
        deadline = time.monotonic() + BOUND_S
        while "sim-market-20" in (slugs := gamma_slugs(rest)) or "sim-market-21" in slugs:
            assert time.monotonic() < deadline, f"sim-market-20 and -21 never resolved: {sorted(slugs)}"
            time.sleep(0.1)
        assert len(slugs) == 22, "each resolved market was replaced"
        assert {f"sim-market-{i}" for i in range(20)} <= slugs, "the documented slugs never resolve"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = polyfeed(capsys, "sim", "--port", str(port))
    line = assert_one_line_failure(result, "sim")
    assert result.code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in line
