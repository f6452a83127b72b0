"""The session events as one tagged union: every event and every wire message inside one reads back from
its JSON, the line ``polyfeed stream`` writes keeps its documented shape, and no event is left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest

import polyfeed.session
from polyfeed.book import BookStatus
from polyfeed.session import events
from polyfeed.session.events import (
    AnyEvent,
    AnyRequest,
    BookUpdated,
    ConnectFailed,
    CredentialsRejected,
    DecodeFailed,
    Disconnected,
    Event,
    MessageReceived,
    OrderUpdated,
    Reconciled,
    ReconcileRequested,
    Reconnected,
    Resynced,
    ResyncRequested,
    StatusChanged,
    TradeUpdated,
    WireMessage,
    encode_event,
)
from polyfeed.wire import (
    INVALID_OPERATION,
    NO_NEW_ASSETS,
    PONG,
    NewMarket,
    Notice,
    Order,
    Trade,
    UnknownMessage,
    decode_market,
    decode_user,
)

DECODE = msgspec.json.Decoder(AnyEvent).decode
HEAD = {"recv_ns": 1_790_000_000_123_456_789, "seq": 7, "connection_id": 2}

_ORDER = {
    "event_type": "order",
    "id": "0x0f76",
    "market": "0xdd22",
    "asset_id": "2174",
    "side": "BUY",
    "price": "0.513",
    "original_size": "5",
    "size_matched": "0",
    "status": "LIVE",
    "associate_trades": None,
    "timestamp": "1725842520990",
    "type": "PLACEMENT",
}
_TRADE = {
    "event_type": "trade",
    "id": "f50e8ab2",
    "market": "0xdd22",
    "asset_id": "2174",
    "side": "BUY",
    "size": "5",
    "price": "0.52",
    "status": "MATCHED",
    "maker_orders": [{"order_id": "0xa39a", "matched_amount": "5", "price": "0.52", "outcome_index": 0}],
    "bucket_index": 3,
}
_MARKET_FRAMES: list[dict[str, Any] | str] = [
    {
        "event_type": "book",
        "market": "0x6bd5",
        "asset_id": "3509",
        "timestamp": "1786604072222",
        "hash": "ed47",
        "bids": [{"price": "0.01", "size": "3149725.72"}],
        "asks": [{"price": "0.99", "size": "156606.14"}],
        "tick_size": "0.01",
        "last_trade_price": "0.920",
    },
    {
        "event_type": "price_change",
        "market": "0x25f9",
        "timestamp": "1778685765351",
        "price_changes": [
            {"asset_id": "5220", "price": "0.26", "size": "10", "side": "SELL", "hash": "f0ab"},
            {"asset_id": "5221", "price": "0.74", "size": "10", "side": "BUY", "best_bid": "0.74"},
        ],
    },
    {
        "event_type": "tick_size_change",
        "asset_id": "1154",
        "market": "0xbacd",
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "1739068041853",
    },
    {
        "event_type": "last_trade_price",
        "asset_id": "2174",
        "market": "0xdd22",
        "price": "0.491",
        "side": "SELL",
        "size": "85.36",
        "timestamp": "1724564136087",
        "fee_rate_bps": "0",
    },
    {
        "event_type": "best_bid_ask",
        "market": "0x0005",
        "asset_id": "8535",
        "best_bid": "0.73",
        "best_ask": "0.77",
        "spread": "0.04",
        "timestamp": "1766789469958",
    },
    {
        "event_type": "new_market",
        "id": 1557558,
        "market": "0x0a",
        "timestamp": "1773307200000",
        "assets_ids": ["1042", "7118"],
        "outcomes": ["Up", "Down"],
        "event_message": {"id": "9", "slug": "btc"},
        "tags": [{"id": "1", "label": "Crypto"}, "x"],
        "order_price_min_tick_size": 0.01,
    },
    {
        "event_type": "market_resolved",
        "id": "1557558",
        "market": "0x0a",
        "timestamp": "1773307500000",
        "assets_ids": ["1042", "7118"],
        "winning_asset_id": "1042",
        "winning_outcome": "Up",
    },
    {"event_type": "brand_new_thing", "market": "0x0a", "nested": {"a": [1, 2.5, None]}},
    "server going away",
    "NO NEW ASSETS",
    "INVALID OPERATION",
    "PONG",
]


def _decode(frame: dict[str, Any] | str, user: bool = False) -> WireMessage:
    data = frame if isinstance(frame, str) else json.dumps(frame)
    (message,) = decode_user(data) if user else decode_market(data)
    return message


def wire_messages() -> list[WireMessage]:
    """One of each wire message a MessageReceived can carry (and an unknown user-channel one)."""
    market = [_decode(frame) for frame in _MARKET_FRAMES]
    user = [_decode(_ORDER, user=True), _decode(_TRADE, user=True), _decode({"event_type": "book"}, True)]
    return market + user


def example_events() -> list[Event]:
    """At least one of every concrete event, every wire message inside a MessageReceived."""
    order = _decode(_ORDER, user=True)
    trade = _decode(_TRADE, user=True)
    assert isinstance(order, Order) and isinstance(trade, Trade)
    received: list[Event] = [MessageReceived(**HEAD, message=m) for m in wire_messages()]
    return [
        *received,
        BookUpdated(**HEAD, asset_id="3509"),
        StatusChanged(
            **HEAD, asset_id="3509", old=BookStatus.SYNCING, new=BookStatus.LIVE, reason="snapshot"
        ),
        ResyncRequested(**HEAD, asset_id="3509", reason="hash mismatch"),
        Resynced(**HEAD, asset_id="3509", replayed=3),
        Disconnected(**HEAD, reason="closed by the venue (1006)", assets=("3509", "3510")),
        Reconnected(**HEAD, gap_ns=2_500_000_000, assets=("3509",)),
        ConnectFailed(**HEAD, reason="connection refused", attempt=2),
        DecodeFailed(**HEAD, error="frame is not valid JSON", raw='{"event_type": "pri'),
        OrderUpdated(**HEAD, order_id=order.id, status="LIVE", size_matched="0", order=order),
        TradeUpdated(**HEAD, trade_id=trade.id, status="MATCHED", new=True, trade=trade),
        ReconcileRequested(**HEAD),
        CredentialsRejected(**HEAD, failures=3),
        Reconciled(
            **HEAD,
            orders_added=("a",),
            orders_changed=(),
            orders_closed=("b", "c"),
            trades_added=(),
            trades_changed=("t",),
        ),
    ]


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_the_examples_hold_every_event_and_every_wire_message() -> None:
    assert {type(e) for e in example_events()} == set(get_args(AnyEvent))
    inner = {type(m) for m in wire_messages()}
    assert inner == set(get_args(WireMessage)), "every wire message class, the notices' subclasses too"


def test_every_event_is_in_the_union_and_exported() -> None:
    """Adding an event is a class in events.py plus its name in AnyEvent and the two ``__all__``:
    forgetting one fails here."""
    defined = {c for c in _all_subclasses(Event) if c.__module__ == events.__name__}
    assert defined == set(get_args(AnyEvent))
    for cls in defined:
        assert cls.__name__ in events.__all__
        assert cls.__name__ in polyfeed.session.__all__
        assert getattr(polyfeed.session, cls.__name__) is cls


@pytest.mark.parametrize("event", example_events(), ids=lambda e: type(e).__name__)
def test_each_event_reads_back_from_its_json(event: Event) -> None:
    data = msgspec.json.encode(event)
    assert data.startswith(b'{"type":"%s",' % type(event).__name__.encode())
    assert DECODE(data) == event
    assert DECODE(encode_event(event)) == event
    assert msgspec.json.decode(encode_event(event), type=AnyEvent) == event


def test_the_tag_is_the_class_name_and_no_field() -> None:
    """The tag lives on the class: an event holds what it held untagged, so creating one costs the same."""
    for cls in get_args(AnyEvent):
        assert cls.__struct_config__.tag_field == "type"
        assert cls.__struct_config__.tag == cls.__name__
        assert "type" not in cls.__struct_fields__
    assert BookUpdated.__struct_fields__ == ("recv_ns", "seq", "connection_id", "asset_id")


def test_match_narrows_the_union() -> None:
    def describe(event: AnyEvent) -> str:
        match event:
            case BookUpdated(asset_id=asset):
                return f"book {asset}"
            case MessageReceived(message=Notice(text=text)):
                return f"notice {text}"
            case MessageReceived(message=message):
                return type(message).__name__
            case _:
                return "other"

    assert describe(DECODE(encode_event(BookUpdated(**HEAD, asset_id="9")))) == "book 9"
    assert describe(DECODE(encode_event(MessageReceived(**HEAD, message=PONG)))) == "notice PONG"
    book = _decode(_MARKET_FRAMES[0])
    assert describe(DECODE(encode_event(MessageReceived(**HEAD, message=book)))) == "Book"


def _line_as_before(event: Event) -> bytes:
    """The line as ``polyfeed stream`` built it by hand before the union (to_builtins, then a dict)."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    record: dict[str, Any] = {"type": type(event).__name__}
    if isinstance(event, MessageReceived):
        message = fields.pop("message")
        record.update(fields)
        record["message_type"] = type(event.message).__name__
        record["message"] = message
        return msgspec.json.encode(record)
    if isinstance(event, DecodeFailed):
        raw = event.raw
        fields["raw"] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    record.update(fields)
    return msgspec.json.encode(record)


