"""polyfeed: Polymarket's CLOB order books and trades, exact, checked, and honest about gaps.

>>> from polyfeed import MarketStream          # streams (async)
>>> from polyfeed.book import OrderBook         # one asset's book, sans I/O
>>> from polyfeed.wire import decode_market     # frames to typed messages
"""

from polyfeed.stream import MarketStream, SyncMarketStream, UserStream

__all__ = ["MarketStream", "SyncMarketStream", "UserStream", "__version__"]
__version__ = "0.1.0.dev0"
