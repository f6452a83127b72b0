"""What a person sees: token ids abbreviated, sizes in 9 characters, and stderr kept off a live screen
(shown in a strip at its foot, books named by label, and handed back to stderr when it closes)."""

from __future__ import annotations

import io
import os
import sys
from decimal import Decimal

import pytest
from rich.console import Console

from polyfeed.cli.terminal import ScreenLog, abbreviate, format_size, stderr_to

TOKEN = "66520000000000000000000000000000000000000000000000000000000000000000000008260"
OTHER = "20860000000000000000000000000000000000000000000000000000000000000000000003444"


def strip_text(log: ScreenLog, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(log.strip())
    return console.export_text()


def test_abbreviations_and_sizes() -> None:
    assert abbreviate(TOKEN) == "6652…8260" and abbreviate("12345") == "12345"
    assert [format_size(Decimal(v)) for v in ("1234.5", "123456", "2500000")] == [
        "1,234.50",
        "123.5k",
        "2.50M",
    ]


def test_lines_are_kept_whole_and_the_strip_shows_the_last_ones_naming_books() -> None:
    log = ScreenLog(lambda token: "fed-decision · Yes" if token == TOKEN else None, shown=2)
    assert log.rows == 0 and strip_text(log) == ""
    log.write(f"polyfeed: WARNING polyfeed.session.market: connection 1: resync of {TOKEN} ")
    assert log.rows == 0, "a line counts once it ends"
    log.write("deferred 2.0 s\nfirst line\n")
    log.write(f"polyfeed: INFO polyfeed.net.connection: connection 1: book {OTHER} closed\n")
    assert log.rows == 2 and len(log.lines) == 3
    text = strip_text(log)
    assert text.splitlines() == ["first line", "INFO connection 1: book 2086…3444 closed"]
    log.shown = 3
    first = strip_text(log).splitlines()[0]
    assert first == "WARNING connection 1: resync of fed-decision · Yes deferred 2.0 s", "named by its label"


def test_a_long_line_takes_one_row_cut_to_the_width() -> None:
    log = ScreenLog()
    log.write("x" * 200 + "\n")
    (row,) = strip_text(log, width=60).splitlines()
    assert len(row) == 60 and row.endswith("…")


def test_replay_hands_back_every_line_as_written_and_says_how_many_were_lost() -> None:
    log = ScreenLog(lambda _: "named", kept=2)
    log.write(f"one {TOKEN}\ntwo\nthree\npartial")
    out = io.StringIO()
    log.replay(out)
    assert log.dropped == 1
    assert out.getvalue() == (
        "polyfeed: 1 earlier lines written while the screen was up are lost\ntwo\nthree\npartial"
    )


def test_stderr_goes_to_the_log_only_when_it_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    log = ScreenLog()
    with stderr_to(log) as taken:
        sys.stderr.write("to the pipe\n")
    assert taken is False and piped.getvalue() == "to the pipe\n" and not log.lines
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            monkeypatch.setattr(sys, "stderr", terminal)
            with stderr_to(log) as taken:
                assert sys.stderr is log
                sys.stderr.write("while the screen is up\n")
            assert taken is True and sys.stderr is terminal
        assert list(log.lines) == ["while the screen is up"]
        assert os.read(leader, 1024).replace(b"\r", b"") == b"while the screen is up\n", "handed back after"
    finally:
        os.close(leader)
        os.close(follower)
