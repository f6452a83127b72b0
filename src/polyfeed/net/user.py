"""The user channel's driver: one :class:`polyfeed.session.user.UserSession` over a picows WebSocket,
with the REST reconciliation after every (re)connection and the end of the road for bad credentials."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import aiohttp

from polyfeed.errors import AuthenticationError, PolyfeedError
from polyfeed.net.connection import Backoff, FrameSink, SessionConnection
from polyfeed.net.rest import fetch_open_orders, fetch_order, fetch_trades
from polyfeed.record.format import REDACTED_API_KEY
from polyfeed.session import AnyRequest, CredentialsRejected, Event, ReconcileRequested
from polyfeed.session.tap import UserTap
from polyfeed.session.user import UserSession

__all__ = ["REDACTED_API_KEY", "UserConnection"]

log = logging.getLogger(__name__)
_RECONCILE_TRIES = 3


class UserConnection(SessionConnection[UserSession]):
    """A user-channel connection.

    When the session asks for a reconciliation (:class:`~polyfeed.session.ReconcileRequested`, once the
    venue has confirmed a connection with its first ``PONG`` or message), it fetches your open orders,
    the orders it held open that the venue no longer lists, and your trades through L2-signed REST, and
    hands them to :meth:`UserSession.reconcile`. When the session gives up on the credentials
    (:class:`~polyfeed.session.CredentialsRejected`: ``max_auth_failures`` connections dropped before
    confirmation in a row), or REST answers 401, it stops for good: :meth:`run` raises
    :class:`polyfeed.errors.AuthenticationError`.

    Args:
        session: the user session (credentials, markets, state).
        ws_url: the user channel URL (``wss://.../ws/user``).
        emit: called with each batch of events, in order.
        http: for the reconciliation (``None``: no reconciliation).
        rest_url: base URL of the CLOB REST API.
        address: your signer address for the ``POLY_ADDRESS`` header.
        backoff: reconnect pacing.
        ssl_context: for ``wss://`` and ``https://``.
    """

    inputs: UserSession | UserTap

    def __init__(
        self,
        session: UserSession,
        ws_url: str,
        emit: Callable[[list[Event]], None],
        *,
        http: aiohttp.ClientSession | None = None,
        rest_url: str = "",
        address: str = "",
        backoff: Backoff | None = None,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        recorder: FrameSink | None = None,
        max_connect_attempts: int | None = 5,
    ) -> None:
        super().__init__(
            session,
            ws_url,
            emit,
            backoff=backoff,
            seed=seed,
            ssl_context=ssl_context,
            recorder=recorder,
            max_connect_attempts=max_connect_attempts,
        )
        self.http = http
        self.rest_url = rest_url.rstrip("/")
        self.address = address
        self.reconciliations = 0
        self._reconciling = False
        self._reconcile_again = False

    def _tap(self, recorder: FrameSink) -> UserTap:
        return UserTap(self.session, recorder)

    def _act(self, requests: list[AnyRequest]) -> None:
        for request in requests:
            if type(request) is CredentialsRejected and self.error is None:
                self._give_up(
                    AuthenticationError(
                        f"the user channel dropped {request.failures} connections in a row right after "
                        f"the subscription, as the venue does with bad credentials (api key "
                        f"{self.session.credentials.api_key[:4]}...)",
                        url=self.ws_url,
                    )
                )
            elif type(request) is ReconcileRequested and self.http is not None:
                if self._reconciling:  # a reconnection during a reconciliation: once more after it
                    self._reconcile_again = True
                else:
                    self._reconciling = True
                    self._spawn(self._reconcile())

    def _give_up(self, error: Exception) -> None:
        log.error("user connection %d: %s", self.session.connection_id, error)
        self.error = error
        if self._transport is not None:
            self._transport.disconnect()

    async def _reconcile(self) -> None:
        try:
            while True:
                self._reconcile_again = False
                await self._reconcile_once()
                if not self._reconcile_again or self.error is not None:
                    return
        finally:
            self._reconciling = False

    async def _reconcile_once(self) -> None:
        assert self.http is not None
        session = self.session
        credentials = session.credentials
        for attempt in range(_RECONCILE_TRIES):
            try:
                open_orders = await fetch_open_orders(
                    self.http, self.rest_url, credentials, self.address, session.markets
                )
                trades = await fetch_trades(
                    self.http, self.rest_url, credentials, self.address, session.markets
                )
                looked_up = []
                for order_id in session.orders_to_look_up((o.id for o in open_orders), trades):
                    order = await fetch_order(self.http, self.rest_url, credentials, order_id, self.address)
                    if order is None:
                        log.warning("user connection: the venue does not know order %s", order_id)
                    else:
                        looked_up.append(order)
                break
            except AuthenticationError as exc:
                self._give_up(exc)
                return
            except (aiohttp.ClientError, TimeoutError, PolyfeedError) as exc:
                delay = self.backoff.delay_s(attempt + 1, self._rng)
                log.warning("user connection: reconciliation failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        else:
            # Not retried on every message (a storm of REST calls); the next reconnection tries again.
            log.error("user connection: reconciliation gave up after %d tries", _RECONCILE_TRIES)
            return
        self.reconciliations += 1
        self.inputs.reconcile(open_orders, looked_up, trades, time.time_ns())
        self._flush()
