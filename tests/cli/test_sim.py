"""``polyfeed sim``: the local exchange on a port, until Ctrl-C; a taken port is one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.harness import BOUND_S, assert_one_line_failure, http_get, polyfeed, polyfeed_process


@contextlib.contextmanager
def running_sim(*args: str) -> Iterator[list[str]]:
    """``polyfeed sim ARGS`` as a subprocess, yielded with its banner's lines once it says "Ctrl-C to
    stop"; stopped with Ctrl-C after, which must end it with exit 0 and nothing on stderr."""
    process = polyfeed_process("sim", *args)
    assert process.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "Ctrl-C to stop":
            line = process.stdout.readline().decode()
            assert line, f"sim ended early: {lines}"
            lines.append(line.rstrip("\n"))
        yield lines
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert err == b"", err.decode()


def test_sim_serves_until_ctrl_c_and_says_where() -> None:
    with running_sim("--port", "0", "--markets", "3", "--seed", "4") as lines:
        found = re.search(r"market channel\s+(ws://127\.0\.0\.1:(\d+))/ws/market", "\n".join(lines))
        assert found is not None, lines
        token = re.search(r"YES (\d+)", "\n".join(lines))
        assert token is not None
        rest = f"http://127.0.0.1:{found.group(2)}"
        with urllib.request.urlopen(f"{rest}/book?token_id={token.group(1)}", timeout=BOUND_S) as response:
            book = json.loads(response.read())
        assert book["asset_id"] == token.group(1) and book["bids"]


def gamma_slugs(rest: str) -> set[str]:
    with urllib.request.urlopen(f"{rest}/markets?limit=500", timeout=BOUND_S) as response:
        return {m["slug"] for m in json.loads(response.read())}


def test_markets_past_the_documented_ones_resolve_after_their_lifetime_and_are_replaced() -> None:
    with running_sim("--port", "0", "--markets", "22", "--lifetime", "0.5") as lines:
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


def test_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = polyfeed(capsys, "sim", "--port", str(port))
    line = assert_one_line_failure(result, "sim")
    assert result.code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in line


def _samples(metrics_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = http_get(metrics_url + "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_sim_serves_its_own_metrics_and_health_and_a_client_moves_them() -> None:
    with running_sim("--port", "0", "--markets", "2", "--metrics-port", "0") as lines:
        text = "\n".join(lines)
        exchange = re.search(r"market channel\s+(ws://127\.0\.0\.1:\d+)/ws/market", text)
        served = re.search(r"metrics\s+(http://127\.0\.0\.1:\d+)/metrics, health at \1/healthz", text)
        assert exchange is not None and served is not None, text
        metrics = served.group(1)
        status, body = http_get(metrics + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        before = _samples(metrics)
        market = (("channel", "market"),)  # the labels of a market-channel sample
        assert before["polyfeed_sim_connections_open", market] == 0
        assert before["polyfeed_sim_frames_sent_total", market] == 0
        assert before["polyfeed_sim_markets_open", ()] == 2
        tokens = re.findall(r"(?:YES|NO)\s+(\d+)", text)

        async def client() -> tuple[int, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
            received = 0
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(exchange.group(1) + "/ws/market") as ws,
            ):
                await ws.send_str(json.dumps({"type": "market", "assets_ids": tokens}))
                while received < 10:
                    assert (await ws.receive()).type is aiohttp.WSMsgType.TEXT
                    received += 1
                during = await asyncio.to_thread(_samples, metrics)  # the connection still open
            return received, during

        received, during = asyncio.run(asyncio.wait_for(client(), BOUND_S))
        assert during["polyfeed_sim_connections_open", market] == 1
        assert during["polyfeed_sim_connections_total", market] == 1
        assert during["polyfeed_sim_subscribed_assets", ()] == len(tokens) == 4
        assert during["polyfeed_sim_frames_sent_total", market] >= received
        deadline = time.monotonic() + BOUND_S
        while (after := _samples(metrics))["polyfeed_sim_connections_open", market] != 0:
            assert time.monotonic() < deadline, "the client's connection never counted closed"
            time.sleep(0.05)
        assert after["polyfeed_sim_connections_total", market] == 1
        assert (
            after["polyfeed_sim_frames_sent_total", market]
            >= during["polyfeed_sim_frames_sent_total", market]
        )
        assert after["polyfeed_sim_flow_events_total", ()] > before["polyfeed_sim_flow_events_total", ()]


def test_a_taken_metrics_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = polyfeed(capsys, "sim", "--port", "0", "--metrics-port", str(port))
    line = assert_one_line_failure(result, "sim")
    assert result.code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in line
