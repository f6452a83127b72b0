"""What the commands show a person: consoles, spinners and progress bars on a terminal only.

Piped or in CI, output is plain text (rich writes no colour or cursor codes to a non-terminal) and no
spinner is drawn, so that logs hold what the command printed and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

__all__ = ["abbreviate", "err_console", "format_size", "out_console", "progress", "progress_to", "spinner"]


def out_console() -> Console:
    """The console for a command's own output (stdout; its width from the terminal or ``COLUMNS``)."""
    return Console(highlight=False)


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
