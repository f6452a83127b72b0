"""The ``demo`` command: the README's main job, on the local exchange."""

from __future__ import annotations

import io

from polyfeed.livedemo import run_demo


def test_demo_shows_checked_live_books_of_the_local_exchange() -> None:
    out = io.StringIO()
    assert run_demo(markets=5, seed=2, seconds=1.5, out=out) == 0
    text = out.getvalue()
    assert "/ws/market" in text
    assert " live " in text, "books are live within the demo's first refresh"
    assert text.rstrip().endswith("0 failed")
