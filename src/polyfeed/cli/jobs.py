"""What the commands that run a stream as a background job share (``record``, ``publish``): waiting for
the first of the job's end and something else, and the progress shown while it runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from rich.console import Console

from polyfeed.book import BookStatus
from polyfeed.cli.recording import book_order, books_table
from polyfeed.cli.terminal import spinner
from polyfeed.cli.view import BookLabel, WatchState
from polyfeed.stream import MarketStream

__all__ = ["TABLE_BOOKS", "BackgroundJob", "first"]

PLAIN_EVERY_S = 10.0
"""How often a job's progress line is printed when stderr is not a terminal."""
SPIN_EVERY_S = 0.5
"""How often the spinner's progress is redrawn on a terminal."""
TABLE_BOOKS = 60
"""Above this many books the closing summary counts them by status instead of listing them."""


async def first(job: asyncio.Future[Any], waiting: Coroutine[Any, Any, object], timeout_s: float) -> bool:
    """Wait for ``waiting`` while ``job`` runs: True once it is done; False after ``timeout_s`` (0: no
    limit). A ``job`` that ends first (failed, or ``--seconds`` passed) ends the wait: its failure is
    raised, its end is True."""
    waiter = asyncio.ensure_future(waiting)
    try:
        done, _ = await asyncio.wait({job, waiter}, timeout=timeout_s or None, return_when="FIRST_COMPLETED")
    finally:
        waiter.cancel()
    if job in done:
        job.result()
        return True
    return waiter in done


class BackgroundJob:
    """A command's job: its stream's events counted in :attr:`state`, its progress said by
    :meth:`status` under the command's name, its books shown when it ends."""

    command = ""
    state: WatchState
    stream: MarketStream | None
    labels: dict[str, BookLabel]
    final_statuses: dict[str, BookStatus]
    """The books' statuses when the job stopped (closing the stream turns them stale)."""

    def status(self) -> str:
        raise NotImplementedError

    async def data(self) -> None:
        """Until the stream's first message."""
        while not self.state.messages:
            await asyncio.sleep(0.05)

    async def report(self, console: Console) -> None:
        """Progress while the job runs: a spinner on a terminal, a line every ten seconds otherwise."""
        if console.is_terminal:
            with spinner(console, self.status()) as say:
                while True:
                    await asyncio.sleep(SPIN_EVERY_S)
                    say(self.status())
        while True:
            await asyncio.sleep(PLAIN_EVERY_S)
            console.print(f"polyfeed {self.command}: {self.status()}", soft_wrap=True)

    def print_books(self, console: Console) -> None:
        """The books at the end: a table, or their count by status above :data:`TABLE_BOOKS`."""
        books = self.stream.books if self.stream is not None else {}
        if len(books) > TABLE_BOOKS:
            statuses = Counter((self.final_statuses.get(a) or b.status).value for a, b in books.items())
            failed = sum(b.checks.total_failed for b in books.values())
            counts = ", ".join(f"{n:,} {status}" for status, n in statuses.most_common())
            console.print(f"books: {counts}; {failed:,} checks failed", soft_wrap=True)
        elif books:
            labels = self.labels
            if self.stream is not None and self.stream.universe is not None:
                labels = {t: BookLabel(*label) for t, label in self.stream.universe.labels.items()}
            console.print(books_table(books, book_order(books, labels), labels, self.final_statuses))
