"""Exact price and size text: Polymarket decimals mapped to integer ladder keys, never to floats.

Every Polymarket tick (0.1, 0.01, 0.001, 0.0001, 0.0025) is a multiple of 0.0001, so a valid price
maps exactly to an integer key in ``[0, 10000]`` (design section 3). Price text is parsed once and
cached: a busy stream repeats a few hundred distinct price strings, so the hot path costs one dict
lookup. Sizes stay text (the hash hashes the text) and become ``Decimal`` only when a caller asks.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from operator import methodcaller

from polyfeed.errors import InvalidLevelError

__all__ = [
    "LEVEL_HEADS",
    "PRICE_SCALE",
    "key_to_decimal",
    "level_head",
    "price_key",
    "size_is_valid",
    "size_is_zero",
    "sizes_are_valid",
    "text_to_decimal",
    "trade_price_text",
]

PRICE_SCALE = 10_000
"""Ladder keys are prices in units of 0.0001."""

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_CACHE_LIMIT = 200_000

_DECIMALS: dict[str, Decimal] = {}

_HEAD_OPEN = '"},{"price":"'
_HEAD_CLOSE = '","size":"'
HEAD_PRICE = slice(len(_HEAD_OPEN), -len(_HEAD_CLOSE))
"""``head[HEAD_PRICE]`` is the price text of a level head."""

LEVEL_HEADS: dict[str, tuple[int, int, str]] = {}
"""Price text -> ``(key, -key, head)`` for every valid price text seen so far (the one cache of
parsed prices), read directly on hot paths. The head is the level's JSON up to its size,
``"},{"price":"0.3","size":"`` (the first three characters close the level before it): a side keeps
its levels as heads and size texts, one shared head object per price, so a level costs its size text
and three pointers, and the side's hashed JSON is one join (:class:`polyfeed.book.ladder.Side`). The
negated key is shared too, for the asks."""


def level_head(text: str) -> tuple[int, int, str]:
    """``(key, -key, head)`` of a price text (:data:`LEVEL_HEADS`), validated and cached.

    Raises:
        InvalidLevelError: not a plain decimal, outside ``[0, 1]`` or finer than 0.0001.
    """
    head = LEVEL_HEADS.get(text)
    if head is None:
        if not isinstance(text, str) or not _NUMBER.fullmatch(text):
            raise InvalidLevelError(f"price {text!r} is not a plain decimal")
        scaled = Decimal(text) * PRICE_SCALE
        if scaled > PRICE_SCALE:
            raise InvalidLevelError(f"price {text!r} is above 1")
        key = int(scaled)
        if key != scaled:
            raise InvalidLevelError(f"price {text!r} is finer than 0.0001, the finest Polymarket tick")
        head = (key, -key, _HEAD_OPEN + text + _HEAD_CLOSE)
        if len(LEVEL_HEADS) < _CACHE_LIMIT:
            LEVEL_HEADS[text] = head
    return head


def price_key(text: str) -> int:
    """The ladder key of a price text (``"0.301"`` -> 3010).

    Raises:
        InvalidLevelError: not a plain decimal, outside ``[0, 1]`` or finer than 0.0001.
    """
    head = LEVEL_HEADS.get(text)
    return head[0] if head is not None else level_head(text)[0]


_TRADE_TEXTS: dict[str, str] = {"": ""}


def trade_price_text(text: str) -> str:
    """The last trade price as the venue hashes it: at least 3 decimals (``"0.49"`` -> ``"0.490"``,
    ``"0.5"`` -> ``"0.500"``, ``"0.585"`` and ``"0.4905"`` unchanged), ``""`` for a book that never
    traded, whatever text the print or the snapshot carried.

    Why (spec 7.3, verified on real captures): initial books and REST ``/book`` carry the price with 3
    decimals, ``last_trade_price`` events carry it trimmed, and after a print at ``"0.49"`` the venue's
    next hashes reproduce only with ``"0.490"``. Finer ticks are unseen on the wire: every significant
    digit beyond the third is kept.

    Raises:
        InvalidLevelError: not a plain decimal in ``[0, 1]`` on the 0.0001 grid.
    """
    normal = _TRADE_TEXTS.get(text)
    if normal is None:
        key = price_key(text)
        digits = f"{key // PRICE_SCALE}.{key % PRICE_SCALE:04d}"
        normal = digits[:-1] if digits.endswith("0") else digits
        if len(_TRADE_TEXTS) < _CACHE_LIMIT:
            _TRADE_TEXTS[text] = normal
    return normal


def size_is_valid(text: str) -> bool:
    """Whether a size text is a plain non-negative decimal (``"219.217767"``; not ``"-5"``, ``"1e3"``).

    Two C-level string checks (about 75 ns) instead of a regex (about 170 ns): it runs on every change.
    """
    return text.isascii() and text.replace(".", "", 1).isdigit()


_drop_one_dot = methodcaller("replace", ".", "", 1)


def sizes_are_valid(texts: list[str]) -> bool:
    """:func:`size_is_valid` for every text of a snapshot side, without a Python-level loop."""
    return "".join(texts).isascii() and all(map(str.isdigit, map(_drop_one_dot, texts)))


def size_is_zero(text: str) -> bool:
    """Whether a valid size text means zero (the venue sends ``"0"``; ``"0.00"`` means the same)."""
    return text == "0" or (text[:1] in "0." and not text.strip("0."))


def text_to_decimal(text: str) -> Decimal:
    """``Decimal`` of a price or size text, cached for price texts (they repeat)."""
    value = _DECIMALS.get(text)
    if value is None:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise InvalidLevelError(f"{text!r} is not a decimal") from None
        if len(_DECIMALS) < _CACHE_LIMIT:
            _DECIMALS[text] = value
    return value


def key_to_decimal(key: int) -> Decimal:
    """The price of a ladder key (3010 -> ``Decimal("0.301")``)."""
    return (Decimal(key) / PRICE_SCALE).normalize() if key else Decimal(0)
