"""The local exchange: a Polymarket-compatible venue for offline use, demos and tests.

So far: the sans-I/O engine (:class:`Exchange`). The WebSocket/REST server comes next.
"""

from polyfeed.sim.engine import Exchange, Outbound, SimMarket

__all__ = ["Exchange", "Outbound", "SimMarket"]
