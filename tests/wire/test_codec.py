"""Frame decoding: every captured message, every frame shape, and malformed input."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from polyfeed.errors import FrameDecodeError
from polyfeed.wire import (
    Book,
    InvalidOperation,
    LastTradePrice,
    NoNewAssets,
    Notice,
    Order,
    Pong,
    PriceChange,
    TickSizeChange,
    Trade,
    UnknownMessage,
    decode_json,
    decode_market,
    decode_user,
)
from polyfeed.wire.codec import MAX_JSON_DEPTH

EXPECTED = {
    "ws/market/book.json": Book,
    "ws/market/book_polypy_yes.json": Book,
    "ws/market/book_snapshot_captured.json": Book,
    "ws/market/last_trade_price.json": LastTradePrice,
    "ws/market/price_change_batched_example.json": PriceChange,
    "ws/market/price_change_legacy_single.json": PriceChange,
    "ws/market/tick_size_change.json": TickSizeChange,
    "ws/user/order_cancellation.json": Order,
    "ws/user/order_fok_buy_pusd_size.json": Order,
    "ws/user/order_fok_killed.json": Order,
    "ws/user/order_placement.json": Order,
    "ws/user/order_venue_cancel.json": Order,
    "ws/user/trade_confirmed_no_event_type.json": Trade,
    "ws/user/user_trade1.json": Trade,
    "ws/user/user_trade2.json": Trade,
    "ws/user/user_trade3.json": Trade,
    "ws/user/user_trade4.json": Trade,
}


def decode(path: Path) -> list[object]:
    data = path.read_bytes()
    return list(decode_user(data) if "/user/" in path.as_posix() else decode_market(data))


def test_every_captured_websocket_message_is_covered(polymarket_fixtures: Path) -> None:
    """A fixture added to ../shared without an expectation here fails this test, so none goes untested."""
    found = {p.relative_to(polymarket_fixtures).as_posix() for p in polymarket_fixtures.glob("ws/*/*.json")}
    assert found == set(EXPECTED) | {"ws/market/price_change_crossing_burst.json"}


@pytest.mark.parametrize(("name", "cls"), sorted(EXPECTED.items()))
def test_captured_message_decodes_to_its_type(polymarket_fixtures: Path, name: str, cls: type) -> None:
    (message,) = decode(polymarket_fixtures / name)
    assert type(message) is cls
    raw = json.loads((polymarket_fixtures / name).read_text())
    for field in ("asset_id", "market", "price", "timestamp"):
        if field in raw and hasattr(message, field):
            assert getattr(message, field) == raw[field], "wire text is kept as it was"


def test_crossing_burst_decodes_in_order(polymarket_fixtures: Path) -> None:
    messages = decode(polymarket_fixtures / "ws/market/price_change_crossing_burst.json")
    assert isinstance(messages[0], Book) and isinstance(messages[-1], Book)
    changes = messages[1:-1]
    assert all(isinstance(m, PriceChange) and len(m.price_changes) == 2 for m in changes)
    assert len(changes) == 49


def test_legacy_flat_price_change_becomes_one_entry(polymarket_fixtures: Path) -> None:
    raw = json.loads((polymarket_fixtures / "ws/market/price_change_legacy_single.json").read_text())
    (message,) = decode(polymarket_fixtures / "ws/market/price_change_legacy_single.json")
    assert isinstance(message, PriceChange)
    (entry,) = message.price_changes
    assert (entry.asset_id, entry.price, entry.size, entry.side, entry.hash) == (
        raw["asset_id"],
        raw["price"],
        raw["size"],
        raw["side"],
        raw["hash"],
    )
    assert entry.best_bid is None and entry.best_ask is None, "the legacy formats carry no top of book"


def test_legacy_changes_format_gives_each_entry_the_asset_and_hash() -> None:
    frame = {
        "asset_id": "7",
        "changes": [
            {"price": "0.4", "side": "SELL", "size": "3300"},
            {"price": "0.5", "side": "BUY", "size": "10"},
        ],
        "event_type": "price_change",
        "market": "0x5f",
        "timestamp": "1729084877448",
        "hash": "3cd4",
    }
    (message,) = decode_market(json.dumps(frame))
    assert isinstance(message, PriceChange)
    assert [(e.asset_id, e.price, e.hash) for e in message.price_changes] == [
        ("7", "0.4", "3cd4"),
        ("7", "0.5", "3cd4"),
    ]


def polypy_frames(path: Path) -> list[str]:
    """polypy's stream files: one frame a line as a Python repr or JSON; label lines skipped."""
    frames = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip()[0] not in "[{":
            continue
        try:
            value = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            value = json.loads(line)
        frames.append(json.dumps(value))
    return frames


