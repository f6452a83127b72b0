"""Prices and sizes as the venue writes them (spec section 6)."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["SCALE", "price_text", "size_text"]

SCALE = 10_000  # ladder keys in units of 0.0001, as in polyfeed.book


def price_text(key: int) -> str:
    """A ladder key as the venue writes a price: trimmed (``"0.3"``, ``"0.301"``)."""
    text = f"{key // SCALE}.{key % SCALE:04d}".rstrip("0")
    return text[:-1] if text.endswith(".") else text


def size_text(size: Decimal) -> str:
    """A size as the venue writes it: no exponent, no trailing zeros (``"45.83"``, ``"5"``, ``"0"``)."""
    if size == 0:
        return "0"
    text = f"{size:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
