"""Where polyfeed connects: a venue's two WebSocket channels, its CLOB REST API and Gamma, as one value.

>>> Venue.polymarket().market_url
'wss://ws-subscriptions-clob.polymarket.com/ws/market'
>>> Venue.local("ws://127.0.0.1:8765").rest_url
'http://127.0.0.1:8765'

Streams and the command line take a :class:`Venue` (``MarketStream(ids, venue=sim.venue)``); the
Polymarket URLs are written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from polyfeed.errors import InvalidURLError

__all__ = ["HTTP_SCHEMES", "WS_SCHEMES", "Venue", "check_url"]

WS_SCHEMES = ("ws", "wss")
HTTP_SCHEMES = ("http", "https")


def check_url(url: str, schemes: tuple[str, ...], what: str) -> str:
    """``url`` if its scheme is one of ``schemes``; else :class:`polyfeed.errors.InvalidURLError` at once
    (an ``http://`` WebSocket URL would otherwise fail at every connect, forever)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes or not rest:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise InvalidURLError(f"{what} must be a {wanted} URL, not {url!r}")
    return url


# a local base URL's scheme -> (WebSocket scheme, HTTP scheme)
_LOCAL_SCHEMES = {
    "ws": ("ws", "http"),
    "http": ("ws", "http"),
    "wss": ("wss", "https"),
    "https": ("wss", "https"),
}


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue's URLs: each validated for its use when the value is made.

    Attributes:
        market_url: the market channel (``wss://.../ws/market``).
        user_url: the authenticated user channel (``wss://.../ws/user``).
        rest_url: the CLOB REST API (book metadata, resyncs, the user channel's reconciliation).
        gamma_url: Gamma, which turns slugs and polymarket.com URLs into token ids.

    Raises:
        InvalidURLError: a WebSocket URL not ``ws://``/``wss://``, or a REST or Gamma URL not
            ``http://``/``https://``.
    """

    market_url: str
    user_url: str
    rest_url: str
    gamma_url: str

    def __post_init__(self) -> None:
        check_url(self.market_url, WS_SCHEMES, "market_url")
        check_url(self.user_url, WS_SCHEMES, "user_url")
        check_url(self.rest_url, HTTP_SCHEMES, "rest_url")
        check_url(self.gamma_url, HTTP_SCHEMES, "gamma_url")

    @classmethod
    def polymarket(cls) -> Venue:
        """Polymarket's own venue."""
        return cls(
            market_url="wss://ws-subscriptions-clob.polymarket.com/ws/market",
            user_url="wss://ws-subscriptions-clob.polymarket.com/ws/user",
            rest_url="https://clob.polymarket.com",
            gamma_url="https://gamma-api.polymarket.com",
        )

    @classmethod
    def local(cls, base_url: str) -> Venue:
        """A venue serving everything under one base URL, as the local exchange does
        (``polyfeed sim``, :class:`polyfeed.sim.Simulator`): ``/ws/market`` and ``/ws/user`` on its
        WebSocket side, REST and Gamma on its HTTP side, on one port.

        ``base_url`` may be given either way: ``ws://127.0.0.1:8765`` and ``http://127.0.0.1:8765`` are
        the same venue (``wss://`` and ``https://`` the same with TLS). A path is kept as a prefix (a
        venue behind a proxy at ``https://host/polymarket``).

        Raises:
            InvalidURLError: not a ``ws``, ``wss``, ``http`` or ``https`` URL with a host, or one with
                a query or fragment.
        """
        parts = urlsplit(base_url)
        schemes = _LOCAL_SCHEMES.get(parts.scheme.lower())
        if schemes is None or not parts.netloc or parts.query or parts.fragment:
            raise InvalidURLError(
                f"a local venue's base URL must be a ws://, wss://, http:// or https:// URL with a host "
                f"and no query, not {base_url!r}"
            )
        ws, http = schemes
        base = parts.netloc + parts.path.rstrip("/")
        return cls(
            market_url=f"{ws}://{base}/ws/market",
            user_url=f"{ws}://{base}/ws/user",
            rest_url=f"{http}://{base}",
            gamma_url=f"{http}://{base}",
        )

    def with_urls(
        self,
        *,
        market_url: str | None = None,
        user_url: str | None = None,
        rest_url: str | None = None,
        gamma_url: str | None = None,
    ) -> Venue:
        """This venue with the URLs given in place of its own (``None``: keep this venue's).

        Raises:
            InvalidURLError: a URL given of the wrong scheme for its use.
        """
        return Venue(
            market_url=self.market_url if market_url is None else market_url,
            user_url=self.user_url if user_url is None else user_url,
            rest_url=self.rest_url if rest_url is None else rest_url,
            gamma_url=self.gamma_url if gamma_url is None else gamma_url,
        )