def test_every_polypy_stream_frame_decodes(polymarket_fixtures: Path) -> None:
    for path in sorted(polymarket_fixtures.glob("streams/*.txt")):
        frames = polypy_frames(path)
        assert frames, path.name
        for frame in frames:
            assert decode_market(frame), (path.name, frame[:80])


def test_numeric_timestamps_become_their_text(polymarket_fixtures: Path) -> None:
    """polypy re-serialised its capture with timestamps as JSON numbers; the hash needs the text."""
    frames = polypy_frames(polymarket_fixtures / "streams/polypy_messages_hash.txt")
    for frame in frames:
        (message,) = decode_market(frame)
        assert message.timestamp == str(json.loads(frame)["timestamp"])  # type: ignore[union-attr]


def test_unknown_event_type_passes_through(polymarket_fixtures: Path) -> None:
    frames = polypy_frames(polymarket_fixtures / "streams/polypy_server_unknown_event_type.txt")
    (message,) = decode_market(frames[1])
    assert isinstance(message, UnknownMessage) and message.event_type == "test"
    assert message.data["event_type"] == "test"


def test_array_frames_keep_order_and_may_be_empty() -> None:
    books = [
        {
            "event_type": "book",
            "market": "0x1",
            "asset_id": str(n),
            "timestamp": "1",
            "hash": "h",
            "bids": [],
            "asks": [],
        }
        for n in (1, 2)
    ]
    decoded = decode_market(json.dumps(books))
    assert [m.asset_id for m in decoded] == ["1", "2"]  # type: ignore[union-attr]
    assert decode_market("[]") == []


@pytest.mark.parametrize(
    ("frame", "cls"),
    [
        ("PONG", Pong),
        (b"INVALID OPERATION", InvalidOperation),
        ("NO NEW ASSETS", NoNewAssets),
        ("  PONG\n", Pong),
    ],
)
def test_plain_text_frames_decode_to_notices(frame: str | bytes, cls: type) -> None:
    (notice,) = decode_market(frame)
    assert type(notice) is cls
    (user_notice,) = decode_user(frame)
    assert type(user_notice) is cls


def test_unrecognised_text_is_a_bare_notice() -> None:
    assert decode_market("server going away") == [Notice("server going away")]


def test_unknown_fields_are_ignored() -> None:
    frame = {
        "event_type": "tick_size_change",
        "asset_id": "1",
        "market": "0x",
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "5",
        "side": "BUY",
        "something_new": {"x": 1},
    }
    (message,) = decode_market(json.dumps(frame))
    assert message == TickSizeChange(
        asset_id="1", market="0x", old_tick_size="0.01", new_tick_size="0.001", timestamp="5"
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"event_type": "book", "market": "0x1", "asset_id": "1", "timest', "not valid JSON"),
        ('{"event_type": "book"}', "malformed book"),
        (
            '{"event_type": "book", "market": "0x1", "asset_id": "1", "timestamp": "1", "bids": 5}',
            "malformed book",
        ),
        (
            '{"event_type": "price_change", "market": "0x1", "timestamp": "1", "price_changes": '
            '[{"asset_id": "1", "price": 0.5, "size": "1", "side": "BUY"}]}',
            "malformed price_change",
        ),
        ("5", "expected a JSON object"),
        ('[{"event_type": "book"}, 7]', "malformed book"),
        ("[7]", "expected a JSON object"),
        ('{"event_type": 5}', "not a string"),
        ('{"hello": "world"}', "no event_type"),
        ("{not json", "not valid JSON"),
        ("[" * 1200 + "]" * 1200, "too deeply"),
        ('{"a":' * 1200 + "1" + "}" * 1200, "too deeply"),
        ('[{"event_type": "book", "bids": ' + "[" * 1200 + "]" * 1200 + "}]", "too deeply"),
    ],
)
def test_malformed_frames_raise_with_the_raw_frame(frame: str, reason: str) -> None:
    for data in (frame, frame.encode()):
        for decode in (decode_market, decode_user):
            if reason.startswith("malformed") and decode is decode_user:
                continue  # a market event is an unknown message on the user channel
            with pytest.raises(FrameDecodeError, match=reason) as error:
                decode(data)
            assert error.value.raw == data, "the raw frame is kept for the bug report"