@pytest.mark.parametrize("event", example_events(), ids=lambda e: type(e).__name__)
def test_the_line_is_byte_for_byte_what_it_was(event: Event) -> None:
    """The README's line: ``type``, ``recv_ns``, ``seq``, ``connection_id``, the event's fields, and for a
    MessageReceived ``message_type`` then ``message``. Only text frames and unknown events, which had no
    tag, read differently inside ``message`` (the next test)."""
    if isinstance(event, MessageReceived) and isinstance(event.message, Notice | UnknownMessage):
        return
    if isinstance(event, MessageReceived) and isinstance(event.message, NewMarket) and event.message.tags:
        with pytest.raises(TypeError, match=r"msgspec\.Raw"):  # a new_market with tags stopped the stream
            _line_as_before(event)
        return
    assert encode_event(event) == _line_as_before(event)


def test_text_frames_and_unknown_events_carry_a_tag_of_polyfeeds_own() -> None:
    lines = [
        json.loads(encode_event(MessageReceived(**HEAD, message=m)))
        for m in (PONG, INVALID_OPERATION, NO_NEW_ASSETS, Notice("server going away"))
    ]
    assert [(line["message_type"], line["message"]) for line in lines] == [
        ("Pong", {"event_type": "pong", "text": "PONG"}),
        ("InvalidOperation", {"event_type": "invalid_operation", "text": "INVALID OPERATION"}),
        ("NoNewAssets", {"event_type": "no_new_assets", "text": "NO NEW ASSETS"}),
        ("Notice", {"event_type": "notice", "text": "server going away"}),
    ]
    unknown = _decode({"event_type": "brand_new_thing", "x": 1})
    line = json.loads(encode_event(MessageReceived(**HEAD, message=unknown)))
    assert line["message_type"] == "UnknownMessage"
    assert line["message"] == {
        "event_type": "unknown",
        "venue_event_type": "brand_new_thing",
        "data": {"event_type": "brand_new_thing", "x": 1},
    }
    assert DECODE(json.dumps(line)) == MessageReceived(**HEAD, message=unknown)


