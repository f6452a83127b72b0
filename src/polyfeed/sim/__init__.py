"""The local exchange: a Polymarket-compatible venue for offline use, demos and tests.

The sans-I/O engine (:class:`Exchange`, :mod:`polyfeed.sim.engine`, with its markets and account) and
its server (:class:`Simulator`, :mod:`polyfeed.sim.server`): the market and user channels, the CLOB
REST calls, Gamma and fault injection, each in a module of its own. It imports no client layer
(``polyfeed.book``, ``net``, ``stream``, ``session``): it is a witness independent of the client it tests.
"""

from polyfeed.sim.engine import Exchange, Outbound, SimMarket
from polyfeed.sim.server import Simulator

__all__ = ["Exchange", "Outbound", "SimMarket", "Simulator"]
