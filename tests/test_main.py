"""``python -m polyfeed demo``: the README's main-job command."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from polyfeed.__main__ import demo, main


def test_demo_books_the_capture_and_every_check_passes(
    polymarket_fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(polymarket_fixtures.parents[1]))
    out = io.StringIO()
    assert demo(out) == 0
    text = out.getvalue()
    assert "status: live" in text
    assert "0.29 | 0.301" in text, "the post-trade top of book: bid 0.29, ask 0.301"
    assert "failed={}" in text


def test_demo_without_the_capture_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(tmp_path))
    assert main(["demo"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
