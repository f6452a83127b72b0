"""Gamma's listing on disk: read back as written while young, ignored when stale or written for another
Gamma or filter, skipped with a log line when damaged or unreadable, never a crash; written atomically."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from polyfeed.net.gamma import GammaMarket, MarketFilter, TokenInfo
from polyfeed.net.gamma_cache import GammaCache, default_cache_dir

GAMMA = "http://127.0.0.1:1/"
NOW_S = 1_800_000_000.0


def listing(count: int = 3) -> list[GammaMarket]:
    markets = []
    for n in range(count):
        condition = f"0x{n:064x}"
        tokens = tuple(
            TokenInfo(
                token_id=str(10**20 + 2 * n + side),
                outcome=outcome,
                market_slug=f"market-{n}",
                question=f"Will {n} happen? \N{EM DASH} «quoted»",
                condition_id=condition,
                event_slug=f"event-{n // 2}",
                price="0.5",
                tick_size="0.01",
                min_order_size="5",
                neg_risk=n % 2 == 0,
            )
            for side, outcome in enumerate(("Yes", "No"))
        )
        markets.append(GammaMarket(condition, f"market-{n}", tokens))
    return markets


def test_a_young_listing_reads_back_as_written(tmp_path: Path) -> None:
    cache = GammaCache(tmp_path / "made-when-first-written")
    markets = listing()
    assert cache.store(GAMMA, MarketFilter(), markets, now_s=NOW_S)
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S + 599) == markets
    assert cache.load(GAMMA.rstrip("/"), MarketFilter(), now_s=NOW_S) == markets, "one URL, with or without /"
    assert [p.name for p in cache.directory.iterdir()] == [cache.path(GAMMA, MarketFilter()).name], (
        "no temporary file left behind"
    )


def test_a_stale_listing_or_one_from_the_future_is_not_used(tmp_path: Path) -> None:
    cache = GammaCache(tmp_path, max_age_s=600)
    cache.store(GAMMA, MarketFilter(), listing(), now_s=NOW_S)
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S + 601) is None
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S - 60) is None, "a clock that moved back"


def test_each_gamma_url_and_filter_has_its_own_listing(tmp_path: Path) -> None:
    cache = GammaCache(tmp_path)
    tagged = MarketFilter(tag_id="21")
    cache.store(GAMMA, tagged, listing(1), now_s=NOW_S)
    cache.store(GAMMA, MarketFilter(), listing(2), now_s=NOW_S)
    assert cache.load(GAMMA, tagged, now_s=NOW_S) == listing(1)
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S) == listing(2)
    assert cache.load("http://127.0.0.1:2", tagged, now_s=NOW_S) is None
    assert cache.load(GAMMA, MarketFilter(tag_id="22"), now_s=NOW_S) is None


def test_a_listing_stored_under_another_key_is_not_taken_for_this_one(tmp_path: Path) -> None:
    """A file copied (or a hash that collided) under this key but written for another Gamma."""
    cache = GammaCache(tmp_path)
    cache.store("http://elsewhere", MarketFilter(), listing(), now_s=NOW_S)
    cache.path("http://elsewhere", MarketFilter()).rename(cache.path(GAMMA, MarketFilter()))
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S) is None


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b'{"version": 1, "gamma_url": 3}', b"[]", b"\xff\xfe\x00"],
    ids=["empty", "cut", "wrong-types", "not-an-object", "binary"],
)
def test_a_damaged_listing_is_skipped_with_a_log_line(
    tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache = GammaCache(tmp_path)
    path = cache.path(GAMMA, MarketFilter())
    path.write_bytes(damage)
    with caplog.at_level(logging.WARNING, "polyfeed.net.gamma_cache"):
        assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S) is None
    assert [
        r.getMessage() for r in caplog.records if "damaged" in r.getMessage() and str(path) in r.getMessage()
    ]


def test_a_half_written_listing_is_skipped(tmp_path: Path) -> None:
    cache = GammaCache(tmp_path)
    cache.store(GAMMA, MarketFilter(), listing(), now_s=NOW_S)
    path = cache.path(GAMMA, MarketFilter())
    path.write_bytes(path.read_bytes()[:-40])
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S) is None


def test_an_unreadable_listing_is_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = GammaCache(tmp_path)
    cache.path(GAMMA, MarketFilter()).mkdir()  # reading a directory fails as an unreadable file would
    with caplog.at_level(logging.WARNING, "polyfeed.net.gamma_cache"):
        assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S) is None
    assert any("cannot be read" in r.getMessage() for r in caplog.records)


def test_a_listing_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = GammaCache(blocker / "polyfeed")
    with caplog.at_level(logging.WARNING, "polyfeed.net.gamma_cache"):
        assert not cache.store(GAMMA, MarketFilter(), listing())
    assert any("could not write" in r.getMessage() for r in caplog.records)


def test_a_listing_is_replaced_whole(tmp_path: Path) -> None:
    cache = GammaCache(tmp_path)
    cache.store(GAMMA, MarketFilter(), listing(5), now_s=NOW_S)
    cache.store(GAMMA, MarketFilter(), listing(1), now_s=NOW_S + 1)
    assert cache.load(GAMMA, MarketFilter(), now_s=NOW_S + 1) == listing(1)
    assert len(os.listdir(tmp_path)) == 1


def test_the_cache_lives_in_the_user_cache_directory_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYFEED_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/someone")
    assert default_cache_dir() == Path("/home/someone/.cache/polyfeed")
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/me")
    assert default_cache_dir() == Path("/var/cache/me/polyfeed")
    monkeypatch.setenv("POLYFEED_CACHE_DIR", "/srv/polyfeed-cache")
    assert default_cache_dir() == GammaCache().directory == Path("/srv/polyfeed-cache")
