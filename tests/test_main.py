"""``python -m polyfeed``: argument handling and the ``capture`` walk-through."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from polyfeed.__main__ import capture, main


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--markets", "0"],
        ["demo", "--seconds", "-1"],
        ["sim", "--port", "70000"],
        ["sim", "--markets", "x"],
        ["sim", "--fault", "explode"],
        ["sim", "--fault", "delay:ms"],
        ["sim", "--fault-every", "0"],
    ],
)
def test_bad_arguments_exit_with_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_capture_books_the_real_burst_and_every_check_passes(
    polymarket_fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(polymarket_fixtures.parents[1]))
    out = io.StringIO()
    assert capture(out) == 0
    text = out.getvalue()
    assert "status: live" in text
    assert "0.29 | 0.301" in text, "the post-trade top of book: bid 0.29, ask 0.301"
    assert "failed={}" in text


def test_capture_without_the_files_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(tmp_path))
    assert main(["capture"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
