"""``--log-format json``: one JSON object a line on stderr, for a log collector (issue 17).

Each line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``, and where
the line is about one: ``connection`` (its number), ``channel`` (``market`` or ``user``) and ``asset``
(the token). polyfeed's own lines name these the same way (``connection %d: ...``, ``connection %d:
resync of %s ...``, ``connection %d: book %s ...``), so they are taken from the record's arguments;
a record given ``extra={"connection": ..., "asset": ...}`` is taken as it says. Nothing here adds
what the message does not hold: no line carries a credential, since no message does.
"""

from __future__ import annotations

import datetime
import enum
import logging
from typing import Any

import msgspec

__all__ = ["JsonFormatter", "LogFormat"]

_ASSET_AFTER = ("resync of %s", "book %s")
"""What follows ``connection %d: `` in the lines whose second argument is a token id."""


class LogFormat(enum.StrEnum):
    """How log lines are written on stderr."""

    TEXT = "text"
    JSON = "json"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_about(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def _about(record: logging.LogRecord) -> dict[str, Any]:
    """The connection, channel and asset a record is about, as far as it says."""
    about: dict[str, Any] = {}
    template, args = record.msg, record.args
    if isinstance(template, str) and isinstance(args, tuple) and args:
        for prefix, channel in (("connection %d: ", "market"), ("user connection %d: ", "user")):
            if template.startswith(prefix) and isinstance(args[0], int):
                about["connection"], about["channel"] = args[0], channel
                rest = template[len(prefix) :]
                if len(args) > 1 and isinstance(args[1], str) and rest.startswith(_ASSET_AFTER):
                    about["asset"] = args[1]
    for key in ("connection", "channel", "asset"):
        if key in record.__dict__:
            about[key] = record.__dict__[key]
    return about
