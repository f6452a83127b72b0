"""What ``publish`` and ``watch --nats`` / ``stream --nats`` share: the NATS options, the targets a
fan-out knows (token ids), and a first look at the NATS server that fails in one line.

A fan-out names its books by token id (``polyfeed.book.<condition_id>.<token_id>``, :mod:`polyfeed.fanout`):
with ``--nats`` the targets are token ids, or ``--all`` for every book the collectors publish, and the
venue's options (``--local``, ``--ws-url``...) and ``--all``'s filters have nothing to choose, so they are
refused rather than ignored.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from polyfeed.cli.options import url_check
from polyfeed.fanout.jetstream import connect, require_jetstream
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
_nats_url = url_check(NATS_SCHEMES, "a NATS URL (nats://HOST:4222)")


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


_VENUE_OPTIONS = {
    "ws_url": "--ws-url",
    "rest_url": "--rest-url",
    "gamma_url": "--gamma-url",
    "local": "--local",
    "tag": "--tag",
    "min_volume": "--min-volume",
    "ends_after": "--ends-after",
    "ends_before": "--ends-before",
    "no_cache": "--no-cache",
}
"""The options that choose a venue or filter its markets (parameter name -> option): refused with
``--nats``, whose books the collectors chose."""


_UNSET = (None, False)


def nats_targets(context: typer.Context, targets: list[str] | None, all_markets: bool) -> list[str] | None:
    """The token ids to read from a fan-out (``None``: every book, ``--all``).

    Args:
        context: the command's (its venue options and filters are refused: none has a value but the
            default ``None`` or ``False`` unless given).
        targets: the command's targets.
        all_markets: ``--all``.

    Raises:
        typer.BadParameter: a venue's option or a filter given, a slug or URL among the targets, targets
            and ``--all`` together, or neither.
    """
    given = [option for name, option in _VENUE_OPTIONS.items() if context.params.get(name) not in _UNSET]
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
    command starts anything (a local exchange, say), for a collector and a consumer alike.

    Raises:
        FanoutError: nats-py missing, nothing answers at ``url`` within ``timeout_s``, or no JetStream.
    """
    wait_s = min(timeout_s, 5.0) if timeout_s else 5.0
    client = await connect(url, name="polyfeed-check", connect_timeout_s=wait_s)
    try:
        await require_jetstream(client, url, timeout_s=wait_s)
    finally:
        await client.close()
