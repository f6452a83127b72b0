"""The connection pool: assets sharded over market connections, as the venue's limits require.

- At most ``per_connection`` assets a connection (200 by default, as Nautilus; never more than 500,
  above which the venue sends no snapshots or nothing at all, spec 1.4).
- New connections are paced ``connect_interval_s`` apart (bursts get HTTP 429, spec 1.4).
- An asset is never subscribed twice (the venue rejects duplicates and a client that sends them gets
  duplicate events, spec 11.11).
- ``subscribe`` / ``unsubscribe`` at run time use in-place ``operation`` frames; new assets fill the
  connections with room before a new connection opens.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable

import aiohttp

from polyfeed.book import OrderBook
from polyfeed.errors import SubscriptionLimitError
from polyfeed.net.connection import Backoff, FrameSink, MarketConnection
from polyfeed.session import Event, MarketSession, SessionConfig

__all__ = ["VENUE_ASSET_LIMIT", "MarketPool"]

VENUE_ASSET_LIMIT = 500


class MarketPool:
    """Market connections for a set of assets, and the books they keep.

    Args:
        ws_url: the market channel URL.
        emit: called with each batch of events of any connection.
        http: for REST resyncs.
        rest_url: base URL of the CLOB REST API.
        per_connection: assets a connection carries at most.
        connect_interval_s: pause between opening two connections.
        config: the sessions' timings and budgets.
        backoff: reconnect pacing.
        ssl_context: for ``wss://`` URLs.
        recorder: records what every connection receives and decides (:class:`polyfeed.record.Recorder`).
        max_connect_attempts: a connection that never connected gives up after this many tries.
        on_error: called with the error of a connection that gave up for good
            (:class:`polyfeed.errors.ConnectError`).

    Raises:
        SubscriptionLimitError: ``per_connection`` above the venue's 500.
    """

    def __init__(
        self,
        ws_url: str,
        emit: Callable[[list[Event]], None],
        *,
        http: aiohttp.ClientSession | None,
        rest_url: str = "",
        per_connection: int = 200,
        connect_interval_s: float = 0.1,
        config: SessionConfig | None = None,
        backoff: Backoff | None = None,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.max_connect_attempts = max_connect_attempts
        self.on_error = on_error
        self.ssl_context = ssl_context
        if not 1 <= per_connection <= VENUE_ASSET_LIMIT:
            raise SubscriptionLimitError(
                f"per_connection must be 1-{VENUE_ASSET_LIMIT}: above {VENUE_ASSET_LIMIT} the venue sends "
                "no snapshots (spec 1.4)"
            )
        self.ws_url = ws_url
        self.emit = emit
        self.http = http
        self.rest_url = rest_url
        self.per_connection = per_connection
        self.connect_interval_s = connect_interval_s
        self.config = config
        self.backoff = backoff
        self.books: dict[str, OrderBook] = {}
        self.connections: list[MarketConnection] = []
        self._runners: list[asyncio.Task[None]] = []
        self._pending: asyncio.Queue[MarketConnection] = asyncio.Queue()
        self._starter: asyncio.Task[None] | None = None

    @property
    def assets(self) -> set[str]:
        return {a for c in self.connections for a in c.session.assets}

    def subscribe(self, assets: Iterable[str]) -> list[str]:
        """Subscribe assets not yet subscribed anywhere; returns those added."""
        known = self.assets
        new = [a for a in dict.fromkeys(assets) if a not in known]
        remaining = list(new)
        for connection in self.connections:
            room = self.per_connection - len(connection.session.assets)
            if room > 0 and remaining:
                chunk, remaining = remaining[:room], remaining[room:]
                connection.subscribe(chunk)
        while remaining:
            chunk, remaining = remaining[: self.per_connection], remaining[self.per_connection :]
            self._open(chunk)
        return new

    def unsubscribe(self, assets: Iterable[str]) -> None:
        gone = set(assets)
        for connection in self.connections:
            connection.unsubscribe(gone)

    def _open(self, assets: list[str]) -> None:
        session = MarketSession(len(self.connections) + 1, assets, self.books, self.config)
        connection = MarketConnection(
            session,
            self.ws_url,
            self.emit,
            http=self.http,
            rest_url=self.rest_url,
            backoff=self.backoff,
            ssl_context=self.ssl_context,
            recorder=self.recorder,
            max_connect_attempts=self.max_connect_attempts,
        )
        self.connections.append(connection)
        self._pending.put_nowait(connection)
        if self._starter is None:
            self._starter = asyncio.get_running_loop().create_task(self._start_paced())

    async def _start_paced(self) -> None:
        while True:
            connection = await self._pending.get()
            runner = asyncio.create_task(connection.run())
            runner.add_done_callback(self._ended)
            self._runners.append(runner)
            await asyncio.sleep(self.connect_interval_s)

    def _ended(self, runner: asyncio.Task[None]) -> None:
        if not runner.cancelled() and runner.exception() is not None and self.on_error is not None:
            self.on_error(runner.exception())  # type: ignore[arg-type]

    async def close(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
        for connection in self.connections:
            await connection.close()
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
