"""The command line's fixtures: a local exchange serving from its own thread, and a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.cli.harness import Exchange, exchange_in_thread


@pytest.fixture(scope="module")
def exchange() -> Iterator[Exchange]:
    """A local exchange of 6 markets (seed 1) shared by a module's tests, which only read from it."""
    with exchange_in_thread() as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
