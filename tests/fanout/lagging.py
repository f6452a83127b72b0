"""A collector whose NATS publishes of book messages go out ``LAG_S`` after the collector put them, in
order (a collector short of CPU, or on a slow link, publishes late): ``python -m tests.fanout.lagging URL
EXCHANGE NAME LAG_S ASSET...``. Everything else (the book, the bucket values' content) is unchanged."""

from __future__ import annotations

import asyncio
import sys
import time

from nats.aio.client import Client

from polyfeed.fanout import publisher as publisher_module
from tests.fanout.processes import collect

LAG_S = 0.0
_put_at: dict[int, float] = {}
_put = publisher_module.Publisher.put
_publish = Client.publish


def put(self, subject, payload, asset, message_id):  # type: ignore[no-untyped-def]
    _put_at[id(payload)] = time.monotonic()
    _put(self, subject, payload, asset, message_id)


async def publish(self, subject, payload=b"", reply="", headers=None):  # type: ignore[no-untyped-def]
    put_at = _put_at.pop(id(payload), None)
    if put_at is not None and subject.startswith("polyfeed.book."):
        wait_s = put_at + LAG_S - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
    await _publish(self, subject, payload, reply=reply, headers=headers)


if __name__ == "__main__":
    url, exchange, name, lag_s, *assets = sys.argv[1:]
    LAG_S = float(lag_s)
    publisher_module.Publisher.put = put  # type: ignore[method-assign]
    Client.publish = publish  # type: ignore[method-assign]
    asyncio.run(collect(url, exchange, name, assets))
