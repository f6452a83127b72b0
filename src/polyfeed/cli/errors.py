"""How a command fails: one line on stderr and a non-zero exit code, never a traceback.

Only failures a person can do something about are turned into a line here (a venue that cannot be
reached or answers with an error, a slug nobody knows, a port in use); anything else is a bug in
polyfeed and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import typer

from polyfeed.errors import PolyfeedError, VenueUnreachableError
from polyfeed.stream.loop import run

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "STOP_SIGNALS",
    "CommandError",
    "Stopper",
    "describe",
    "discard_stdout",
    "fail",
    "run_command",
    "stop_signals_as_ctrl_c",
]

T = TypeVar("T")

EXIT_FAILURE = 1
"""The venue or the input let the command down (unreachable, unknown slug, no data)."""
EXIT_USAGE = 2
"""A bad argument (as click and argparse exit)."""


class CommandError(Exception):
    """A failure the command explains in one line (raised inside commands, printed by :func:`fail`)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, for the failures a person can act on: a venue that cannot be
    reached is ``cannot reach HOST:PORT: REASON``; an error answer is the URL and its status
    (:class:`polyfeed.errors.VenueError`); any other polyfeed error its message on one line."""
    if isinstance(exc, VenueUnreachableError):
        return f"cannot reach {_host_port(exc.url)}: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "the venue did not answer in time"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return " ".join(str(exc).split()) or type(exc).__name__


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError:  # a port out of range: the URL as given
        return parts.netloc
    return f"{parts.hostname}:{port}"


def fail(command: str, message: str, exit_code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``polyfeed COMMAND: MESSAGE`` on stderr as one line; returns the exit to raise."""
    line = " ".join(message.split())
    sys.stderr.write(f"polyfeed {command}: {line}\n")
    sys.stderr.flush()
    return typer.Exit(exit_code)


STOP_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)
"""Signals that stop a command as Ctrl-C does: SIGTERM (systemd, ``docker stop``, ``timeout``) and
SIGHUP (the terminal went away)."""


class Stopper:
    """What a stop signal cancels: the command's task on its loop, once the command runs in one."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.signals = 0

    def on_signal(self, _signum: int, _frame: Any) -> None:
        self.signals += 1
        task, loop = self.task, self.loop
        if self.signals == 1 and task is not None and loop is not None and not task.done():
            # Never raise from here while the loop runs: an exception raised inside one of uvloop's C
            # callbacks is printed and dropped ("Exception ignored"), and the command would go on.
            loop.call_soon_threadsafe(task.cancel)
            return
        raise KeyboardInterrupt  # outside a loop, or a second signal: end now, as Ctrl-C does


@contextlib.contextmanager
def stop_signals_as_ctrl_c() -> Iterator[Stopper]:
    """While inside, SIGTERM and SIGHUP stop a command as Ctrl-C does: in a command's event loop (the
    yielded :class:`Stopper`'s ``task``, set by :func:`run_command`), its task is cancelled so that its
    clean-up runs (a recording closed and indexed, the summary printed, exit 0); elsewhere, or on a
    second signal during the clean-up, :class:`KeyboardInterrupt` ends it at once.

    This does not lean on Ctrl-C's own handler: a process started in the background by a script has
    SIGINT ignored, and must still stop in order on SIGTERM. A signal the process was started with
    ignored (``nohup`` ignores SIGHUP) stays ignored. Only the main thread can set signal handlers:
    elsewhere (a test running a command in a thread) this does nothing."""
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous = {
        s: signal.signal(s, stopper.on_signal)
        for s in STOP_SIGNALS
        if signal.getsignal(s) is not signal.SIG_IGN
    }
    try:
        yield stopper
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def discard_stdout() -> None:
    """The reader left (``| head``): point stdout at /dev/null so that what is still printed, and the
    interpreter's last flush at exit, do not fail on the closed pipe (as the Python docs advise for
    SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):  # no real file descriptor (a test's capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def run_command(command: str, coro: Coroutine[Any, Any, T]) -> T | None:
    """Run a command's coroutine on polyfeed's event loop (uvloop when installed).

    Ctrl-C, SIGTERM and SIGHUP end it quietly (``None``: the coroutine's ``finally`` blocks and context
    managers have run, as ``asyncio.Runner`` cancels the task first; see
    :func:`stop_signals_as_ctrl_c`), and so does a reader of stdout that went away (``| head``). A
    failure from :func:`describe`'s list becomes one line and :class:`typer.Exit`.
    """

    async def command_task() -> T:
        stopper.task, stopper.loop = asyncio.current_task(), asyncio.get_running_loop()
        return await coro

    try:
        with stop_signals_as_ctrl_c() as stopper:
            return run(command_task())
    except KeyboardInterrupt:
        return None
    except BrokenPipeError:
        discard_stdout()
        return None
    except CommandError as exc:
        raise fail(command, str(exc), exc.exit_code) from None
    except (OSError, TimeoutError, PolyfeedError) as exc:
        raise fail(command, describe(exc)) from None
    except asyncio.CancelledError:  # cancelled by SIGTERM/SIGHUP, or a second Ctrl-C during the clean-up
        return None
