"""Every exception polyfeed raises, in one tree.

::

    PolyfeedError
    ├── FrameDecodeError            a frame from the wire could not be decoded (keeps the raw frame)
    ├── SubscriptionError           a subscription request polyfeed refuses to send
    │   └── SubscriptionLimitError  more assets on one connection than the venue serves (500)
    ├── AuthenticationError         the user channel or an L2 REST call rejected the credentials (url, status)
    ├── ConnectError                the venue refused the WebSocket (HTTP 4xx, or no connection at all)
    ├── VenueError                  a REST or Gamma call answered with an error (keeps url and status)
    │   └── VenueUnreachableError   a REST or Gamma call got no answer (refused, unresolved, timed out)
    ├── InvalidURLError             a URL of the wrong scheme for its use (also a ValueError)
    ├── BookError                   a message that cannot be applied to an order book
    │   ├── InvalidLevelError       a price or size that is not a valid decimal (also a ValueError)
    │   └── AssetMismatchError      a message for another asset given to a book (also a ValueError)
    └── RecordingError              a recording that cannot be written or read
        └── RecordingFormatError    a recording in a format or version polyfeed does not know

Integrity *checks* on a book (top of book, hash, crossed sides, snapshot diffs) never raise: they are
counted and reported through the book's status, because a failed check is a fact about the venue's
stream, not a bug in the caller.
"""

from __future__ import annotations

__all__ = [
    "AssetMismatchError",
    "AuthenticationError",
    "BookError",
    "ConnectError",
    "FrameDecodeError",
    "InvalidLevelError",
    "InvalidURLError",
    "PolyfeedError",
    "RecordingError",
    "RecordingFormatError",
    "SubscriptionError",
    "SubscriptionLimitError",
    "VenueError",
    "VenueUnreachableError",
]

_RAW_PREVIEW_CHARS = 200


class PolyfeedError(Exception):
    """The root of every exception polyfeed raises."""


class FrameDecodeError(PolyfeedError):
    """A frame from the wire could not be decoded.

    Attributes:
        raw: the frame exactly as received, for the bug report.
        reason: what was wrong with it.
    """

    def __init__(self, reason: str, raw: bytes | str) -> None:
        self.reason = reason
        self.raw = raw
        preview = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if len(preview) > _RAW_PREVIEW_CHARS:
            preview = preview[:_RAW_PREVIEW_CHARS] + "..."
        super().__init__(f"{reason}; frame: {preview!r}")


class SubscriptionError(PolyfeedError):
    """A subscription request that polyfeed refuses to send."""


class SubscriptionLimitError(SubscriptionError):
    """More assets on one connection than the venue serves (about 500, spec 1.4)."""


class AuthenticationError(PolyfeedError):
    """The venue rejected the API credentials: an L2 REST call answered HTTP 401 or 403 (``url`` and
    ``status`` say which), or the user channel dropped its connections right after the subscription
    (spec 5.3; ``url`` the channel's when known, ``status`` ``None``: no HTTP answer said so).

    Args:
        message: what happened, in words (never the secret or passphrase).
        url: the URL called, without its query string.
        status: the HTTP status of the answer, if one said so.
    """

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class ConnectError(PolyfeedError):
    """The venue will not take the WebSocket: it rejected the handshake with an HTTP 4xx other than 429
    (a wrong path or host: retrying cannot help), or no connection could be made in the stream's first
    ``max_connect_attempts`` tries (refused, unreachable). Once a connection has been made, failures are
    retried for as long as the stream runs.

    Attributes:
        url: the WebSocket URL.
        status: the HTTP status of the rejected handshake (``None``: no answer at all).
        reason: what happened, as one line.
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class VenueError(PolyfeedError):
    """A call to the venue's CLOB REST API or Gamma failed: it answered with an error (an HTTP status
    other than the call expects, or a body that is not JSON), or, as :class:`VenueUnreachableError`,
    gave no answer at all. Raised by :class:`polyfeed.stream.MarketStream` (book metadata, slugs) and
    by the REST and Gamma helpers of :mod:`polyfeed.net`; no aiohttp exception leaves them.

    Attributes:
        url: the URL called, without its query string.
        status: the HTTP status of the answer (``None``: no answer).
        reason: what happened, as one line (``answered HTTP 503 Service Unavailable``).
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class VenueUnreachableError(VenueError):
    """A call to the venue's CLOB REST API or Gamma got no answer: the connection was refused or reset,
    the host name did not resolve, TLS failed, the answer was cut off, or none came in time. ``status``
    is ``None``; ``reason`` says which (``connection refused``)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)


class InvalidURLError(PolyfeedError, ValueError):
    """A URL that cannot serve its use: a WebSocket URL must be ``ws://`` or ``wss://``, a REST or Gamma
    URL ``http://`` or ``https://``."""


class BookError(PolyfeedError):
    """A message that cannot be applied to an order book."""


class InvalidLevelError(BookError, ValueError):
    """A price or size that is not a valid Polymarket decimal (negative, finer than 0.0001, not a number)."""


class AssetMismatchError(BookError, ValueError):
    """A snapshot or change for one asset given to another asset's book."""


class RecordingError(PolyfeedError):
    """A recording that cannot be written or read."""


class RecordingFormatError(RecordingError):
    """A recording in a format or version polyfeed does not know."""
