"""``--log-format json``: one JSON object a line, naming the connection, channel and asset."""

from __future__ import annotations

import datetime
import json
import logging
import subprocess

from polyfeed.cli import _global_options_first
from polyfeed.cli.logs import JsonFormatter
from tests.cli.harness import BOUND_S, Exchange, polyfeed_process, venue_args_at


def _line(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("polyfeed.net.connection", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_a_line_names_its_connection_channel_and_asset() -> None:
    line = _line("connection %d: resync of %s failed: %s", 3, "7667", "timeout")
    assert line["message"] == "connection 3: resync of 7667 failed: timeout"
    assert (line["connection"], line["channel"], line["asset"]) == (3, "market", "7667")
    assert line["level"] == "WARNING" and line["logger"] == "polyfeed.net.connection"
    when = datetime.datetime.fromisoformat(str(line["time"]))
    assert when.tzinfo is not None and when.utcoffset() == datetime.timedelta(0)
    assert _line("connection %d: book %s could not take a message: %s", 1, "42", "x")["asset"] == "42"
    user = _line("user connection %d: %s", 2, "credentials refused")
    assert (user["connection"], user["channel"]) == (2, "user") and "asset" not in user
    plain = _line("market %s opened: following its %d tokens", "0xabc", 2)
    assert "connection" not in plain and "asset" not in plain
    assert _line("recording failed", asset="9", connection=4)["asset"] == "9", "extra= is taken as said"


def test_global_options_may_follow_the_command() -> None:
    assert _global_options_first(["watch", "x", "--log-format", "json", "-v"]) == [
        "--log-format",
        "json",
        "-v",
        "watch",
        "x",
    ]
    assert _global_options_first(["stream", "--log-format=json", "y"]) == ["--log-format=json", "stream", "y"]
    assert _global_options_first(["stream", "y", "--", "--log-format", "json"]) == [
        "stream",
        "y",
        "--",
        "--log-format",
        "json",
    ]


def test_a_command_logs_json_lines_on_stderr(exchange: Exchange, closed_port: int) -> None:
    """A market channel that refuses connections: each retry is a JSON line naming connection 1."""
    argv = ["stream", exchange.sim.exchange.markets[0].yes, "--timeout", "2", "-v", "--log-format", "json"]
    venue = venue_args_at(f"127.0.0.1:{closed_port}")
    venue[venue.index("--rest-url") + 1] = exchange.rest_url
    venue[venue.index("--gamma-url") + 1] = exchange.rest_url
    process = polyfeed_process(*argv, *venue, stdout=subprocess.DEVNULL)
    _, err = process.communicate(timeout=BOUND_S)
    assert process.returncode == 1
    lines = err.decode().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged, err
    retries = [line for line in logged if "connect failed" in str(line["message"])]
    assert retries and all(line["connection"] == 1 and line["channel"] == "market" for line in retries)
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in logged)
    assert lines[-1].startswith("polyfeed stream:"), "the command's own failure stays one plain line"
