"""``polyfeed capture``: Polymarket's real crossing burst, booked, every check passing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from polyfeed.cli.capture import _shared_dirs, capture
from tests.cli.harness import assert_one_line_failure, polyfeed

BURST = Path("ws/market/price_change_crossing_burst.json")


def test_capture_books_the_real_burst_and_every_check_passes(polymarket_fixtures: Path) -> None:
    out = io.StringIO()
    assert capture(polymarket_fixtures / BURST, out) == 0
    text = out.getvalue()
    assert "status: live" in text
    assert "0.29 | 0.301" in text, "the post-trade top of book: bid 0.29, ask 0.301"
    assert "failed={}" in text


def test_the_command_finds_the_shared_folder_through_polyfeed_shared(
    polymarket_fixtures: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(polymarket_fixtures.parents[1]))
    result = polyfeed(capsys, "capture")
    assert result.code == 0 and "status: live" in result.out


def test_capture_without_the_files_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYFEED_SHARED", str(tmp_path))
    result = polyfeed(capsys, "capture")
    assert result.code == 2
    assert str(tmp_path) in assert_one_line_failure(result, "capture")


def test_without_polyfeed_shared_it_looks_beside_the_checkout_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It named a path inside site-packages' parents for an installed polyfeed."""
    monkeypatch.delenv("POLYFEED_SHARED", raising=False)
    work = tmp_path / "somewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    places = _shared_dirs()
    assert work / "shared" in places and tmp_path / "shared" in places
    checkout = Path(__file__).resolve().parents[2]
    assert places[0] == (checkout.parent / "shared").resolve(), (
        "an editable install looks beside its checkout"
    )
    if not (places[0] / "fixtures").exists():
        result = polyfeed(capsys, "capture")
        assert result.code == 2
        line = assert_one_line_failure(result, "capture")
        assert "set POLYFEED_SHARED" in line and str(work / "shared") in line
