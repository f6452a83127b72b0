"""Whether the streams a collector holds are healthy, for ``/healthz``: load balancers and orchestrators
(a Kubernetes probe, a systemd watchdog script) ask, and act on the answer.

Healthy means every followed book is live and every connection is up (a fan-out collector's NATS
connection too), and no stream has given up. A
``CLOSED`` book is not followed any more (its market resolved, or the venue has no book for it: final,
nothing to mend), so it does not make a stream unhealthy; a ``SYNCING`` one does (a stream just started
is not ready yet), as do ``SUSPECT`` and ``STALE`` ones. What is not healthy is named in the answer: the
books (up to :data:`MAX_NAMED` of them, with their status and why), the connections down, the streams
that failed (by the error's class only: an error's text may hold a URL or a key's first characters).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from polyfeed.book import BookStatus
from polyfeed.metrics.collector import StreamCollector, channel_of, sessions_of
from polyfeed.stream.user import UserStream

__all__ = ["MAX_NAMED", "Health", "check_health"]

MAX_NAMED = 50
"""Books named at most in an answer (a universe of 45,600 stale books is counted, not listed)."""


@dataclass(frozen=True)
class Health:
    """The streams' health at one moment; :meth:`as_json` is ``/healthz``'s body."""

    healthy: bool
    books_followed: int
    """Books of every stream but the closed ones."""
    books_by_status: dict[str, int]
    books_not_live: list[dict[str, Any]] = field(default_factory=list)
    """At most :data:`MAX_NAMED`: ``stream``, ``asset_id``, ``status``, ``reason``, ``since_ms``."""
    connections_down: list[dict[str, Any]] = field(default_factory=list)
    """``stream``, ``channel``, ``connection`` (``null``: the stream has opened none); a fan-out
    collector's NATS connection down is ``stream``: its fan-out's name, ``channel``: ``nats``,
    ``connection``: ``null``."""
    streams_failed: list[dict[str, str]] = field(default_factory=list)
    """``stream`` and ``error``, the class of what ended it."""
    connections_up: dict[str, int] = field(default_factory=dict)
    """Connections up, by channel (``market``, ``user``, ``nats``): what ``/healthz`` judged."""

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "books_followed": self.books_followed,
            "books_by_status": self.books_by_status,
            "books_not_live": self.books_not_live,
            "connections_down": self.connections_down,
            "streams_failed": self.streams_failed,
            "connections_up": self.connections_up,
        }


def check_health(collector: StreamCollector) -> Health:
    """The health of every stream ``collector`` holds (recorders are judged by their metrics); unhealthy
    while it holds none."""
    by_status: Counter[str] = Counter()
    up: Counter[str] = Counter()
    not_live: list[dict[str, Any]] = []
    down: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for name, stream in collector.streams.items():
        if stream.error is not None:
            failed.append({"stream": name, "error": type(stream.error).__name__})
        sessions = sessions_of(stream)
        if not sessions:
            down.append({"stream": name, "channel": channel_of(stream), "connection": None})
        for channel, session in sessions:
            up[channel] += session.connected
            if not session.connected:
                down.append({"stream": name, "channel": channel, "connection": session.connection_id})
        if isinstance(stream, UserStream):
            continue
        for asset, book in stream.books.items():
            status = book.status
            by_status[status.value] += 1
            if (
                status is not BookStatus.LIVE
                and status is not BookStatus.CLOSED
                and len(not_live) < MAX_NAMED
            ):
                not_live.append(
                    {
                        "stream": name,
                        "asset_id": asset,
                        "status": status.value,
                        "reason": book.status_reason,
                        "since_ms": book.status_since_ms,
                    }
                )
    for name, fanout in collector.fanouts.items():
        up["nats"] += fanout.publisher.client.is_connected
        if not fanout.publisher.client.is_connected:
            down.append({"stream": name, "channel": "nats", "connection": None})
    followed = sum(by_status.values()) - by_status[BookStatus.CLOSED.value]
    books_bad = followed - by_status[BookStatus.LIVE.value]
    return Health(
        # Nothing followed yet (a command still resolving its markets) is not healthy: a load balancer
        # must not take "no streams" for "every book live".
        healthy=bool(collector.streams) and not (books_bad or down or failed),
        books_followed=followed,
        books_by_status={s.value: by_status[s.value] for s in BookStatus},
        books_not_live=not_live,
        connections_down=down,
        streams_failed=failed,
        connections_up=dict(sorted(up.items())),
    )