def test_a_line_puts_the_type_first_and_the_message_class_before_the_message() -> None:
    changed = StatusChanged(
        recv_ns=5,
        seq=6,
        connection_id=2,
        asset_id="7",
        old=BookStatus.SYNCING,
        new=BookStatus.LIVE,
        reason="r",
    )
    assert encode_event(changed) == (
        b'{"type":"StatusChanged","recv_ns":5,"seq":6,"connection_id":2,"asset_id":"7",'
        b'"old":"syncing","new":"live","reason":"r"}'
    )
    tick = _decode(_MARKET_FRAMES[2])
    line = encode_event(MessageReceived(recv_ns=5, seq=6, connection_id=2, message=tick))
    assert line.startswith(
        b'{"type":"MessageReceived","recv_ns":5,"seq":6,"connection_id":2,"message_type":"TickSizeChange",'
        b'"message":{"event_type":"tick_size_change","asset_id":"1154",'
    )


def test_a_bad_frame_is_written_as_text_and_reads_back_as_text() -> None:
    failed = DecodeFailed(**HEAD, error="not JSON", raw=b'{"event_type": "pri\xff')
    line = encode_event(failed)
    assert json.loads(line)["raw"] == '{"event_type": "pri\ufffd', "text for jq, not base64"
    back = DECODE(line)
    assert isinstance(back, DecodeFailed) and back.raw == '{"event_type": "pri\ufffd'


def test_a_line_of_no_known_type_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'Event'"):
        DECODE(b'{"type":"Event","recv_ns":1,"seq":1,"connection_id":1}')
    with pytest.raises(msgspec.ValidationError, match="missing required field `asset_id`"):
        DECODE(b'{"type":"BookUpdated","recv_ns":1,"seq":1,"connection_id":1}')


def test_every_captured_message_reads_back_inside_a_message_received(polymarket_fixtures: Path) -> None:
    for path in sorted(polymarket_fixtures.glob("ws/*/*.json")):
        data = path.read_bytes()
        messages = decode_user(data) if path.parent.name == "user" else decode_market(data)
        for seq, message in enumerate(messages):
            event = MessageReceived(recv_ns=1, seq=seq, connection_id=1, message=message)
            assert DECODE(encode_event(event)) == event, path.name


def test_every_request_is_an_event_of_the_union() -> None:
    assert set(get_args(AnyRequest)) <= set(get_args(AnyEvent))
    assert set(get_args(AnyRequest)) == {ResyncRequested, ReconcileRequested, CredentialsRejected}
