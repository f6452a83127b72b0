"""Connecting to NATS and setting up the fan-out's stream and key-value bucket, with clear errors.

``nats-py`` is an optional dependency (``pip install 'polyfeed[nats]'``): it is imported here, when the
fan-out is used, and its absence is one clear error.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyfeed.errors import PolyfeedError
from polyfeed.fanout.schema import bucket_name, subject_prefix

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["FanoutError", "StreamLayout", "connect", "ensure_layout", "require_jetstream"]

log = logging.getLogger("polyfeed.fanout")

DUPLICATE_WINDOW_S = 120.0
"""How long JetStream remembers a message id: two collectors of a shard may publish a message this far
apart and it is still stored once."""


_FIRST_CONNECT_ATTEMPTS = 3
_OUTAGE_LOG_S = 30.0
"""Tries of the first connection before the address counts as unreachable."""


class FanoutError(PolyfeedError):
    """The fan-out cannot run: NATS unreachable, a stream configured otherwise, nats-py missing."""


@dataclass(frozen=True)
class StreamLayout:
    """Where a fan-out's messages live: the stream, its subjects' prefix and the snapshots' bucket."""

    stream: str = "POLYFEED"

    @property
    def prefix(self) -> str:
        return subject_prefix(self.stream)

    @property
    def bucket(self) -> str:
        return bucket_name(self.stream)

    @property
    def subjects(self) -> list[str]:
        return [f"{self.prefix}.book.>"]

    def kv_subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"


def _nats() -> Any:
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise FanoutError("the NATS fan-out needs nats-py: pip install 'polyfeed[nats]'") from exc
    return nats


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout_s: float = 2.0,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """A NATS connection that reconnects for ever once made.

    Raises:
        FanoutError: nothing answers at ``url`` (one line naming it), or the URL is not a NATS URL.
    """
    nats = _nats()
    if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
        raise FanoutError(f"{url!r} is not a NATS URL (nats://HOST:4222)")

    connected = False
    first_errors: list[Exception] = []
    last_logged = [0.0]

    async def error_cb(exc: Exception) -> None:
        # Before the first connection, the one error raised below says it (from the last try's error:
        # nats-py's own is only "no servers available"); during an outage, nats-py retries every 0.5 s:
        # one line every 30 s says it is still away.
        if not connected:
            first_errors.append(exc)
            return
        now = time.monotonic()
        if now - last_logged[0] >= _OUTAGE_LOG_S:
            last_logged[0] = now
            log.warning("NATS %s: %s (retrying every 0.5 s)", url, exc or type(exc).__name__)

    async def nothing() -> None:
        return None

    try:
        client: Client = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout_s,
            allow_reconnect=True,
            max_reconnect_attempts=_FIRST_CONNECT_ATTEMPTS,
            reconnect_time_wait=0.5,
            error_cb=error_cb,
            disconnected_cb=on_disconnected or nothing,
            reconnected_cb=on_reconnected or nothing,
        )
    except Exception as exc:  # nats-py raises NoServersError, OSError, TimeoutError ...
        why = _why(first_errors[-1] if first_errors else exc, connect_timeout_s)
        raise FanoutError(f"cannot reach NATS at {url}: {why}") from None
    # Once connected, a connection lost is tried again for ever (nats-py reads the option at each try).
    client.options["max_reconnect_attempts"] = -1
    connected = True
    return client


def _why(exc: BaseException, wait_s: float) -> str:
    """A connection failure in words: ``connection refused``, a name that does not resolve, ..."""
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # "connection refused", as a venue's is said
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
        return f"no answer within {wait_s:g} s"
    return " ".join(str(exc).split()) or type(exc).__name__


_NO_JETSTREAM = frozenset({"ServiceUnavailableError", "NoRespondersError", "NoStreamResponseError"})


async def require_jetstream(client: Client, url: str, *, timeout_s: float = 5.0) -> JetStreamContext:
    """The server's JetStream, asked once, for collectors and consumers alike.

    Raises:
        FanoutError: the server runs without JetStream (``nats-server -js``), or does not answer.
    """
    js = client.jetstream(timeout=timeout_s)
    try:
        await js.account_info()
    except Exception as exc:
        # nats-py's ServiceUnavailableError (no JetStream) says nothing more in its text
        detail = "" if type(exc).__name__ in _NO_JETSTREAM else f": {_why(exc, timeout_s)}"
        raise FanoutError(
            f"NATS at {url} answers but JetStream does not (is the server run with -js?){detail}"
        ) from None
    return js


def check_subjects(info: Any, layout: StreamLayout, way_out: str) -> None:
    """That the stream ``info`` describes carries a fan-out's subjects.

    Raises:
        FanoutError: it has others (the message names both, and ``way_out``, where ``{stream}`` is its
            name).
    """
    subjects = list(info.config.subjects or [])
    if subjects != layout.subjects:
        raise FanoutError(
            f"a JetStream stream named {layout.stream} exists with subjects {subjects}, not "
            f"{layout.subjects}: {way_out.format(stream=layout.stream)}"
        )


async def ensure_layout(js: JetStreamContext, layout: StreamLayout, *, max_age_s: float) -> None:
    """Create the stream and the bucket if missing; accept them as they are if they carry the expected
    subjects (a retention changed by an operator is theirs to choose). JetStream is known to answer
    (:func:`require_jetstream`).

    Raises:
        FanoutError: a stream of that name exists with other subjects (the message names both and the
            way out), or JetStream refused to create it.
    """
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(layout.stream)
    except NotFoundError:
        info = None
    if info is None:
        try:
            await js.add_stream(
                api.StreamConfig(
                    name=layout.stream,
                    description="polyfeed: Polymarket books, changes and trades (docs/fanout.md)",
                    subjects=layout.subjects,
                    storage=api.StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW_S,
                    max_age=max_age_s,
                    discard=api.DiscardPolicy.OLD,
                )
            )
        except Exception as exc:  # nats-py's APIError: subjects another stream takes, limits, ...
            raise FanoutError(f"JetStream refused to create the stream {layout.stream}: {exc}") from exc
        log.info("created the JetStream stream %s (%s)", layout.stream, ", ".join(layout.subjects))
    else:
        check_subjects(info, layout, "name another with --stream, or delete it (nats stream rm {stream})")
        window = float(info.config.duplicate_window or 0)
        if window < DUPLICATE_WINDOW_S:
            # Shorter, and two collectors of a shard store a message twice when one is late by more.
            log.warning(
                "the stream %s keeps message ids %g s, less than the %g s polyfeed asks: two collectors of "
                "one shard may store a message twice",
                layout.stream,
                window,
                DUPLICATE_WINDOW_S,
            )
    try:
        await js.key_value(layout.bucket)
    except Exception:  # BucketNotFoundError: created now
        await js.create_key_value(
            api.KeyValueConfig(bucket=layout.bucket, history=1, storage=api.StorageType.FILE)
        )