def test_rest_shaped_objects_without_event_type_are_recognised(polymarket_fixtures: Path) -> None:
    (trade,) = decode(polymarket_fixtures / "ws/user/trade_confirmed_no_event_type.json")
    assert isinstance(trade, Trade) and trade.status == "CONFIRMED"
    (order,) = decode(polymarket_fixtures / "ws/user/order_venue_cancel.json")
    assert isinstance(order, Order) and order.status == "INVALID"
    with pytest.raises(FrameDecodeError):
        decode_user('{"id": "x"}')


def test_user_trades_keep_their_maker_orders(polymarket_fixtures: Path) -> None:
    (trade1,) = decode(polymarket_fixtures / "ws/user/user_trade1.json")
    assert isinstance(trade1, Trade) and len(trade1.maker_orders) == 6
    assert any(m.asset_id != trade1.asset_id for m in trade1.maker_orders), "a fill on the complement token"
    (trade3,) = decode(polymarket_fixtures / "ws/user/user_trade3.json")
    assert isinstance(trade3, Trade) and trade3.trader_side == "MAKER"
    assert trade3.maker_orders[0].side == "BUY" and trade3.bucket_index == 0


def test_killed_fok_order_keeps_empty_strings_and_the_reason(polymarket_fixtures: Path) -> None:
    (order,) = decode(polymarket_fixtures / "ws/user/order_fok_killed.json")
    assert isinstance(order, Order)
    assert order.size_matched == "" and order.created_at == ""
    assert order.status.startswith("CANCELED_")


def test_bytes_and_text_decode_alike(polymarket_fixtures: Path) -> None:
    data = (polymarket_fixtures / "ws/market/price_change_crossing_burst.json").read_bytes()
    assert decode_market(data) == decode_market(data.decode())


def test_messages_are_frozen() -> None:
    (message,) = decode_market(
        '{"event_type":"last_trade_price","asset_id":"1","market":"0x","price":"0.5",'
        '"size":"1","side":"BUY","timestamp":"1"}'
    )
    with pytest.raises(AttributeError):
        message.price = "0.6"  # type: ignore[union-attr,misc]
    assert msgspec.structs.asdict(message)["price"] == "0.5"  # type: ignore[arg-type]


def test_deep_nesting_is_refused_even_where_a_library_raised_the_recursion_limit() -> None:
    """py_ecc (under py-clob-client) sets the recursion limit to 100,000 at import; msgspec's untyped
    decoder then recursed into a 120 KB frame of nested arrays until the C stack overflowed, killing the
    process. Run where a crash would only end a child process."""
    code = (
        "import sys; sys.setrecursionlimit(100_000)\n"
        "from polyfeed.errors import FrameDecodeError\n"
        "from polyfeed.wire import decode_json, decode_market, decode_user\n"
        "for depth in (33, 60_000, 200_000):\n"
        "    for frame in ('[' * depth + ']' * depth, '{\"a\":' * depth + '1' + '}' * depth):\n"
        "        for decode in (decode_json, decode_market, decode_user):\n"
        "            try:\n"
        "                decode(frame)\n"
        "            except FrameDecodeError as exc:\n"
        "                assert 'too deeply' in str(exc), exc\n"
        "            else:\n"
        "                raise AssertionError(depth)\n"
        '    tags = \'{"event_type":"new_market","market":"0x","timestamp":"1","tags":[\'\n'
        "    try:\n"
        "        decode_market(tags + '[' * depth + ']' * depth + ']}')  # kept raw, or refused\n"
        "    except FrameDecodeError as exc:\n"
        "        assert 'too deeply' in str(exc), exc\n"
        "print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "refused"), done.stderr[-2000:]


def test_json_nested_as_deep_as_real_messages_decodes() -> None:
    nested: object = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    assert decode_json(json.dumps(nested)) == nested
