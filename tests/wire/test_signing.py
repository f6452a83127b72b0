"""L2 signing against the published test vectors (spec 8.3)."""

from __future__ import annotations

import pytest

from polyfeed.wire import Credentials
from polyfeed.wire.signing import l2_headers, sign_l2, verify_l2

SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        ('{"hash": "0x123"}', "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="),  # py-clob-client
        ('{"hash":"0x123"}', "4gJVbox-R6XlDK4nlaicig0_ANVL1qdcahiL8CXfXLM="),  # rs-clob-client
    ],
)
def test_published_vectors(body: str, signature: str) -> None:
    assert sign_l2(SECRET, "1000000", "test-sign", "/orders", body) == signature


def test_headers_verify_and_any_change_breaks_them() -> None:
    credentials = Credentials("key-1", SECRET, "pass")
    headers = l2_headers(credentials, "0xabc", "1700000000", "GET", "/data/orders")
    assert verify_l2(credentials, headers, "GET", "/data/orders")
    assert not verify_l2(credentials, headers, "GET", "/data/trades")
    assert not verify_l2(credentials, {**headers, "POLY_TIMESTAMP": "1700000001"}, "GET", "/data/orders")
    assert not verify_l2(Credentials("key-1", SECRET, "other"), headers, "GET", "/data/orders")


def test_a_secret_that_is_not_base64url_is_refused() -> None:
    with pytest.raises(ValueError, match="base64url"):
        sign_l2("not base64!", "1", "GET", "/x")
