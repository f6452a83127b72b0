"""The local exchange's own metrics and health (``polyfeed sim --metrics-port``), read when scraped.

:mod:`polyfeed.sim` is a witness of the venue and never imports the client's code, this package
included: so the exchange only keeps plain counters (an integer increment for each frame it writes,
each connection it accepts or refuses, each HTTP answer, each tick of its flow), and
:class:`ExchangeCollector` reads them, and the gauges (connections open, frames queued, markets, the
account's orders), from the outside when Prometheus scrapes. Nothing is done per message for metrics
beyond those increments.

Every metric is named ``polyfeed_sim_...``; ``channel`` is ``market`` or ``user``. No label or value
holds a secret (the account's credentials are never read), nor a path as a client asked it: HTTP
requests are labelled with their route's pattern (``/markets/slug/{slug}``), ``other`` for no route.

``/healthz`` (:func:`exchange_health`) answers 200 while the exchange listens and its order flow runs
(paused by hand included), 503 once it stopped, with a JSON body either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from polyfeed.metrics.server import CollectorServer, serve_collector
from polyfeed.sim import Simulator
from polyfeed.sim.faults import FAULT_KINDS

__all__ = ["ExchangeCollector", "exchange_health", "serve_exchange_metrics"]

_TRADE_STATUSES = ("MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED")
"""The account's trade statuses, always listed (0 until one is seen) so that a dashboard has its series."""


class ExchangeCollector(Collector):
    """A Prometheus collector of one :class:`polyfeed.sim.Simulator` (register it on a registry of your
    own, and scrape it on the exchange's event loop)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def collect(self) -> Iterator[Metric]:
        sim = self.sim
        market, user = sim.market, sim.user
        channels = (("market", market.connections), ("user", user.connections))

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(f"polyfeed_sim_{name}", doc, labels=labels)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"polyfeed_sim_{name}", doc, labels=labels)

        sent = counter(
            "frames_sent",
            "Frames written to clients: data, initial dumps, PONG, faults' frames.",
            ("channel",),
        )
        sent.add_metric(["market"], sim.market_frames_sent)
        sent.add_metric(["user"], sim.user_frames_sent)
        yield sent

        accepted = counter(
            "connections", "Connections accepted (subscribed, and authenticated).", ("channel",)
        )
        accepted.add_metric(["market"], market.connections_accepted)
        accepted.add_metric(["user"], user.connections_accepted)
        yield accepted

        refused = counter(
            "connections_refused",
            "Connections refused, by reason: fault (reject_connects), subscription (none in time, or not "
            "one), auth (credentials not the account's).",
            ("channel", "reason"),
        )
        refused.add_metric(["market", "fault"], market.connects_rejected)
        refused.add_metric(["market", "subscription"], market.subscriptions_refused)
        refused.add_metric(["user", "auth"], user.rejected_auth)
        refused.add_metric(["user", "subscription"], user.subscriptions_refused)
        yield refused

        open_ = gauge("connections_open", "Connections open now.", ("channel",))
        queued = gauge("send_queue_frames", "Frames queued to connections and not written yet.", ("channel",))
        zombies = gauge("zombie_connections", "Connections open that a zombie fault silenced.", ("channel",))
        for channel, connections in channels:
            open_.add_metric([channel], len(connections))
            queued.add_metric([channel], sum(c.queue.qsize() for c in connections))
            zombies.add_metric([channel], sum(c.zombie for c in connections))
        yield from (open_, queued, zombies)

        subscribed = gauge("subscribed_assets", "Assets the market connections are subscribed to, summed.")
        subscribed.add_metric([], sum(len(c.assets) for c in market.connections))
        yield subscribed

        events = counter("flow_events", "Order-flow events run (each sends one or several messages).")
        events.add_metric([], sim.events_run)
        dropped = counter(
            "flow_events_dropped", "Order-flow events dropped because the flow loop fell behind."
        )
        dropped.add_metric([], sim.flow.skipped)
        paused = gauge("flow_paused", "1 while the order flow is paused (POST /control/flow), else 0.")
        paused.add_metric([], int(sim.paused))
        yield from (events, dropped, paused)

        exchange = sim.exchange
        markets = gauge("markets_open", "Markets open (listed, trading).")
        markets.add_metric([], len(exchange.markets))
        resolved = counter("markets_resolved", "Markets resolved (by their lifetime, a fault, or by hand).")
        resolved.add_metric([], len(exchange.resolved))
        yield from (markets, resolved)

        faults = counter("faults_injected", "Faults injected, by kind.", ("kind",))
        by_kind = Counter(f.kind for f in sim.faults_injected)
        for kind in FAULT_KINDS:
            faults.add_metric([kind], by_kind[kind])
        yield faults

        requests = counter(
            "http_requests",
            "HTTP answers but WebSocket upgrades (REST, Gamma, control), by route pattern and status.",
            ("path", "status"),
        )
        for (path, code), n in sorted(sim.requests.items()):
            requests.add_metric([path, str(code)], n)
        yield requests

        account = exchange.account
        orders = gauge("account_orders_open", "The simulated account's orders open (LIVE) now.")
        orders.add_metric([], len(account.open_orders()))
        trades = gauge("account_trades", "The simulated account's trades, by status.", ("status",))
        trade_statuses = Counter(t.status for t in account.trades.values())
        for status in sorted(set(_TRADE_STATUSES) | trade_statuses.keys()):
            trades.add_metric([status], trade_statuses[status])
        yield from (orders, trades)


def exchange_health(sim: Simulator) -> tuple[bool, Mapping[str, Any]]:
    """``/healthz`` of the local exchange: healthy while it listens and its order flow runs (paused by
    hand included), with what it serves."""
    serving = sim.serving
    return serving, {
        "status": "ok" if serving else "unhealthy",
        "serving": serving,
        "flow": ("paused" if sim.paused else "running") if serving else "stopped",
        "markets_open": len(sim.exchange.markets),
        "connections_open": {"market": len(sim.market.connections), "user": len(sim.user.connections)},
        "faults_injected": len(sim.faults_injected),
    }


async def serve_exchange_metrics(
    sim: Simulator, port: int, host: str = "127.0.0.1", *, process: bool = True
) -> CollectorServer:
    """Serve the local exchange's ``/metrics`` and ``/healthz`` on ``host:port`` (``0``: a free port, then
    in ``.port``), on the exchange's event loop, until the returned server is closed.

    Raises:
        OSError: the port cannot be bound (taken, or not allowed).
    """
    return await serve_collector(
        port, ExchangeCollector(sim), lambda: exchange_health(sim), host, process=process
    )
