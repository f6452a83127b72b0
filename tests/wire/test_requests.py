"""Subscription and operation frames, and credentials that never show their secret."""

from __future__ import annotations

import json

import pytest

from polyfeed.wire import Credentials, encode_market_subscription, encode_operation, encode_user_subscription

SECRET = "c2VjcmV0LXNob3VsZC1uZXZlci1zaG93"
PASSPHRASE = "f00dfacecafe"
CREDENTIALS = Credentials("1234abcd-api-key", SECRET, PASSPHRASE)


def test_market_subscription_is_exactly_the_venue_s_form() -> None:
    assert encode_market_subscription(["1", "2"]) == (
        b'{"type":"market","assets_ids":["1","2"],"initial_dump":true,"custom_feature_enabled":false}'
    )
    assert json.loads(encode_market_subscription(["1"], level=2, custom_feature_enabled=True)) == {
        "type": "market",
        "assets_ids": ["1"],
        "initial_dump": True,
        "custom_feature_enabled": True,
        "level": 2,
    }


def test_user_subscription_carries_the_raw_credentials() -> None:
    body = json.loads(encode_user_subscription(CREDENTIALS, ["0xabc"]))
    assert body == {
        "type": "user",
        "markets": ["0xabc"],
        "initial_dump": True,
        "auth": {"apiKey": "1234abcd-api-key", "secret": SECRET, "passphrase": PASSPHRASE},
    }


def test_operations() -> None:
    assert (
        encode_operation("unsubscribe", assets_ids=["1"]) == b'{"operation":"unsubscribe","assets_ids":["1"]}'
    )
    assert json.loads(encode_operation("subscribe", assets_ids=["1"], custom_feature_enabled=True)) == {
        "operation": "subscribe",
        "assets_ids": ["1"],
        "custom_feature_enabled": True,
    }
    assert json.loads(encode_operation("subscribe", markets=["0x1"])) == {
        "operation": "subscribe",
        "markets": ["0x1"],
    }


@pytest.mark.parametrize(
    "kwargs", [{"operation": "replace", "assets_ids": ["1"]}, {"operation": "subscribe"}]
)
def test_bad_operations_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="operation"):
        encode_operation(**kwargs)  # type: ignore[arg-type]


def test_credentials_never_show_the_secret() -> None:
    for text in (repr(CREDENTIALS), str(CREDENTIALS), f"{CREDENTIALS}", repr([CREDENTIALS])):
        assert SECRET not in text and PASSPHRASE not in text
        assert "1234" in text and "1234abcd-api-key" not in text, "only the key's first characters"


def test_credentials_from_environment() -> None:
    env = {
        "POLYMARKET_API_KEY": "k",
        "POLYMARKET_API_SECRET": SECRET,
        "POLYMARKET_API_PASSPHRASE": PASSPHRASE,
    }
    assert Credentials.from_env(env) == Credentials("k", SECRET, PASSPHRASE)
    del env["POLYMARKET_API_PASSPHRASE"]
    with pytest.raises(KeyError, match="POLYMARKET_API_PASSPHRASE") as error:
        Credentials.from_env(env)
    assert SECRET not in str(error.value)
