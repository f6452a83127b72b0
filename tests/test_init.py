"""``import polyfeed``: what users touch at the top, loaded only when used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import polyfeed

NETWORK_STACK = ("aiohttp", "picows", "polyfeed.net", "polyfeed.stream", "rich", "typer")


def loaded_after(statement: str) -> list[str]:
    found = f"[m for m in {NETWORK_STACK!r} if m in sys.modules]"
    code = f"import sys, json; {statement}; print(json.dumps({found}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_the_sans_io_layers_load_no_network_stack() -> None:
    """Issue 14, item 5: ``import polyfeed.wire`` loaded picows, aiohttp and net (about 370 ms)."""
    assert loaded_after("import polyfeed.wire, polyfeed.book, polyfeed.errors") == []
    assert loaded_after("import polyfeed; polyfeed.OrderBook") == []
    assert set(loaded_after("from polyfeed import MarketStream")) >= {"aiohttp", "picows", "polyfeed.net"}


@pytest.mark.parametrize("name", polyfeed.__all__)
def test_every_top_level_name_resolves(name: str) -> None:
    assert getattr(polyfeed, name) is not None
    assert name in dir(polyfeed)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = polyfeed.Nope  # type: ignore[attr-defined]
