"""Frames the client sends: the initial subscription of each channel, and ``operation`` frames.

Spec 1.2 and 1.3: the first text frame must be the subscription (note the spelling ``assets_ids``); a
second ``type`` frame gets ``INVALID OPERATION``, so later changes use ``operation`` frames, which the
venue never acknowledges. polyfeed always sends ``initial_dump: true`` by default, because without it
some assets never get a snapshot when thousands are subscribed (spec 1.2, [I-NT3963]).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

__all__ = [
    "PING",
    "Credentials",
    "encode_market_subscription",
    "encode_operation",
    "encode_user_subscription",
]

PING = b"PING"
"""The text heartbeat; the venue answers ``PONG`` (spec 2). Never send it before the subscription."""

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Credentials:
    """L2 API credentials for the user channel and signed REST calls.

    The secret and passphrase never appear in ``repr`` or ``str``; only the first characters of the key do.
    """

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key[:4]!r}..., secret=<redacted>, passphrase=<redacted>)"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read ``POLYMARKET_API_KEY``, ``POLYMARKET_API_SECRET`` and ``POLYMARKET_API_PASSPHRASE``.

        Raises:
            KeyError: naming the first variable that is missing or empty (never its value).
        """
        env = os.environ if environ is None else environ
        values = []
        for name in ("POLYMARKET_API_KEY", "POLYMARKET_API_SECRET", "POLYMARKET_API_PASSPHRASE"):
            value = env.get(name, "")
            if not value:
                raise KeyError(f"{name} is not set")
            values.append(value)
        return cls(*values)

    def as_auth(self) -> dict[str, str]:
        """The ``auth`` object of the user subscription (spec 1.2)."""
        return {"apiKey": self.api_key, "secret": self.secret, "passphrase": self.passphrase}


def encode_market_subscription(
    assets_ids: Iterable[str],
    *,
    initial_dump: bool = True,
    custom_feature_enabled: bool = False,
    level: int | None = None,
) -> bytes:
    """The first frame of a market connection.

    >>> encode_market_subscription(["123"])
    b'{"type":"market","assets_ids":["123"],"initial_dump":true,"custom_feature_enabled":false}'
    """
    body: dict[str, Any] = {
        "type": "market",
        "assets_ids": list(assets_ids),
        "initial_dump": initial_dump,
        "custom_feature_enabled": custom_feature_enabled,
    }
    if level is not None:
        body["level"] = level
    return _ENCODER.encode(body)


def encode_user_subscription(
    credentials: Credentials,
    markets: Iterable[str] = (),
    *,
    initial_dump: bool = True,
) -> bytes:
    """The first frame of a user connection; ``markets`` (condition ids) empty means all of them.

    The frame holds the raw secret, as the venue requires: send it, never log or record it.
    """
    body = {
        "type": "user",
        "markets": list(markets),
        "auth": credentials.as_auth(),
        "initial_dump": initial_dump,
    }
    return _ENCODER.encode(body)


def encode_operation(
    operation: Literal["subscribe", "unsubscribe"],
    *,
    assets_ids: Iterable[str] | None = None,
    markets: Iterable[str] | None = None,
    custom_feature_enabled: bool | None = None,
    initial_dump: bool | None = None,
) -> bytes:
    """An in-place subscribe or unsubscribe after the first frame (spec 1.3); no reply comes back.

    >>> encode_operation("unsubscribe", assets_ids=["123"])
    b'{"operation":"unsubscribe","assets_ids":["123"]}'
    """
    if operation not in ("subscribe", "unsubscribe"):
        raise ValueError(f"operation must be 'subscribe' or 'unsubscribe', not {operation!r}")
    if assets_ids is None and markets is None:
        raise ValueError("an operation needs assets_ids (market channel) or markets (user channel)")
    body: dict[str, Any] = {"operation": operation}
    if assets_ids is not None:
        body["assets_ids"] = list(assets_ids)
    if markets is not None:
        body["markets"] = list(markets)
    if custom_feature_enabled is not None:
        body["custom_feature_enabled"] = custom_feature_enabled
    if initial_dump is not None:
        body["initial_dump"] = initial_dump
    return _ENCODER.encode(body)
