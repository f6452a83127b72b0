"""``SyncNatsMarketStream``: :class:`polyfeed.fanout.NatsMarketStream` for synchronous code.

>>> with SyncNatsMarketStream("nats://127.0.0.1:4222", ["7667...1111"]) as stream:  # doctest: +SKIP
...     for event in stream:
...         print(event)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from polyfeed.fanout.consumer import NatsMarketStream
from polyfeed.session import Event
from polyfeed.stream.market import MarketStream
from polyfeed.stream.sync import SyncMarketStream

__all__ = ["SyncNatsMarketStream"]


class SyncNatsMarketStream(SyncMarketStream):
    """The fan-out's stream on its own event loop in a background thread, as
    :class:`polyfeed.stream.SyncMarketStream` runs a venue stream; the arguments are
    :class:`NatsMarketStream`'s."""

    def __init__(self, nats_url: str, asset_ids: Iterable[str] | None = None, **kwargs: Any) -> None:
        self._nats_url = nats_url
        self._nats_assets = None if asset_ids is None else list(asset_ids)
        super().__init__((), **kwargs)

    def _make_stream(
        self, asset_ids: Iterable[str], on_event: Callable[[Event], None], kwargs: dict[str, Any]
    ) -> MarketStream:
        stream = NatsMarketStream(self._nats_url, self._nats_assets, on_event=on_event, max_queue=0, **kwargs)
        return cast(MarketStream, stream)  # the same face: books, error, entering and leaving
