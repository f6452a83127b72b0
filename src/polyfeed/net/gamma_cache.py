"""Gamma's listing of the whole market on disk, so that a restart subscribes at once instead of waiting
for the walk of every page (about 15 s at 22,800 markets).

:class:`GammaCache` keeps one file per Gamma URL and filter (:class:`polyfeed.net.gamma.MarketFilter`)
under the user's cache directory: ``$POLYFEED_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyfeed``, else
``~/.cache/polyfeed``. A file is msgspec JSON, written whole to a temporary file beside it and renamed
over the old one (a reader never sees half a listing). A listing older than ``max_age_s`` (10 minutes
by default), written by another Gamma URL or filter, or that cannot be read or decoded, is not used:
the last two are logged once and skipped, never raised. A listing that cannot be written is logged and
the stream goes on without it.

A cached listing is only a head start: :class:`polyfeed.stream.universe.Universe` subscribes its
markets, walks Gamma at once, adds the markets that opened meanwhile and drops those gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import msgspec

from polyfeed.net.gamma import GammaMarket, MarketFilter

__all__ = ["DEFAULT_MAX_AGE_S", "GammaCache", "default_cache_dir"]

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 600.0
"""A listing older than this is walked again before anything is subscribed."""
_VERSION = 1


class _Listing(msgspec.Struct, frozen=True):
    version: int
    gamma_url: str
    market_filter: list[tuple[str, str]]
    written_s: float
    """Unix time the listing was written (its age counts from this, not from the file's mtime)."""
    markets: list[GammaMarket]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Listing)


def default_cache_dir() -> Path:
    """``$POLYFEED_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyfeed``, else ``~/.cache/polyfeed``."""
    own = os.environ.get("POLYFEED_CACHE_DIR")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "polyfeed"


class GammaCache:
    """Gamma's listing of open markets, kept on disk between runs.

    Args:
        directory: where listings are kept (``None``: :func:`default_cache_dir`); made when first written.
        max_age_s: a listing older than this is not used.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, max_age_s: float = DEFAULT_MAX_AGE_S
    ):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return f"GammaCache({str(self.directory)!r}, max_age_s={self.max_age_s:g})"

    def path(self, gamma_url: str, market_filter: MarketFilter) -> Path:
        """The file of this Gamma URL and filter's listing."""
        key = f"{_base(gamma_url)}\n{market_filter.params()!r}".encode()
        return self.directory / f"gamma-markets-{hashlib.sha256(key).hexdigest()[:20]}.json"

    def load(
        self, gamma_url: str, market_filter: MarketFilter, *, now_s: float | None = None
    ) -> list[GammaMarket] | None:
        """The listing written for this Gamma URL and filter, if it is younger than ``max_age_s``;
        ``None`` otherwise (absent, stale, written for another URL or filter, or unreadable: logged)."""
        path = self.path(gamma_url, market_filter)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.debug("no cached Gamma listing at %s", path)
            return None
        except OSError as exc:
            log.warning("cached Gamma listing %s cannot be read (%s): skipped", path, exc)
            return None
        try:
            listing = _decoder.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError is one too
            log.warning("cached Gamma listing %s is damaged (%s): skipped", path, exc)
            return None
        if (
            listing.version != _VERSION
            or listing.gamma_url != _base(gamma_url)
            or listing.market_filter != market_filter.params()
        ):
            log.info("cached Gamma listing %s is for another Gamma or filter: skipped", path)
            return None
        age_s = (time.time() if now_s is None else now_s) - listing.written_s
        if not 0 <= age_s <= self.max_age_s:  # written in the future: a clock moved, trust it not
            log.info(
                "cached Gamma listing %s is %.0f s old (at most %.0f s is used): skipped",
                path,
                age_s,
                self.max_age_s,
            )
            return None
        log.info("cached Gamma listing %s: %d markets, %.0f s old", path, len(listing.markets), age_s)
        return listing.markets

    def store(
        self,
        gamma_url: str,
        market_filter: MarketFilter,
        markets: list[GammaMarket],
        *,
        now_s: float | None = None,
    ) -> bool:
        """Write the listing (whole, then renamed over the old one); ``False`` if it could not be
        written (logged: a cache is never a reason to stop)."""
        path = self.path(gamma_url, market_filter)
        listing = _Listing(
            _VERSION,
            _base(gamma_url),
            market_filter.params(),
            time.time() if now_s is None else now_s,
            markets,
        )
        temporary: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.directory)
            with os.fdopen(fd, "wb") as out:
                out.write(_encoder.encode(listing))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            temporary = None
        except OSError as exc:
            log.warning("could not write the cached Gamma listing %s (%s): going on without it", path, exc)
            return False
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        log.debug("cached Gamma listing %s: %d markets written", path, len(markets))
        return True


def _base(gamma_url: str) -> str:
    return gamma_url.rstrip("/")
