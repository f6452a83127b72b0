"""``/metrics`` and ``/healthz`` over HTTP, on the streams' own event loop.

The server is aiohttp's, on the event loop the streams run on, so that a scrape reads the books and
sessions between two frames, never while one is half applied (``prometheus_client``'s own
``start_http_server`` scrapes from a thread of its own, which would race with the stream). It listens
on loopback unless told otherwise: the metrics name no secret, but they are nobody else's business.

:class:`CollectorServer` is the same server for any ``prometheus_client`` collector and any health check
(:func:`serve_collector`): ``polyfeed sim`` serves the local exchange's own metrics with it
(:mod:`polyfeed.metrics.exchange`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from polyfeed.fanout.collector import Collector as FanoutCollector
from polyfeed.metrics.collector import AnyStream, StreamCollector
from polyfeed.metrics.health import check_health
from polyfeed.record.writer import Recorder

__all__ = ["CollectorServer", "HealthCheck", "MetricsServer", "serve_collector", "serve_metrics"]

HealthCheck = Callable[[], tuple[bool, Mapping[str, Any]]]
"""What ``/healthz`` asks, on the server's event loop: healthy or not (200 or 503), and the JSON body."""


class CollectorServer:
    """A running ``/metrics`` and ``/healthz`` server of any registry and health check (from
    :func:`serve_collector`); an async context manager that closes it on exit.

    Attributes:
        registry: the registry ``/metrics`` renders (its own, never the global one).
        health: what ``/healthz`` answers.
        host, port: where it listens (``port`` is the one bound, when 0 was asked for).
    """

    def __init__(self, registry: CollectorRegistry, host: str, health: HealthCheck) -> None:
        self.registry = registry
        self.health = health
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: ``/metrics`` and ``/healthz`` are under it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self, port: int) -> None:
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, body = self.health()
        return web.Response(
            text=json.dumps(body, indent=1) + "\n",
            status=200 if healthy else 503,
            content_type="application/json",
        )


class MetricsServer(CollectorServer):
    """A running ``/metrics`` and ``/healthz`` server of streams (from :func:`serve_metrics`); an async
    context manager that closes it on exit.

    Attributes:
        collector: the streams, recorders and fan-out collectors served;
            :meth:`StreamCollector.add_stream` (and ``add_recorder``, ``add_fanout``) adds more.
        registry: the registry ``/metrics`` renders (its own, never the global one): the collector
            and the process' CPU, memory and open files (``process_...``).
        host, port: where it listens (``port`` is the one bound, when 0 was asked for).
    """

    def __init__(self, collector: StreamCollector, registry: CollectorRegistry, host: str) -> None:
        super().__init__(registry, host, self._stream_health)
        self.collector = collector

    def _stream_health(self) -> tuple[bool, Mapping[str, Any]]:
        health = check_health(self.collector)
        return health.healthy, health.as_json()


async def serve_collector(
    port: int,
    collector: Collector,
    health: HealthCheck,
    host: str = "127.0.0.1",
    *,
    process: bool = True,
) -> CollectorServer:
    """Serve ``/metrics`` of ``collector`` (any ``prometheus_client`` collector, scraped on this event
    loop) and ``/healthz`` answered by ``health`` on ``host:port`` until the returned server is closed.

    Args:
        port: the port to listen on (``0``: a free one, then in ``.port``).
        collector: what ``/metrics`` shows, on a registry of the server's own.
        health: called at each ``/healthz``: ``(healthy, body)``, 200 or 503 with ``body`` as JSON.
        host: the address to listen on (loopback by default).
        process: add the process' own metrics (CPU, memory, open files; Linux only).

    Raises:
        OSError: the port cannot be bound (taken, or not allowed).
    """
    server = CollectorServer(_registry(collector, process), host, health)
    await server.start(port)
    return server


async def serve_metrics(
    port: int,
    host: str = "127.0.0.1",
    *,
    streams: Iterable[AnyStream] = (),
    recorders: Iterable[Recorder] = (),
    fanouts: Iterable[FanoutCollector] = (),
    process: bool = True,
) -> MetricsServer:
    """Serve ``/metrics`` (Prometheus' text format) and ``/healthz`` for ``streams`` (and their
    recorders) and ``fanouts`` on ``host:port`` until the returned server is closed.

    Args:
        port: the port to listen on (``0``: a free one, then in ``.port``).
        host: the address to listen on: loopback by default; ``0.0.0.0`` in a container whose port is
            published.
        streams: :class:`polyfeed.stream.MarketStream`, :class:`polyfeed.stream.UserStream` or
            :class:`polyfeed.fanout.NatsMarketStream` objects; more can be added later through
            ``.collector``.
        recorders: recorders no stream has.
        fanouts: fan-out collectors (:class:`polyfeed.fanout.Collector`, from ``publish``'s
            ``on_open``): their publishing to JetStream, and their NATS connection in ``/healthz``.
        process: add the process' own metrics (CPU, memory, open files; Linux only).

    ``/healthz`` answers 200 when every followed book is live and every connection up, 503 with a JSON
    body naming what is not (:mod:`polyfeed.metrics.health`).

    >>> async with MarketStream(assets) as stream:                                  # doctest: +SKIP
    ...     async with await serve_metrics(9108, streams=[stream]):
    ...         await stream.failed()

    Raises:
        OSError: the port cannot be bound (taken, or not allowed).
    """
    collector = StreamCollector(streams, recorders, fanouts)
    server = MetricsServer(collector, _registry(collector, process), host)
    await server.start(port)
    return server


def _registry(collector: Collector, process: bool) -> CollectorRegistry:
    """A registry of ``collector`` (and, with ``process``, the process' own metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)
    return registry
