"""``--metrics-port``: the long-running commands serve /metrics and /healthz while they run."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.harness import (
    BOUND_S,
    Exchange,
    assert_one_line_failure,
    http_get,
    polyfeed,
    polyfeed_process,
    served_url,
)


@pytest.mark.parametrize("command", [["stream", "sim-market-0"], ["record", "sim-market-0", "--out"]])
def test_a_command_serves_metrics_and_health_while_it_runs(
    command: list[str], exchange: Exchange, tmp_path: object
) -> None:
    argv = [*command, str(tmp_path)] if command[-1] == "--out" else command
    process = polyfeed_process(
        *argv, "--metrics-port", "0", *exchange.venue_args(), stdout=subprocess.DEVNULL
    )
    try:
        url = served_url(process)
        deadline = time.monotonic() + BOUND_S
        while (health := http_get(url + "/healthz"))[0] != 200:  # 503 naming what is not live, until all is
            assert health[0] == 503 and "books_by_status" in json.loads(health[1]), health
            assert time.monotonic() < deadline and process.poll() is None, "never healthy"
            time.sleep(0.1)
        status, text = http_get(url + "/metrics")
        assert status == 200
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        books = {s.labels["status"]: s.value for s in samples if s.name == "polyfeed_books"}
        assert books.get("live") == 2 and sum(books.values()) == 2, (books, text[:3000])
        assert sum(s.value for s in samples if s.name == "polyfeed_messages_received_total") > 0
        if command[0] == "record":
            assert sum(s.value for s in samples if s.name == "polyfeed_recording_records_total") > 0
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=BOUND_S)
    assert process.returncode == 0, err


def test_a_port_taken_is_one_line_and_exit_1(exchange: Exchange, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = polyfeed(capsys, "stream", "sim-market-0", "--metrics-port", port, *exchange.venue_args())
    line = assert_one_line_failure(result, "stream")
    assert result.code == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in line
