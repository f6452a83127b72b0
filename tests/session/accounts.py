"""Orders and trades of a test account, as the user channel and REST give them."""

from __future__ import annotations

from polyfeed.wire import Credentials, MakerOrder, Order, Trade

S = 1_000_000_000
KEY = "00000000-0000-4000-8000-0000000000aa"
ME = "0x00000000000000000000000000000000000000Aa"
CREDS = Credentials(KEY, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=", "pass-phrase-value")
YES, NO, MARKET = "111", "222", "0xmarket"


def order(
    kind: str, status: str, matched: str, *, ts: int, oid: str = "0xo1", trades: list[str] | None = None
) -> Order:
    return Order(
        id=oid,
        market=MARKET,
        asset_id=YES,
        side="BUY",
        price="0.4",
        type=kind,
        original_size="10",
        size_matched=matched,
        status=status,
        associate_trades=trades,
        timestamp=str(ts),
    )


def trade(status: str, *, ts: int, tid: str = "t1", maker: bool = False, size: str = "4") -> Trade:
    makers = [
        MakerOrder(order_id="0xo1", matched_amount=size, price="0.6", asset_id=NO, owner=KEY, side="BUY"),
        MakerOrder(order_id="0xother", matched_amount="1", price="0.4", asset_id=YES, owner="someone else"),
    ]
    return Trade(
        id=tid,
        market=MARKET,
        asset_id=YES,
        side="BUY",
        size=size,
        price="0.4",
        status=status,
        taker_order_id="0xtaker",
        trader_side="MAKER" if maker else "TAKER",
        timestamp=str(ts),
        maker_orders=makers,
    )
