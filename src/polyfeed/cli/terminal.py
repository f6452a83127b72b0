"""What the commands show a person: consoles, spinners and progress bars on a terminal only.

Piped or in CI, output is plain text (rich writes no colour or cursor codes to a non-terminal) and no
spinner is drawn, so that logs hold what the command printed and nothing else. While a live screen is
up, what is written to a terminal's stderr (``-v``'s log lines) goes to a :class:`ScreenLog` instead,
shown at the screen's foot, so that it cannot tear the screen.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TextIO

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.text import Text

__all__ = [
    "ScreenLog",
    "abbreviate",
    "err_console",
    "format_size",
    "out_console",
    "progress",
    "progress_to",
    "spinner",
    "stderr_to",
]


class _Console(Console):
    """rich's console, but a reader that went away (``| head``) is a :class:`BrokenPipeError` for
    :func:`polyfeed.cli.errors.run_command` to end the command quietly (exit 0, its clean-up run), not
    rich's ``SystemExit(1)``."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def out_console() -> Console:
    """The console for a command's own output (stdout; its width from the terminal or ``COLUMNS``)."""
    return _Console(highlight=False)


def err_console() -> Console:
    """The console for progress while stdout carries data (``polyfeed stream``)."""
    return Console(stderr=True, highlight=False)


@contextlib.contextmanager
def spinner(console: Console, what: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner saying ``what`` while the block runs, on a terminal; yields a function to change the
    text. Nothing is drawn on a non-terminal, or when not ``enabled``."""
    if not (enabled and console.is_terminal):
        yield lambda _: None
        return
    with console.status(what) as status:
        yield status.update


@contextlib.contextmanager
def progress(console: Console, what: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar over ``total`` steps on a terminal (a spinner for a single step); yields the
    function that marks one step done."""
    if not console.is_terminal or total <= 1:
        with spinner(console, what):
            yield lambda: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


@contextlib.contextmanager
def progress_to(console: Console, what: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar towards ``total`` (``None``: unknown, a spinner with the count) on a terminal;
    yields the function that says how far the work got."""
    if not console.is_terminal:
        yield lambda _: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)


def abbreviate(token_id: str, keep: int = 4) -> str:
    """A 77-digit token id as ``7667…1111``: enough to tell tokens apart on a screen."""
    if len(token_id) <= 2 * keep + 1:
        return token_id
    return f"{token_id[:keep]}…{token_id[-keep:]}"


def format_size(size: Decimal) -> str:
    """A level's size in at most 9 characters: two decimals, then thousands (``12.3k``), millions."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.2f}M"
    if size >= 100_000:
        return f"{size / 1_000:.1f}k"
    return f"{size:,.2f}"


_TOKEN_ID = re.compile(r"\b\d{20,}\b")  # token ids are 77 digits; nothing else logged is that long
_LOG_PREFIX = re.compile(r"^polyfeed: (\w+) polyfeed\.[\w.]+: ")  # "polyfeed: INFO polyfeed.net.pool: "


class ScreenLog(io.TextIOBase):
    """A stand-in for stderr while a live screen is up: lines written to it are kept instead of being
    drawn through the screen. The last few are shown at the screen's foot (:meth:`strip`), books named
    by ``name`` rather than by 77-digit token ids; all of them, as written, are handed back to the real
    stderr by :meth:`replay` when the screen closes.

    Args:
        name: how a token id is shown in the strip (``slug · outcome``, say); abbreviated otherwise.
        shown: lines the strip shows.
        kept: lines kept for :meth:`replay` (the oldest go first, counted in ``dropped``).
    """

    def __init__(
        self, name: Callable[[str], str | None] | None = None, *, shown: int = 3, kept: int = 1000
    ) -> None:
        super().__init__()
        self.name = name or (lambda _: None)
        self.shown = shown
        self.lines: deque[str] = deque(maxlen=kept)
        self.dropped = 0
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            if len(self.lines) == self.lines.maxlen:
                self.dropped += 1
            self.lines.append(line)
        return len(text)

    @property
    def rows(self) -> int:
        """Rows the strip takes (0 until something is written): a screen leaves them free."""
        return min(self.shown, len(self.lines))

    def _named(self, match: re.Match[str]) -> str:
        token = match.group()
        return self.name(token) or abbreviate(token)

    def strip(self) -> Group:
        """The last lines, one row each (cut to the width), token ids named, the log prefix shortened."""
        rows = list(self.lines)[-self.shown :] if self.rows else []
        return Group(
            *(
                Text(
                    _TOKEN_ID.sub(self._named, _LOG_PREFIX.sub(r"\1 ", line)),
                    "dim",
                    no_wrap=True,
                    overflow="ellipsis",
                )
                for line in rows
            )
        )

    def replay(self, stream: TextIO) -> None:
        """Write every line kept (and any partial one) to ``stream``, as they were written."""
        if self.dropped:
            stream.write(f"polyfeed: {self.dropped} earlier lines written while the screen was up are lost\n")
        for line in self.lines:
            stream.write(line + "\n")
        if self._partial:
            stream.write(self._partial)
        stream.flush()


@contextlib.contextmanager
def stderr_to(log: ScreenLog) -> Iterator[bool]:
    """Send what is written to stderr to ``log`` for the block, if stderr is a terminal (a file or a
    pipe takes log lines without harm to the screen); yields whether it does. When the block ends,
    the lines go to the real stderr."""
    real = sys.stderr
    if not real.isatty():
        yield False
        return
    sys.stderr = log
    try:
        yield True
    finally:
        sys.stderr = real
        log.replay(real)
