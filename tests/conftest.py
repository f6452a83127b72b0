"""Shared test fixtures: where Polymarket's captured messages live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED = Path(os.environ.get("POLYFEED_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURES = _SHARED / "fixtures" / "polymarket"


@pytest.fixture
def polymarket_fixtures() -> Path:
    """``../shared/fixtures/polymarket``; tests that need it skip where the folder is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(
            "../shared/fixtures/polymarket not found: tests that read Polymarket's captured messages "
            "need the shared folder beside the checkout (or POLYFEED_SHARED)"
        )
    return FIXTURES
