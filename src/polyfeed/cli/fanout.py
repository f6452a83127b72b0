"""What ``publish`` and ``watch --nats`` / ``stream --nats`` share: the NATS options, the targets a
fan-out knows (token ids), and a first look at the NATS server that fails in one line.

A fan-out names its books by token id (``polyfeed.book.<condition_id>.<token_id>``, :mod:`polyfeed.fanout`):
with ``--nats`` the targets are token ids, or ``--all`` for every book the collectors publish, and the
venue's options (``--local``, ``--ws-url``...) and ``--all``'s filters have nothing to choose, so they are
refused rather than ignored.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from polyfeed.fanout import FanoutError
from polyfeed.fanout.schema import subject_prefix
from polyfeed.net.gamma import is_token_id

__all__ = [
    "NATS_PANEL",
    "Durable",
    "JetStreamName",
    "NatsSource",
    "NatsUrl",
    "check_nats",
    "nats_targets",
    "nats_where",
]

NATS_PANEL = "NATS fan-out"
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_NO_JETSTREAM = frozenset({"ServiceUnavailableError", "NoRespondersError"})


def _nats_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in NATS_SCHEMES or not parsed.hostname:
        raise typer.BadParameter(f"{value!r} is not a NATS URL (nats://HOST:4222)")
    try:
        parsed.port  # noqa: B018 - reading it validates it
    except ValueError:
        raise typer.BadParameter(f"{value!r} has a bad port") from None
    return value


def _stream_name(value: str) -> str:
    try:
        subject_prefix(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def _durable_name(value: str | None) -> str | None:
    if value is not None and not _CONSUMER_NAME.match(value):
        raise typer.BadParameter(f"consumer name {value!r}: use letters, digits, '_' and '-' only")
    return value


NatsUrl = Annotated[
    str,
    typer.Option(
        "--nats",
        metavar="URL",
        help="The NATS server to publish to (nats://HOST:4222), run with JetStream (nats-server -js).",
        callback=_nats_url,
        show_default=False,
        rich_help_panel=NATS_PANEL,
    ),
]
NatsSource = Annotated[
    str | None,
    typer.Option(
        "--nats",
        metavar="URL",
        help="Read the books from the fan-out on this NATS server (nats://HOST:4222), which `polyfeed "
        "publish` fills, instead of from the venue: give token ids, or --all for every book published.",
        callback=_nats_url,
        show_default=False,
        rich_help_panel=NATS_PANEL,
    ),
]
JetStreamName = Annotated[
    str,
    typer.Option(
        "--stream",
        metavar="NAME",
        help="The fan-out's JetStream stream (POLYFEED: subjects polyfeed.book.>, snapshots in the "
        "key-value bucket POLYFEED_books).",
        callback=_stream_name,
        rich_help_panel=NATS_PANEL,
    ),
]
Durable = Annotated[
    str | None,
    typer.Option(
        "--durable",
        metavar="NAME",
        help="With --nats, a durable JetStream consumer of this name: run again with the same name, it "
        "goes on where the last run stopped instead of starting from the bucket's snapshots.",
        callback=_durable_name,
        show_default=False,
        rich_help_panel=NATS_PANEL,
    ),
]


def nats_targets(targets: list[str] | None, all_markets: bool, refused: dict[str, bool]) -> list[str] | None:
    """The token ids to read from a fan-out (``None``: every book, ``--all``).

    Args:
        targets: the command's targets.
        all_markets: ``--all``.
        refused: the options that choose a venue or filter its markets, by name: whether each was given.

    Raises:
        typer.BadParameter: a venue's option or a filter given, a slug or URL among the targets, targets
            and ``--all`` together, or neither.
    """
    given = [name for name, present in refused.items() if present]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply with --nats: the books "
            "come from the collectors (polyfeed publish), which chose the venue and the markets"
        )
    if all_markets:
        if targets:
            raise typer.BadParameter("--all reads every book the collectors publish: give no markets with it")
        return None
    if not targets:
        raise typer.BadParameter("give token ids to follow, or --all for every book the collectors publish")
    for target in targets:
        if not is_token_id(target):
            raise typer.BadParameter(
                f"{target!r} is not a token id: with --nats give token ids (all digits; `polyfeed markets "
                f"{target}` lists a market's), or --all"
            )
    return list(targets)


def nats_where(url: str, stream: str) -> str:
    """How a fan-out is named in messages: ``NATS at nats://HOST:4222 (stream POLYFEED)``."""
    return f"NATS at {url} (stream {stream})"


async def check_nats(url: str, timeout_s: float) -> None:
    """Connect to NATS once and ask for JetStream, so that a server that is not there, or runs without
    JetStream, is one line naming why (``connection refused``, a name that does not resolve) before the
    command starts anything, for a collector and a consumer alike.

    Raises:
        FanoutError: nats-py missing, nothing answers at ``url`` within ``timeout_s``, or no JetStream.
    """
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise FanoutError("the NATS fan-out needs nats-py: pip install 'polyfeed[nats]'") from exc

    errors: list[Exception] = []

    async def keep(exc: Exception) -> None:  # nats-py would log each failure: the line below says it
        errors.append(exc)

    wait_s = min(timeout_s, 5.0) if timeout_s else 5.0
    try:
        client: Any = await nats.connect(
            url,
            name="polyfeed-check",
            allow_reconnect=False,
            # nats-py tries a server on connecting until its reconnects pass this (0 or less: for ever)
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=wait_s,
            error_cb=keep,
        )
    except Exception as exc:  # nats' NoServersError after the tries, each one's error given to keep()
        why = _why(errors[-1] if errors else exc, wait_s)
        raise FanoutError(f"cannot reach NATS at {url}: {why}") from None
    try:
        await client.jetstream(timeout=wait_s).account_info()
    except Exception as exc:
        # nats-py's ServiceUnavailableError (no JetStream) says nothing more in its text
        detail = "" if type(exc).__name__ in _NO_JETSTREAM else f": {_why(exc, wait_s)}"
        raise FanoutError(
            f"NATS at {url} answers but JetStream does not (is the server run with -js?){detail}"
        ) from None
    finally:
        await client.close()


def _why(exc: BaseException, wait_s: float) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # "connection refused", as a venue's is said
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
        return f"no answer within {wait_s:g} s"
    return " ".join(str(exc).split()) or type(exc).__name__
