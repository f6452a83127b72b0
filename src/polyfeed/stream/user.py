"""``UserStream``: your orders and trades from the authenticated user channel, as state a bot can trust.

>>> async with UserStream(Credentials.from_env()) as stream:      # doctest: +SKIP
...     async for event in stream:                                # OrderUpdated, TradeUpdated, Reconciled...
...         print(stream.state.open_orders(), stream.state.position(token_id))
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from types import TracebackType

import aiohttp

from polyfeed.net.connection import Backoff, FrameSink
from polyfeed.net.transport import http_session
from polyfeed.net.user import UserConnection
from polyfeed.session import Event
from polyfeed.session.user import UserConfig, UserSession, UserState
from polyfeed.stream.queue import EventQueue, QueuedStream
from polyfeed.venue import WS_SCHEMES, Venue, check_url
from polyfeed.wire import Credentials

__all__ = ["UserStream"]


class UserStream(QueuedStream):
    """Your orders and trades, kept right across reconnects by REST reconciliation.

    Args:
        credentials: L2 API key, secret and passphrase; ``None`` reads ``POLYMARKET_API_KEY``,
            ``POLYMARKET_API_SECRET`` and ``POLYMARKET_API_PASSPHRASE``. Never logged or recorded.
        markets: condition ids to follow (``None``: all your markets).
        address: your signer address (``POLY_ADDRESS`` of the REST calls; also picks out your maker
            fills by ``maker_address``).
        venue: where to connect (:class:`polyfeed.venue.Venue`; ``None``: Polymarket): its user
            channel, and its CLOB REST API for the reconciliation.
        ws_url: the user channel (``.../ws/user``) instead of the venue's.
        rest_url: the CLOB REST API instead of the venue's.
        on_event: called with every event, in order; what it raises is logged and counted.
        config: timings and the number of dropped connections that mean bad credentials.
        backoff: reconnect pacing.
        max_queue: events buffered for ``async for`` (the oldest dropped beyond, counted; ``0``: none).
        ssl_context: for ``wss://`` and ``https://``.
        recorder: records the channel's frames and the reconciliations' REST answers (the
            subscription is recorded without its credentials).
        max_connect_attempts: as :class:`polyfeed.stream.MarketStream`'s: the stream fails with
            :class:`polyfeed.errors.ConnectError` when the channel never connects.

    The iterator raises :class:`polyfeed.errors.AuthenticationError` when the venue keeps refusing the
    credentials (it drops the connection without a word, spec 5.3), after the events already queued.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        markets: Iterable[str] | None = None,
        address: str = "",
        venue: Venue | None = None,
        ws_url: str | None = None,
        rest_url: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        config: UserConfig | None = None,
        backoff: Backoff | None = None,
        max_queue: int = 100_000,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> None:
        self.recorder = recorder
        self.max_connect_attempts = max_connect_attempts
        self.credentials = credentials if credentials is not None else Credentials.from_env()
        self.state = UserState(self.credentials.api_key, address)
        self.markets = list(markets or ())
        self.address = address
        if ws_url is not None:
            check_url(ws_url, WS_SCHEMES, "ws_url")
        self.venue = (venue or Venue.polymarket()).with_urls(user_url=ws_url, rest_url=rest_url)
        self.ws_url = self.venue.user_url
        self.rest_url = self.venue.rest_url
        self.config = config
        self.backoff = backoff
        self.ssl_context = ssl_context
        self._queue = EventQueue(on_event, max_queue)
        self._http: aiohttp.ClientSession | None = None
        self.connection: UserConnection | None = None
        self._runner: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"UserStream({self.credentials!r}, markets={len(self.markets)}, ws_url={self.ws_url!r})"

    async def __aenter__(self) -> UserStream:
        self._http = http_session(ssl_context=self.ssl_context)
        session = UserSession(1, self.credentials, self.state, self.markets, self.config)
        self.connection = UserConnection(
            session,
            self.ws_url,
            self._queue.emit,
            http=self._http,
            rest_url=self.rest_url,
            address=self.address,
            backoff=self.backoff,
            ssl_context=self.ssl_context,
            recorder=self.recorder,
            max_connect_attempts=self.max_connect_attempts,
        )
        self._runner = asyncio.get_running_loop().create_task(self.connection.run())
        self._runner.add_done_callback(self._ended)
        return self

    def _ended(self, runner: asyncio.Task[None]) -> None:
        if not runner.cancelled() and runner.exception() is not None:
            self._queue.fail(runner.exception())  # type: ignore[arg-type]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.connection is not None:
            await self.connection.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
