"""``polyfeed demo``: the README's main job, piped (plain text, ends by itself) and in a real 80x24
terminal (tmux), where the live screen must be legible and Ctrl-C must end it cleanly."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from rich.cells import cell_len

from tests.cli.harness import BOUND_S, polyfeed, subprocess_env

LADDER = re.compile(r"\d\.\d{2} │ \d\.\d{2}")
EXIT_MARK = "polyfeed-exit="


def test_piped_the_demo_prints_plain_live_books_and_ends_by_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = polyfeed(capsys, "demo", "--markets", "5", "--seed", "2", "--seconds", "2.5")
    assert result.code == 0, result.err
    assert "/ws/market" in result.out.splitlines()[0]
    assert "LIVE" in result.out
    assert LADDER.search(result.out)
    assert "\x1b[" not in result.out, "no colour or cursor codes when stdout is not a terminal"
    assert all(cell_len(line) <= 80 for line in result.out.splitlines()[1:-1])
    summary = result.out.splitlines()[-2:]
    assert summary[0].startswith("4 books for") and re.fullmatch(
        r"checks: [\d,]+ passed, 0 failed", summary[1]
    )


class Tmux:
    """A tmux server of the test's own (its own socket, no user configuration)."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name, "-f", os.devnull]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, check=True, env=subprocess_env(), timeout=BOUND_S
        )
        return done.stdout.decode()

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "demo")

    def wait_for(self, ready: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + BOUND_S
        while True:
            screen = self.screen()
            if ready(screen):
                return screen
            assert time.monotonic() < deadline, f"never saw {what}; the screen:\n{screen}"
            time.sleep(0.2)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip(
            "tmux is not installed: the terminal test of the watch screen needs it (.ci/run installs it)"
        )
    server = Tmux(f"polyfeed-test-{os.getpid()}")
    try:
        yield server
    finally:
        subprocess.run([*server.base, "kill-server"], capture_output=True, check=False)


def start_demo(tmux: Tmux, *demo_args: str) -> None:
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "polyfeed", "demo", *demo_args))
    # sh (not the user's shell) stays after the demo so that its last screen and exit code can be read;
    # its INT trap keeps it alive through Ctrl-C (a trap, unlike an ignored signal, is not inherited)
    script = f"trap true INT; {command}; echo {EXIT_MARK}$?; sleep 600"
    tmux("new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "/bin/sh", "-c", script)


def showing_a_live_book(screen: str) -> bool:
    return "LIVE" in screen and len(LADDER.findall(screen)) >= 3


def test_in_an_80x24_terminal_the_live_screen_is_legible(tmux: Tmux) -> None:
    start_demo(tmux, "--seconds", "5")
    screen = tmux.wait_for(showing_a_live_book, "a live book")
    lines = screen.splitlines()
    assert all(cell_len(line) <= 80 for line in lines)
    header = next(line for line in lines if line.startswith("polyfeed "))
    assert "4 books" in header and "msg/s" in header and "drops 0  reconnects 0" in header
    assert header.endswith("^C quits"), "the whole line fits"
    ladder = [line for line in lines if LADDER.search(line)]
    assert all(line.startswith("│") and line.endswith("│") for line in ladder), "no panel cut or wrapped"
    assert any(len(LADDER.findall(line)) == 2 for line in ladder), "two books side by side"
    assert any("checks" in line and "LIVE" in line for line in lines)
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "the demo end by itself")
    assert f"{EXIT_MARK}0" in final
    assert "Traceback" not in final
    summary = final[: final.index(EXIT_MARK)].rstrip().splitlines()[-2:]
    assert summary[0].startswith("4 books for") and re.fullmatch(
        r"checks: [\d,]+ passed, 0 failed", summary[1]
    )


def test_in_a_terminal_the_demo_runs_until_ctrl_c_and_then_exits_0(tmux: Tmux) -> None:
    start_demo(tmux)
    tmux.wait_for(showing_a_live_book, "a live book")
    tmux("send-keys", "-t", "demo", "C-c")
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "the demo end on Ctrl-C")
    assert f"{EXIT_MARK}0" in final
    assert "Traceback" not in final and "Error" not in final
    assert any(line.startswith("4 books for") for line in final.splitlines())
