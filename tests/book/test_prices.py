"""Price text to ladder keys, size text validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from polyfeed.book.prices import key_to_decimal, price_key, size_is_valid, size_is_zero, sizes_are_valid
from polyfeed.errors import InvalidLevelError


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("0.301", 3010),
        ("0.3", 3000),
        ("0.30", 3000),
        ("0.0025", 25),
        ("1", 10000),
        ("0", 0),
        ("0.9999", 9999),
    ],
)
def test_price_keys_are_exact(text: str, key: int) -> None:
    assert price_key(text) == key
    assert key_to_decimal(key) == Decimal(text)


@pytest.mark.parametrize("text", ["0.00005", "1.0001", "-0.1", "abc", "", "1e-2", "NaN", "0x1", " 0.3"])
def test_invalid_prices_are_refused(text: str) -> None:
    with pytest.raises(InvalidLevelError):
        price_key(text)


@pytest.mark.parametrize("text", ["5", "219.217767", "0", "0.00", ".5", "5."])
def test_valid_sizes(text: str) -> None:
    assert size_is_valid(text)
    assert sizes_are_valid([text, "1"])


@pytest.mark.parametrize("text", ["-5", "1e3", "", "1.2.3", "abc", "５", "1 "])
def test_invalid_sizes(text: str) -> None:
    assert not size_is_valid(text)
    assert not sizes_are_valid(["1", text])


def test_zero_sizes() -> None:
    assert size_is_zero("0") and size_is_zero("0.00") and size_is_zero("0.")
    assert not size_is_zero("0.5") and not size_is_zero("10")
