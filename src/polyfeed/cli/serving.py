"""``--metrics-port`` for the long-running commands: ``/metrics`` and ``/healthz`` while they run.

:func:`with_metrics` wraps a command's coroutine: it serves :mod:`polyfeed.metrics` on the port asked
for before the command starts, and closes it when the command ends. The command hands each stream it
creates to :func:`follow` (a no-op without ``--metrics-port``), so that ``/metrics`` shows it from then
on and ``/healthz`` judges it: a stream not connected yet is reported down, as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from polyfeed.cli.errors import CommandError
from polyfeed.fanout import Collector
from polyfeed.metrics import AnyStream, MetricsServer, serve_metrics

__all__ = ["follow", "follow_fanout", "with_metrics"]

T = TypeVar("T")

_server: list[MetricsServer] = []  # the command's server while it runs (one command a process)


async def with_metrics(job: Coroutine[Any, Any, T], port: int | None, host: str) -> T:
    """Run ``job``, serving ``/metrics`` and ``/healthz`` on ``host:port`` meanwhile (``None``: not).

    Raises:
        CommandError: the port cannot be bound (taken, or not allowed).
    """
    if port is None:
        return await job
    try:
        server = await serve_metrics(port, host)
    except OSError as exc:
        job.close()
        raise CommandError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    sys.stderr.write(f"polyfeed: metrics at {server.url}/metrics, health at {server.url}/healthz\n")
    sys.stderr.flush()
    _server.append(server)
    try:
        return await job
    finally:
        _server.clear()
        await server.close()


def follow(stream: AnyStream) -> None:
    """Show ``stream`` (and its recorder) in ``/metrics`` and ``/healthz``, if they are served."""
    for server in _server:
        server.collector.add_stream(stream)


def follow_fanout(collector: Collector) -> None:
    """Show a fan-out collector's publishing in ``/metrics`` (and its NATS connection in ``/healthz``),
    if they are served."""
    for server in _server:
        server.collector.add_fanout(collector)
