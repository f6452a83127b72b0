"""L2 request signing: the HMAC headers of Polymarket's authenticated REST calls (spec 8.3).

``message = timestamp + METHOD + request_path + body`` (the body only when there is one), signed with
HMAC-SHA256 under the base64url-decoded secret, and base64url-encoded with its ``=`` padding. The path
excludes the query string (the official Rust client signs ``url.path()``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from polyfeed.wire.requests import Credentials

__all__ = ["l2_headers", "sign_l2", "verify_l2"]


def sign_l2(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """The ``POLY_SIGNATURE`` of one request.

    Raises:
        ValueError: a secret that is not base64url.
    """
    try:
        key = base64.urlsafe_b64decode(secret)
    except (ValueError, TypeError) as exc:
        raise ValueError("the API secret is not base64url") from exc
    message = f"{timestamp}{method}{request_path}{body}"  # the method as given, like the reference clients
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def l2_headers(
    credentials: Credentials, address: str, timestamp: str, method: str, request_path: str, body: str = ""
) -> dict[str, str]:
    """The five ``POLY_*`` headers; ``timestamp`` is Unix seconds as text."""
    return {
        "POLY_ADDRESS": address,
        "POLY_SIGNATURE": sign_l2(credentials.secret, timestamp, method, request_path, body),
        "POLY_TIMESTAMP": timestamp,
        "POLY_API_KEY": credentials.api_key,
        "POLY_PASSPHRASE": credentials.passphrase,
    }


def verify_l2(
    credentials: Credentials, headers: dict[str, str], method: str, request_path: str, body: str = ""
) -> bool:
    """Whether a request's ``POLY_*`` headers were signed with these credentials (constant-time)."""
    try:
        expected = sign_l2(credentials.secret, headers.get("POLY_TIMESTAMP", ""), method, request_path, body)
    except ValueError:
        return False
    return (
        hmac.compare_digest(headers.get("POLY_API_KEY", ""), credentials.api_key)
        and hmac.compare_digest(headers.get("POLY_PASSPHRASE", ""), credentials.passphrase)
        and hmac.compare_digest(headers.get("POLY_SIGNATURE", ""), expected)
    )
