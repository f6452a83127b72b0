"""Fan-out on NATS JetStream: one collector follows the venue, every process and machine reads from NATS.

- :func:`polyfeed.fanout.collector.publish` (``polyfeed publish``): follow books and publish them.
- :class:`NatsMarketStream` (``polyfeed watch --nats``, ``polyfeed stream --nats``): the same face as
  :class:`polyfeed.stream.MarketStream`, fed from NATS, every book checked with the venue's hashes.
- :mod:`polyfeed.fanout.schema`: what is published (``docs/fanout.md`` for readers without polyfeed).

Needs ``nats-py`` (``pip install 'polyfeed[nats]'``).
"""

from polyfeed.fanout.collector import Collector, PublishSummary, publish
from polyfeed.fanout.consumer import NatsMarketStream
from polyfeed.fanout.jetstream import FanoutError, StreamLayout
from polyfeed.fanout.sync import SyncNatsMarketStream

__all__ = [
    "Collector",
    "FanoutError",
    "NatsMarketStream",
    "PublishSummary",
    "StreamLayout",
    "SyncNatsMarketStream",
    "publish",
]
