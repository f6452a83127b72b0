"""``polyfeed markets`` on the local exchange's Gamma: a table for people, JSON for programs."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from polyfeed.cli.markets import render_markets
from polyfeed.net.gamma import TokenInfo
from tests.cli.harness import Exchange, assert_one_line_failure, polyfeed


def test_json_lists_every_token_of_an_event_with_its_market_facts(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "markets", "sim-event-1", "--json", *exchange.venue_args())
    assert result.code == 0 and result.err == ""
    rows = json.loads(result.out)
    markets = exchange.sim.exchange.markets[3:6]
    assert [r["token_id"] for r in rows] == [t for m in markets for t in (m.yes, m.no)]
    assert [r["outcome"] for r in rows] == ["Yes", "No"] * 3
    for row, market in zip(rows[::2], markets, strict=True):
        assert row["market_slug"] == market.slug and row["condition_id"] == market.condition_id
        assert row["event_slug"] == "sim-event-1"
        assert (row["tick_size"], row["min_order_size"], row["neg_risk"]) == (
            market.tick,
            market.min_order_size,
            market.neg_risk,
        )


def test_the_table_shows_outcomes_ticks_and_whole_token_ids(
    exchange: Exchange, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for a 77-digit token id on one line
    market = exchange.sim.exchange.markets[0]
    result = polyfeed(
        capsys, "markets", f"https://polymarket.com/market/{market.slug}", *exchange.venue_args()
    )
    assert result.code == 0
    assert market.question in result.out
    for token, outcome in ((market.yes, "Yes"), (market.no, "No")):
        (line,) = [line for line in result.out.splitlines() if token in line]
        assert line.split()[0] == outcome
        assert f" {market.tick} " in line and f" {market.min_order_size} " in line


def test_at_80_columns_token_ids_fold_but_are_never_cut() -> None:
    token = "7" * 77
    console = Console(width=80, record=True, color_system=None)
    console.print(render_markets([TokenInfo(token, "Yes", "a-market", "A question?", "0x" + "ab" * 32)]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("7") == 77


def test_an_unknown_slug_is_one_line_and_exit_1(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "markets", "no-such-market", *exchange.venue_args())
    assert "no-such-market" in assert_one_line_failure(result, "markets")
    assert result.code == 1


def test_an_unreachable_gamma_is_one_line_and_exit_1(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "markets", "sim-market-0", "--gamma-url", f"http://127.0.0.1:{closed_port}")
    line = assert_one_line_failure(result, "markets")
    assert result.code == 1
    assert f"cannot reach 127.0.0.1:{closed_port}" in line


def test_local_starts_an_exchange_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "markets", "sim-market-19", "--local", "--json")
    assert result.code == 0
    assert [r["market_slug"] for r in json.loads(result.out)] == ["sim-market-19"] * 2
