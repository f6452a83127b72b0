"""What a book knows about its own correctness: its status, the checks run, the last failure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CHECK_INDEX", "CHECK_KINDS", "BookStatus", "CheckCounts", "CheckFailure", "CheckKind"]


class BookStatus(enum.Enum):
    """Where a book stands (design section 3).

    ``SYNCING`` -> ``LIVE`` on a snapshot; ``LIVE`` -> ``SUSPECT`` when a check fails; back to ``LIVE``
    on a snapshot or a hash that verifies; ``STALE`` when the stream says its data stopped; ``CLOSED``
    when the venue says it has no book for the token.
    """

    SYNCING = "syncing"
    """No snapshot yet: nothing to show."""
    LIVE = "live"
    """Built from a snapshot and the updates since, with every check so far passing."""
    SUSPECT = "suspect"
    """A check failed: the book may differ from the venue's until a snapshot or a verified hash."""
    STALE = "stale"
    """The connection is down or silent past its deadline: the venue's book may have moved on."""
    CLOSED = "closed"
    """The venue has no book for this token: its market resolved (``market_resolved``, or REST ``/book``
    answers 404), or it never had one. Final, until a snapshot shows a book after all."""


class CheckKind(enum.Enum):
    """The integrity checks a book runs."""

    TOP_OF_BOOK = "top_of_book"
    """The ``best_bid`` / ``best_ask`` carried by a ``price_change`` entry against the local top."""
    HASH = "hash"
    """The venue's book hash against :meth:`OrderBook.compute_hash` (at the end of each burst)."""
    CROSSED = "crossed"
    """Best bid below best ask at the end of each burst (crossed or locked sides fail)."""
    SNAPSHOT = "snapshot"
    """A ``book`` snapshot against the local book it replaces."""
    TICK = "tick"
    """New levels on the tick grid, and ``tick_size_change`` starting from the tick the book knows."""
    MALFORMED = "malformed"
    """A level the book could not apply (bad price or size text, unknown side)."""


CHECK_KINDS: tuple[CheckKind, ...] = tuple(CheckKind)
CHECK_INDEX: dict[CheckKind, int] = {kind: i for i, kind in enumerate(CHECK_KINDS)}


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One failed check: what, why, and the venue timestamp (ms) of the message that revealed it."""

    kind: CheckKind
    detail: str
    timestamp_ms: int


class CheckCounts:
    """How many times each check passed and failed.

    Counts live in lists indexed by :data:`CHECK_INDEX` because the book bumps them on every burst and
    an ``Enum`` member hashes through a Python-level ``__hash__``; ``passed`` / ``failed`` are dict views.
    """

    __slots__ = ("failed_by_index", "passed_by_index")

    def __init__(self) -> None:
        self.passed_by_index = [0] * len(CHECK_KINDS)
        self.failed_by_index = [0] * len(CHECK_KINDS)

    @property
    def passed(self) -> dict[CheckKind, int]:
        """Passes by kind."""
        return dict(zip(CHECK_KINDS, self.passed_by_index, strict=True))

    @property
    def failed(self) -> dict[CheckKind, int]:
        """Failures by kind."""
        return dict(zip(CHECK_KINDS, self.failed_by_index, strict=True))

    @property
    def total_failed(self) -> int:
        """Failures of every kind."""
        return sum(self.failed_by_index)

    @property
    def total_passed(self) -> int:
        """Passes of every kind."""
        return sum(self.passed_by_index)

    def __repr__(self) -> str:
        passed = {k.value: n for k, n in self.passed.items() if n}
        failed = {k.value: n for k, n in self.failed.items() if n}
        return f"CheckCounts(passed={passed}, failed={failed})"
