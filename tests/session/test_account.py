"""UserState, your account as the user channel and REST tell it: the state rules of spec 5."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from polyfeed.session.account import UserState
from polyfeed.wire import Trade, decode_user
from tests.session.accounts import KEY, NO, YES, order, trade


def test_an_order_through_placement_fills_and_cancellation() -> None:
    state = UserState(KEY)
    assert state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    assert state.apply_order(order("UPDATE", "LIVE", "4", ts=2000, trades=["t1"]))
    assert state.orders["0xo1"].remaining == Decimal(6) and state.orders["0xo1"].trades == ["t1"]
    assert state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000))
    assert not state.open_orders() and state.orders["0xo1"].status == "CANCELED"


def test_an_update_that_overtook_its_cancellation_neither_reopens_nor_shrinks_the_order() -> None:
    state = UserState(KEY)
    state.apply_order(order("PLACEMENT", "LIVE", "0", ts=1000))
    state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000))
    assert not state.apply_order(order("UPDATE", "LIVE", "2", ts=2000))
    assert state.orders["0xo1"].status == "CANCELED" and state.orders["0xo1"].size_matched == "4"
    assert not state.apply_order(order("CANCELLATION", "CANCELED", "4", ts=3000)), "a repeat changes nothing"
    assert state.duplicates == 2


def test_a_trade_resent_at_every_status_counts_its_fill_once() -> None:
    state = UserState(KEY)
    assert state.apply_trade(trade("MATCHED", ts=1000)) == (True, True)
    assert state.apply_trade(trade("MATCHED", ts=1000)) == (False, False)
    assert state.apply_trade(trade("MINED", ts=2000)) == (False, True)
    assert state.apply_trade(trade("CONFIRMED", ts=3000)) == (False, True)
    assert state.apply_trade(trade("MINED", ts=2000)) == (False, False), "late MINED after CONFIRMED"
    assert [f.size for f in state.fills()] == ["4"]
    assert state.trades["t1"].history == ["MATCHED", "MINED", "CONFIRMED"]
    assert state.position(YES) == Decimal(4)


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        ([("MATCHED", 1), ("MINED", 2), ("RETRYING", 3), ("MINED", 4), ("CONFIRMED", 5)], "CONFIRMED"),
        ([("MATCHED", 1), ("RETRYING", 3), ("MINED", 2)], "RETRYING"),  # an older MINED does not undo it
        ([("MATCHED", 1), ("MINED", 2), ("RETRYING", 3), ("FAILED", 4), ("CONFIRMED", 5)], "FAILED"),
        ([("CONFIRMED", 5), ("MATCHED", 1), ("MINED", 2)], "CONFIRMED"),  # first seen late: final stays
    ],
)
def test_the_lifecycle_moves_forward_only(sequence: list[tuple[str, int]], final: str) -> None:
    state = UserState(KEY)
    for status, ts in sequence:
        state.apply_trade(trade(status, ts=ts * 1000))
    assert state.trades["t1"].status == final
    assert len(list(state.fills(include_failed=True))) == 1


def test_a_failed_trade_leaves_the_position() -> None:
    state = UserState(KEY)
    state.apply_trade(trade("MATCHED", ts=1000))
    state.apply_trade(trade("FAILED", ts=2000))
    assert state.position(YES) == 0 and list(state.fills()) == []


def test_as_maker_the_fill_is_my_maker_entry_on_its_own_token() -> None:
    state = UserState(KEY)
    state.apply_trade(trade("MATCHED", ts=1000, maker=True))
    (fill,) = state.fills()
    assert (fill.order_id, fill.asset_id, fill.side, fill.price, fill.size, fill.role) == (
        "0xo1",
        NO,
        "BUY",
        "0.6",
        "4",
        "MAKER",
    )
    assert state.position(NO) == Decimal(4) and state.position(YES) == 0


def test_real_maker_trades_pick_out_fills_by_maker_address(polymarket_fixtures: Path) -> None:
    """user_trade4: a taker SELL of 15 against three makers, two of them this address (spec 5.2)."""
    (message,) = decode_user((polymarket_fixtures / "ws/user/user_trade4.json").read_bytes())
    assert isinstance(message, Trade)
    state = UserState("not-the-owner-key", "0xa3d82ed56f4c68d2328fb8c29e568ba2caf7d7c8")
    state.apply_trade(message)
    fills = list(state.fills())
    assert [(f.side, f.size, f.role) for f in fills] == [("BUY", "5", "MAKER")] * 2
    (message,) = decode_user((polymarket_fixtures / "ws/user/user_trade3.json").read_bytes())
    assert isinstance(message, Trade)
    state = UserState("not-the-owner-key", "0xA3D82ED56F4C68D2328FB8C29E568BA2CAF7D7C8")
    state.apply_trade(message)
    (fill,) = state.fills()
    assert (fill.price, fill.side) == ("0.513", "BUY"), "the maker's own leg, not the taker's 0.49 on No"
