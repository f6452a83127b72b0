"""A tmux server of a test's own (not a test module), to run a command in a real terminal of a given
size, read the screen as a person would see it, resize the window and send keys."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.cli.harness import BOUND_S, subprocess_env

EXIT_MARK = "polyfeed-exit="
SESSION = "screen"


class Tmux:
    """A tmux server with its own socket and no user configuration."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name, "-f", os.devnull]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, check=True, env=subprocess_env(), timeout=BOUND_S
        )
        return done.stdout.decode()

    def start(self, *argv: str, width: int = 80, height: int = 24) -> None:
        """``python -m polyfeed ARGV`` in a ``width`` x ``height`` window. sh (not the user's shell)
        stays after it so that its last screen and exit code can be read; its INT trap keeps it alive
        through Ctrl-C (a trap, unlike an ignored signal, is not inherited)."""
        command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "polyfeed", *argv))
        script = f"trap true INT; {command}; echo {EXIT_MARK}$?; sleep 600"
        self("new-session", "-d", "-s", SESSION, "-x", str(width), "-y", str(height), "/bin/sh", "-c", script)

    def screen(self, *, history: bool = False) -> str:
        """What the window shows (``history``: with the lines scrolled off its top as well)."""
        return self("capture-pane", "-p", "-t", SESSION, *(("-S", "-") if history else ()))

    def resize(self, width: int, height: int) -> None:
        self("resize-window", "-t", SESSION, "-x", str(width), "-y", str(height))

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", SESSION, *keys)

    def wait_for(self, ready: Callable[[str], bool], what: str, *, history: bool = False) -> str:
        deadline = time.monotonic() + BOUND_S
        while True:
            screen = self.screen(history=history)
            if ready(screen):
                return screen
            assert time.monotonic() < deadline, f"never saw {what}; the screen:\n{screen}"
            time.sleep(0.2)


@contextlib.contextmanager
def tmux_server() -> Iterator[Tmux]:
    """A tmux server for the block (the test skips, saying so, where tmux is not installed)."""
    if shutil.which("tmux") is None:
        pytest.skip(
            "tmux is not installed: the terminal tests of the watch screen need it (.ci/run installs it)"
        )
    server = Tmux(f"polyfeed-test-{os.getpid()}")
    try:
        yield server
    finally:
        subprocess.run([*server.base, "kill-server"], capture_output=True, check=False)
