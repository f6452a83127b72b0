"""Faults the local exchange injects on demand: the venue's known failure modes (spec section 11).

A fault is given as a small JSON object (the control endpoint ``POST /control/faults``, or
:meth:`polyfeed.sim.Simulator.inject`), validated here into a :class:`Fault`:

- ``drop``: every market connection ends, a clean close (1001) or with ``mode: reset`` a reset
  without a close frame.
- ``zombie``: existing connections stay open and keep answering ``PING``, but data stops (spec 11.1).
- ``malformed``: one frame that is not valid JSON goes to every connection.
- ``duplicate``: the next ``count`` data frames go out twice.
- ``delay``: each connection's next ``count`` frames wait ``ms`` first (order kept).
- ``corrupt``: one level of a token (``asset_id``, or one at random) is sent with a wrong size but the
  true hash and top of book, so only the hash or a later snapshot reveals it.
- ``reject_connects``: the next ``count`` WebSocket upgrades get HTTP ``status`` (429 by default, as on
  connect bursts, spec 11.18).
- ``rest_error``: the next ``count`` REST or Gamma calls get HTTP ``status`` (500 by default).
- ``hostile``: frames a broken venue might send, to every market connection, by ``mode``: ``nested``,
  ``huge``, ``types``, ``foreign``, ``backwards`` (:mod:`polyfeed.sim.hostile`).
- ``stale_rest``: the next ``count`` ``GET /book`` answers are the books as they were when the fault was
  injected: older than what the stream has shown since.
- ``slow_rest``: the next ``count`` REST or Gamma calls wait ``ms`` before they answer.
- ``resolve``: the market of ``asset_id`` (or one at random) resolves now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "Fault", "parse_fault", "parse_fault_flag"]

FAULT_KINDS = (
    "drop",
    "zombie",
    "malformed",
    "duplicate",
    "delay",
    "corrupt",
    "reject_connects",
    "rest_error",
    "hostile",
    "stale_rest",
    "slow_rest",
    "resolve",
)
_MODES = {
    "drop": ("close", "reset"),
    "hostile": ("nested", "huge", "types", "foreign", "backwards"),
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One validated fault."""

    kind: str
    mode: str = "close"
    count: int = 1
    ms: int = 0
    status: int = 429
    asset_id: str | None = None


def parse_fault(spec: Any) -> Fault:
    """Validate a fault given as a mapping (``{"kind": "drop", "mode": "reset"}``).

    Raises:
        ValueError: naming what is wrong.
    """
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object with a 'kind'")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    unknown = set(spec) - {"kind", "mode", "count", "ms", "status", "asset_id"}
    if unknown:
        raise ValueError(f"unknown fault parameters: {', '.join(sorted(unknown))}")
    modes = _MODES.get(kind, ("close",))
    mode = spec.get("mode", modes[0])
    if mode not in modes:
        raise ValueError(f"mode of {kind} must be one of {', '.join(modes)}, not {mode!r}")
    count, ms, status = (
        spec.get("count", 1),
        spec.get("ms", 0),
        spec.get("status", 429 if kind != "rest_error" else 500),
    )
    for name, value, low, high in (
        ("count", count, 1, 1_000_000),
        ("ms", ms, 0, 600_000),
        ("status", status, 400, 599),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}")
    asset_id = spec.get("asset_id")
    if asset_id is not None and not isinstance(asset_id, str):
        raise ValueError("asset_id must be a string")
    return Fault(kind=kind, mode=mode, count=count, ms=ms, status=status, asset_id=asset_id)


def parse_fault_flag(text: str) -> Fault:
    """A fault from the command line: ``KIND`` or ``KIND:key=value,key=value`` (``drop:mode=reset``,
    ``delay:ms=200,count=50``); whole-number values become numbers.

    Raises:
        ValueError: naming what is wrong.
    """
    kind, _, rest = text.partition(":")
    spec: dict[str, Any] = {"kind": kind}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value in {item!r}")
        spec[key] = int(value) if value.isdigit() else value
    return parse_fault(spec)
