"""The command line's fixtures: a local exchange serving from its own thread, a closed port, and a
recording of the exchange made by ``polyfeed record``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from polyfeed.cli import main
from tests.cli.harness import Exchange, exchange_in_thread


@dataclass(frozen=True)
class Recorded:
    directory: Path
    slugs: list[str]


@pytest.fixture(autouse=True)
def _quiet_log() -> Iterator[None]:
    """A command run in-process with ``-v`` turns polyfeed's log on for the process: turn it off again,
    so that the next test's stderr holds only what its own command wrote."""
    logger = logging.getLogger("polyfeed")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(scope="module")
def exchange() -> Iterator[Exchange]:
    """A local exchange of 6 markets (seed 1) shared by a module's tests, which only read from it."""
    with exchange_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def recording(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Two markets of the module's exchange recorded by ``polyfeed record`` for two seconds, with what
    the command printed (its books' digests)."""
    directory = tmp_path_factory.mktemp("recording") / "rec"
    markets = exchange.sim.exchange.markets[:2]
    code = main(
        [
            "record",
            *(m.slug for m in markets),
            "--seconds",
            "2",
            "--out",
            str(directory),
            *exchange.venue_args(),
        ]
    )
    assert code == 0
    return Recorded(directory, [m.slug for m in markets])
