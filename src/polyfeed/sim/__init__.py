"""The local exchange: a Polymarket-compatible venue for offline use, demos and tests.

The sans-I/O engine (:class:`Exchange`) and its server (:class:`Simulator`): the market channel and
the book REST calls. The user channel, Gamma and fault injection come next.
"""

from polyfeed.sim.engine import Exchange, Outbound, SimMarket
from polyfeed.sim.server import Simulator

__all__ = ["Exchange", "Outbound", "SimMarket", "Simulator"]
