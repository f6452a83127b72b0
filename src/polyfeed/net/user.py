"""The user channel's driver: one :class:`polyfeed.session.user.UserSession` over a picows WebSocket,
with the REST reconciliation after every (re)connection and the end of the road for bad credentials."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import aiohttp
import msgspec

from polyfeed.errors import AuthenticationError, PolyfeedError
from polyfeed.net.connection import Backoff, FrameSink, SessionConnection
from polyfeed.net.rest import fetch_open_orders, fetch_order, fetch_trades
from polyfeed.record.format import REDACTED_API_KEY, Channel, RecordKind
from polyfeed.session import Event
from polyfeed.session.user import UserSession

__all__ = ["REDACTED_API_KEY", "UserConnection"]

_FRAME = int(RecordKind.FRAME)

log = logging.getLogger(__name__)
_RECONCILE_TRIES = 3


class UserConnection(SessionConnection[UserSession]):
    """A user-channel connection.

    Once the venue has confirmed a connection (its first ``PONG`` or message), it fetches your open
    orders, the orders it held open that the venue no longer lists, and your trades through L2-signed
    REST, and hands them to :meth:`UserSession.reconcile`. When the session counts
    ``max_auth_failures`` connections dropped before confirmation in a row, or REST answers 401, it stops
    for good: :meth:`run` raises :class:`polyfeed.errors.AuthenticationError`.

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

    channel = int(Channel.USER)

    def _scrub(self, payload: bytes) -> bytes:
        # The venue names your API key as the ``owner`` of your orders and fills; a recording must not
        # hold it (nor the secret or passphrase, which only the subscription carries).
        return payload.replace(self.session.credentials.api_key.encode(), REDACTED_API_KEY.encode())

    def _record_frame(self, payload: bytes, now_ns: int) -> None:
        assert self.recorder is not None
        self.recorder.write(_FRAME, self.channel, self.session.connection_id, now_ns, self._scrub(payload))

    def _redact(self, frame: bytes) -> bytes | None:
        """The subscription without its ``auth``: a recording never holds the secret or passphrase."""
        if frame == b"PING":
            return None
        try:
            body = msgspec.json.decode(frame)
        except msgspec.DecodeError:
            return None
        if isinstance(body, dict) and "auth" in body:
            body.pop("auth")
            return msgspec.json.encode(body)
        return self._scrub(frame)

    def _after_dispatch(self) -> None:
        session = self.session
        if self.error is None and session.auth_failures >= session.config.max_auth_failures:
            self._give_up(
                AuthenticationError(
                    f"the user channel dropped {session.auth_failures} connections in a row right after "
                    f"the subscription, as the venue does with bad credentials (api key "
                    f"{session.credentials.api_key[:4]}...)"
                )
            )
        if session.reconciliation_due and not self._reconciling and self.http is not None:
            self._reconciling = True
            self._spawn(self._reconcile())

    def _give_up(self, error: Exception) -> None:
        log.error("user connection %d: %s", self.session.connection_id, error)
        self.error = error
        if self._transport is not None:
            self._transport.disconnect()

    async def _reconcile(self) -> None:
        assert self.http is not None
        session = self.session
        credentials = session.credentials
        try:
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
                        order = await fetch_order(
                            self.http, self.rest_url, credentials, order_id, self.address
                        )
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
                session.reconciliation_due = False
                return
            self.reconciliations += 1
            now = time.time_ns()
            if self.recorder is not None:
                answer = {"reconcile": {"open_orders": open_orders, "looked_up": looked_up, "trades": trades}}
                payload = self._scrub(msgspec.json.encode(answer))
                self.recorder.write(int(RecordKind.REST), self.channel, session.connection_id, now, payload)
            self._dispatch(session.reconcile(open_orders, looked_up, trades, now))
        finally:
            self._reconciling = False
