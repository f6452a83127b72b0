"""Faults as given (polyfeed.sim.faults): validated from JSON objects and command-line flags."""

from __future__ import annotations

import pytest

from polyfeed.sim.faults import Fault, parse_fault, parse_fault_flag


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "drop", "mode": "gently"}, "mode"),
        ({"kind": "hostile", "mode": "reset"}, "mode of hostile"),
        ({"kind": "duplicate", "count": 0}, "count"),
        ({"kind": "delay", "ms": "5"}, "ms"),
        ({"kind": "drop", "when": "now"}, "unknown fault parameters"),
        (["drop"], "JSON object"),
    ],
)
def test_invalid_faults_are_refused(spec: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_fault(spec)


def test_command_line_fault_flags() -> None:
    assert parse_fault_flag("drop:mode=reset") == Fault(kind="drop", mode="reset")
    assert parse_fault_flag("delay:ms=200,count=50") == Fault(kind="delay", ms=200, count=50)
    assert parse_fault_flag("zombie") == Fault(kind="zombie")
