"""Every exception polyfeed raises, in one tree.

::

    PolyfeedError
    ├── FrameDecodeError            a frame from the wire could not be decoded (keeps the raw frame)
    ├── SubscriptionError           a subscription request polyfeed refuses to send
    │   └── SubscriptionLimitError  more assets on one connection than the venue serves (500)
    ├── AuthenticationError         the user channel or an L2 REST call rejected the credentials
    ├── ConnectError                the venue refused the WebSocket (HTTP 4xx, or no connection at all)
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
    """The venue rejected the API credentials (on the user channel: a dropped connection, spec 5.3)."""


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
