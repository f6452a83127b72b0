"""Helpers for the command line's tests (not a test module): a local exchange in a thread of its own,
running ``polyfeed`` in-process or as a subprocess, and a ``polyfeed publish`` collector running beside
a test.

A command runs its own event loop (``asyncio.Runner``), so the exchange it talks to cannot share the
test's thread: it serves from a thread with its own loop, on a free loopback port, and the command
(called in-process through :func:`polyfeed.cli.main`, or as a subprocess) reaches it by its URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from polyfeed.cli import main
from polyfeed.sim import Simulator

T = TypeVar("T")
BOUND_S = 60
"""An upper bound on waiting for anything (a broken command fails instead of hanging)."""


@dataclass
class Exchange:
    """A local exchange serving from its own thread."""

    sim: Simulator
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return self.sim.ws_url + "/ws/market"

    @property
    def rest_url(self) -> str:
        return self.sim.rest_url

    def venue_args(self, *, ws_url: str | None = None) -> list[str]:
        """``--ws-url``, ``--rest-url`` and ``--gamma-url`` of this exchange (Gamma is on the same port)."""
        return [
            "--ws-url",
            ws_url or self.ws_url,
            "--rest-url",
            self.rest_url,
            "--gamma-url",
            self.rest_url,
        ]

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the exchange's loop (to inject a fault, say) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BOUND_S)


def venue_args_at(host_port: str) -> list[str]:
    """``--ws-url``, ``--rest-url`` and ``--gamma-url`` all at ``host:port`` (a closed port, say)."""
    return [
        "--ws-url",
        f"ws://{host_port}/ws/market",
        "--rest-url",
        f"http://{host_port}",
        "--gamma-url",
        f"http://{host_port}",
    ]


@contextlib.contextmanager
def exchange_in_thread(markets: int = 6, seed: int = 1) -> Iterator[Exchange]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = holder["stop"] = asyncio.Event()
        async with Simulator(markets, seed=seed, events_per_s=300) as sim:
            holder["sim"] = sim
            started.set()
            await stop.wait()

    def thread_main() -> None:
        try:
            loop.run_until_complete(serve())
        finally:
            started.set()  # a failed start must not leave the test waiting

    thread = threading.Thread(target=thread_main, name="local-exchange", daemon=True)
    thread.start()
    assert started.wait(BOUND_S) and "sim" in holder, "the local exchange did not start"
    try:
        yield Exchange(holder["sim"], loop)
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(BOUND_S)
        loop.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


def polyfeed(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run ``polyfeed ARGV`` in this process (stdout and stderr are not terminals)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_failure(result: Result, command: str) -> str:
    """A failure as the command line promises it: non-zero, one line on stderr, no traceback."""
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.err!r}"
    assert lines[0].startswith(f"polyfeed {command}:") or lines[0].startswith("polyfeed:"), lines[0]
    return lines[0]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m polyfeed`` in a subprocess: this checkout's sources first."""
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


RUN_MAIN = "import sys; from polyfeed.cli import main; sys.exit(main(sys.argv[1:]))"


def polyfeed_process(*argv: str, **popen: Any) -> subprocess.Popen[bytes]:
    """``polyfeed ARGV`` (:func:`polyfeed.cli.main`) as a subprocess, stdout and stderr piped unless
    given (``python -m polyfeed`` has a test of its own)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("env", subprocess_env())
    # Signals as at a terminal, whatever this test process inherited: a suite started in the background
    # by a script has SIGINT ignored (and under nohup SIGHUP), and its children would ignore them too.
    popen.setdefault("preexec_fn", default_signals)
    return subprocess.Popen([sys.executable, "-c", RUN_MAIN, *argv], **popen)


def default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def collector_process(exchange: Exchange, nats_url: str, *argv: str) -> Iterator[Collecting]:
    """``polyfeed publish ARGV --nats NATS_URL --metrics-port 0`` on ``exchange`` as a subprocess, yielded
    once its ``/healthz`` says 200 (every book live, NATS connected); stopped with Ctrl-C after, which
    must end it with exit 0 and its summary."""
    process = polyfeed_process(
        "publish", *argv, "--nats", nats_url, "--metrics-port", "0", *exchange.venue_args()
    )
    assert process.stderr is not None
    try:
        line = process.stderr.readline().decode()
        found = re.search(r"metrics at (http://\S+)/metrics, health at \1/healthz", line)
        assert found, line
        running = Collecting(process, found.group(1))
        deadline = time.monotonic() + BOUND_S
        while running.get("/healthz")[0] != 200:
            assert time.monotonic() < deadline and process.poll() is None, "the collector never got healthy"
            time.sleep(0.1)
        yield running
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=BOUND_S)
        running.out = out.decode()
        assert process.returncode == 0, err.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@dataclass
class Collecting:
    """A ``polyfeed publish`` running (:func:`collector_process`)."""

    process: subprocess.Popen[bytes]
    metrics_url: str
    out: str = ""
    """What it printed on stdout, once stopped (its summary)."""

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path`` of its metrics server: status and body."""
        return http_get(self.metrics_url + path)


def http_get(url: str) -> tuple[int, str]:
    """GET ``url``: its status and body (an HTTP error's too: a 503 from ``/healthz`` is an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=BOUND_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def served_url(process: subprocess.Popen[bytes]) -> str:
    """The URL a command says it serves metrics at (its first line on stderr)."""
    assert process.stderr is not None
    line = process.stderr.readline().decode()
    found = re.search(r"metrics at (http://\S+)/metrics, health at \1/healthz", line)
    assert found, line
    return found.group(1)
