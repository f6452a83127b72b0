"""Prometheus metrics and a health check for streams and recorders that run unattended.

>>> async with MarketStream(assets) as stream:                                  # doctest: +SKIP
...     async with await serve_metrics(9108, streams=[stream]):                 # /metrics, /healthz
...         await stream.failed()

- :class:`StreamCollector`: a ``prometheus_client`` collector that reads, when scraped, the counters the
  streams, recorders and fan-out collectors (:mod:`polyfeed.fanout`) keep anyway
  (:mod:`polyfeed.metrics.collector` lists every metric); register it on a registry of your own to serve
  it with your application's metrics.
- :func:`check_health`: every followed book live, every connection up (:mod:`polyfeed.metrics.health`).
- :func:`serve_metrics`: both over HTTP on the streams' event loop (:mod:`polyfeed.metrics.server`);
  :func:`serve_collector` the same server for any ``prometheus_client`` collector and health check.
- :mod:`polyfeed.metrics.exchange`: the local exchange's own metrics and health (``polyfeed sim
  --metrics-port``), read from the outside (imported on its own: it loads the exchange).

``docs/operations.md`` says what each metric means for an operator, which alerts to set, and gives a
Grafana dashboard.
"""

from polyfeed.metrics.collector import AnyStream, StreamCollector
from polyfeed.metrics.health import Health, check_health
from polyfeed.metrics.server import (
    CollectorServer,
    HealthCheck,
    MetricsServer,
    serve_collector,
    serve_metrics,
)

__all__ = [
    "AnyStream",
    "CollectorServer",
    "Health",
    "HealthCheck",
    "MetricsServer",
    "StreamCollector",
    "check_health",
    "serve_collector",
    "serve_metrics",
]
