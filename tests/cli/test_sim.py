"""``polyfeed sim``: the local exchange on a port, until Ctrl-C; a taken port is one line."""

from __future__ import annotations

import json
import re
import signal
import socket
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


def test_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = polyfeed(capsys, "sim", "--port", str(port))
    line = assert_one_line_failure(result, "sim")
    assert result.code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in line
