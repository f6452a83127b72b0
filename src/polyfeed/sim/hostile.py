"""Frames a hostile or broken venue might send, for the ``hostile`` fault (issue 12's chaos suite).

Each mode builds what goes to every market connection; none of them changes the exchange's books, so
a client that handles them keeps books equal to the exchange's:

- ``nested``: 1,500 nested arrays (2.9 KB; msgspec gives up on the depth);
- ``huge``: one 12 MB frame of an event nobody knows;
- ``types``: a ``price_change`` of a real token whose price and size are JSON numbers, not strings;
- ``foreign``: a ``price_change`` for a token the venue never listed, and a ``last_trade_price`` naming
  a stray token of a real market at a price nobody traded;
- ``backwards``: a real token's top bid restated unchanged, with a timestamp ten seconds in the past and
  the true hash at that timestamp (a venue clock that steps back).
"""

from __future__ import annotations

import random

import msgspec

from polyfeed.sim.engine import Exchange
from polyfeed.wire import LastTradePrice, PriceChange, PriceChangeEntry

__all__ = ["HOSTILE_MODES", "hostile_frames"]

HOSTILE_MODES = ("nested", "huge", "types", "foreign", "backwards")
_encode = msgspec.json.encode


def hostile_frames(exchange: Exchange, mode: str, rng: random.Random) -> list[str]:
    """The frames of one ``hostile`` fault.

    Raises:
        ValueError: an unknown mode.
    """
    if mode == "nested":
        return ["[" * 1500 + "]" * 1500]
    if mode == "huge":
        return ['{"event_type":"flood","data":"' + "x" * 12_000_000 + '"}']
    market = rng.choice(exchange.markets)
    ts = str(exchange.now_ms)
    if mode == "types":
        bid, _ = market.top(market.yes)
        frame = {
            "market": market.condition_id,
            "price_changes": [{"asset_id": market.yes, "price": float(bid), "size": 5, "side": "BUY"}],
            "timestamp": ts,
            "event_type": "price_change",
        }
        return [_encode(frame).decode()]
    if mode == "foreign":
        stray = str(rng.randrange(10**76, 10**77))
        entry = PriceChangeEntry(asset_id=stray, price="0.5", size="10", side="BUY", hash="0" * 40)
        change = PriceChange(market="0x" + "ab" * 32, timestamp=ts, price_changes=[entry])
        trade = LastTradePrice(
            asset_id=stray, market=market.condition_id, price="0.77", size="1", side="BUY", timestamp=ts
        )
        return [_encode(change).decode(), _encode(trade).decode()]
    if mode == "backwards":
        asset = market.yes
        bids, _ = market.wire_levels(asset)
        if not bids:
            return []
        past = str(exchange.now_ms - 10_000)
        bid, ask = market.top(asset)
        entry = PriceChangeEntry(
            asset_id=asset,
            price=bids[-1].price,
            size=bids[-1].size,
            side="BUY",
            hash=market.hash(asset, past),
            best_bid=bid,
            best_ask=ask,
        )
        return [
            _encode(PriceChange(market=market.condition_id, timestamp=past, price_changes=[entry])).decode()
        ]
    raise ValueError(f"hostile mode must be one of {', '.join(HOSTILE_MODES)}, not {mode!r}")
