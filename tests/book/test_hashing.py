"""The book hash: py-clob-client's published vectors and each historical field set."""

from __future__ import annotations

import hashlib
import json

from polyfeed.book import HashVariant, book_hash, level_fragment

VECTOR = {
    "market": "0xaabbcc",
    "asset_id": "100",
    "timestamp": "123456789",
    "bid_fragments": [level_fragment("0.3", "100"), level_fragment("0.4", "100")],
    "ask_fragments": [level_fragment("0.6", "100"), level_fragment("0.7", "100")],
    "min_order_size": "100",
    "tick_size": "0.01",
    "neg_risk": False,
    "last_trade_price": "0.5",
}


def test_published_vector() -> None:
    """py-clob-client tests/test_utilities.py (spec 7.1)."""
    assert book_hash(**VECTOR) == "0458ea5755c9f73d64a14636fa5c36ed460ec394"  # type: ignore[arg-type]


def test_published_vector_with_empty_book_and_timestamp() -> None:
    vector = {**VECTOR, "timestamp": "", "bid_fragments": [], "ask_fragments": []}
    assert book_hash(**vector) == "74c6a7c81c1d572f1c877b7d3e25b80c336d8a6e"  # type: ignore[arg-type]


def test_each_variant_hashes_its_own_field_set_in_server_order() -> None:
    base = {
        "market": "0xaabbcc",
        "asset_id": "100",
        "timestamp": "123456789",
        "hash": "",
        "bids": [{"price": "0.3", "size": "100"}, {"price": "0.4", "size": "100"}],
        "asks": [{"price": "0.6", "size": "100"}, {"price": "0.7", "size": "100"}],
    }
    extra_2025 = {"min_order_size": "100", "tick_size": "0.01", "neg_risk": False}
    expected = {
        HashVariant.V2024: base,
        HashVariant.V2025_10: {**base, **extra_2025},
        HashVariant.CURRENT: {**base, **extra_2025, "last_trade_price": "0.5"},
    }
    for variant, obj in expected.items():
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        assert book_hash(**VECTOR, variant=variant) == hashlib.sha1(text.encode()).hexdigest(), variant  # type: ignore[arg-type]


def test_neg_risk_is_a_json_boolean() -> None:
    assert book_hash(**{**VECTOR, "neg_risk": True}) != book_hash(**VECTOR)  # type: ignore[arg-type]
