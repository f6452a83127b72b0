"""Decoding frames from the market and user channels.

A frame is one JSON object, a JSON array of objects (the initial dump arrives as one-element arrays),
or a plain-text reply (``PONG``, ``INVALID OPERATION``, ``NO NEW ASSETS``; spec section 3). Every
decode returns a list of messages.

The fast path is one msgspec typed decode (about 1.4 µs for a two-entry ``price_change``). Anything it
rejects goes through a slow path that still decodes what it can: unknown ``event_type`` values come back
as :class:`UnknownMessage`, the two pre-2025-09-15 ``price_change`` formats are normalized to
:class:`PriceChange`, integer timestamps (seen in re-serialised captures) become strings, and objects
without ``event_type`` (REST-shaped items such as ``GET /data/trades`` rows) are recognised by their
fields. A frame that is not JSON, or a known event with wrong types or missing fields, raises
:class:`polyfeed.errors.FrameDecodeError` carrying the raw frame.
"""

from __future__ import annotations

from typing import Any, TypeAlias, get_args

import msgspec

from polyfeed.errors import FrameDecodeError
from polyfeed.wire.market import (
    BestBidAsk,
    Book,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
)
from polyfeed.wire.user import Order, Trade

__all__ = [
    "INVALID_OPERATION",
    "NO_NEW_ASSETS",
    "PONG",
    "InvalidOperation",
    "MarketEvent",
    "MarketMessage",
    "NoNewAssets",
    "Notice",
    "Pong",
    "UnknownMessage",
    "UserEvent",
    "UserMessage",
    "decode_json",
    "decode_market",
    "decode_user",
    "timestamp_ms",
]


# Text frames and unknown events are tagged in ``event_type`` too, with names of polyfeed's own (the
# venue sends no JSON for them), so that every wire message is one member of a tagged union: a
# ``MessageReceived`` written as JSON (``polyfeed stream``) decodes back to the message it carried.


class Notice(msgspec.Struct, frozen=True, tag_field="event_type", tag="notice"):
    """A plain-text frame from the server. Unrecognised text comes back as a bare ``Notice``.

    As JSON: ``{"event_type": "notice", "text": "..."}`` (``pong``, ``invalid_operation``,
    ``no_new_assets`` for the subclasses)."""

    text: str


class Pong(Notice, frozen=True, tag="pong"):
    """The text ``PONG``, the reply to a text ``PING`` (spec 2)."""


class InvalidOperation(Notice, frozen=True, tag="invalid_operation"):
    """The text ``INVALID OPERATION``: a second ``type`` subscription on one connection (spec 1.3)."""


class NoNewAssets(Notice, frozen=True, tag="no_new_assets"):
    """The text ``NO NEW ASSETS``, sent periodically with custom features on (spec 3)."""


PONG = Pong("PONG")
INVALID_OPERATION = InvalidOperation("INVALID OPERATION")
NO_NEW_ASSETS = NoNewAssets("NO NEW ASSETS")
_NOTICES: dict[str, Notice] = {n.text: n for n in (PONG, INVALID_OPERATION, NO_NEW_ASSETS)}


class UnknownMessage(msgspec.Struct, frozen=True, tag_field="event_type", tag="unknown"):
    """An event whose ``event_type`` polyfeed does not know, passed through as decoded JSON.

    Both official SDKs drop these (spec 3); polyfeed hands them on so that a consumer (or a recording)
    sees that the venue started sending something new. As JSON: ``{"event_type": "unknown",
    "venue_event_type": "<the venue's event_type>", "data": {...}}``.
    """

    event_type: str = msgspec.field(name="venue_event_type")
    """The venue's ``event_type``."""
    data: dict[str, Any]
    """The object as the venue sent it."""


MarketEvent: TypeAlias = (
    Book | PriceChange | TickSizeChange | LastTradePrice | BestBidAsk | NewMarket | MarketResolved
)
UserEvent: TypeAlias = Order | Trade
MarketMessage: TypeAlias = MarketEvent | UnknownMessage | Notice
UserMessage: TypeAlias = UserEvent | UnknownMessage | Notice

_MARKET_TYPES: tuple[type[msgspec.Struct], ...] = get_args(MarketEvent)
_USER_TYPES: tuple[type[msgspec.Struct], ...] = get_args(UserEvent)
_MARKET_DECODER = msgspec.json.Decoder(MarketEvent | list[MarketEvent])
_USER_DECODER = msgspec.json.Decoder(UserEvent | list[UserEvent])
MAX_JSON_DEPTH = 32
"""How deeply JSON may nest in a frame that takes the slow path (real messages nest 5 levels at most).
msgspec's untyped decoder recurses once a level in C and bounds itself only by Python's recursion
limit, which some libraries raise (``py_ecc``, under py-clob-client, sets 100,000 at import): a 120 KB
frame of nested arrays then overflowed the C stack and killed the process."""

_ANY_DECODER = msgspec.json.Decoder()
_SPLIT = msgspec.json.Decoder(list[msgspec.Raw] | dict[str, msgspec.Raw])


def _nests_within(data: bytes | str | msgspec.Raw, depth: int) -> bool:
    """Whether ``data`` nests at most ``depth`` containers: each level is split into raw values (msgspec
    skips them without building anything, and gives up long before the C stack does) and only the
    containers among them are looked into. A scan of the frame a level, on the slow path only."""
    try:
        parts = _SPLIT.decode(data)
    except msgspec.ValidationError:
        return True  # a scalar
    except msgspec.DecodeError:
        return True  # not JSON: the decoder says so
    except RecursionError:
        return False
    values = parts.values() if isinstance(parts, dict) else parts
    for raw in values:
        head = memoryview(raw)[:1].tobytes()
        if head in (b"[", b"{") and (depth <= 1 or not _nests_within(raw, depth - 1)):
            return False
    return True


def decode_json(data: bytes | str) -> Any:
    """Untyped JSON as Python objects, nested at most :data:`MAX_JSON_DEPTH` levels: for every frame or
    body polyfeed decodes without a schema (slow paths, REST answers, the local exchange's requests).

    Raises:
        FrameDecodeError: not JSON, or nested too deeply.
    """
    if not _nests_within(data, MAX_JSON_DEPTH):
        raise _too_deep(data)
    try:
        return _ANY_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise FrameDecodeError(f"frame is not valid JSON ({exc})", data) from None


def decode_market(data: bytes | str) -> list[MarketMessage]:
    """Decode one frame of the market channel.

    Args:
        data: the frame as received (text frames may be given as ``str`` or UTF-8 ``bytes``).

    Returns:
        The messages in the frame, in wire order.

    Raises:
        FrameDecodeError: the frame is not JSON or plain text, or a known event in it is malformed.
    """
    try:
        decoded = _MARKET_DECODER.decode(data)
    except msgspec.ValidationError:
        return _decode_slow(data, _MARKET_BY_TAG, _infer_market_tag)  # type: ignore[return-value]
    except msgspec.DecodeError:
        return [_decode_text(data)]
    except RecursionError:
        raise _too_deep(data) from None
    if decoded.__class__ is list:
        return decoded
    return [decoded]


def decode_user(data: bytes | str) -> list[UserMessage]:
    """Decode one frame of the user channel; see :func:`decode_market` for the shapes accepted."""
    try:
        decoded = _USER_DECODER.decode(data)
    except msgspec.ValidationError:
        return _decode_slow(data, _USER_BY_TAG, _infer_user_tag)  # type: ignore[return-value]
    except msgspec.DecodeError:
        return [_decode_text(data)]
    except RecursionError:
        raise _too_deep(data) from None
    if decoded.__class__ is list:
        return decoded
    return [decoded]


def _too_deep(data: bytes | str) -> FrameDecodeError:
    # msgspec raises RecursionError past its nesting limit (a 2.4 KB frame of 1,200 nested arrays does
    # it): that is hostile or broken input like any other, not a reason to lose the connection.
    return FrameDecodeError(f"frame nests JSON too deeply to decode (over {MAX_JSON_DEPTH} levels)", data)


def _decode_text(data: bytes | str) -> Notice:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray | memoryview) else data
    text = text.strip()
    if not text or text[0] in "{[":
        raise FrameDecodeError("frame is not valid JSON", data)
    return _NOTICES.get(text) or Notice(text)


def _tag_of(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


_MARKET_BY_TAG: dict[str, type[msgspec.Struct]] = {_tag_of(c): c for c in _MARKET_TYPES}
_USER_BY_TAG: dict[str, type[msgspec.Struct]] = {_tag_of(c): c for c in _USER_TYPES}


def _string_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """Wire names of the fields that accept a string, so that an integer there can be re-stringified."""
    names = set()
    for info in msgspec.structs.fields(cls):
        if info.type is str or str in get_args(info.type):
            names.add(info.encode_name)
    return frozenset(names)


_STRING_FIELDS: dict[type[msgspec.Struct], frozenset[str]] = {
    c: _string_fields(c) for c in (*_MARKET_TYPES, *_USER_TYPES)
}


def _infer_market_tag(obj: dict[str, Any]) -> str | None:
    if "price_changes" in obj or "changes" in obj or ("price" in obj and "hash" in obj and "side" in obj):
        return "price_change"
    if "bids" in obj or "asks" in obj:
        return "book"
    if "new_tick_size" in obj:
        return "tick_size_change"
    return None


def _infer_user_tag(obj: dict[str, Any]) -> str | None:
    if "maker_orders" in obj or "taker_order_id" in obj:
        return "trade"
    if "original_size" in obj:
        return "order"
    return None


def _normalize_price_change(obj: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the two legacy ``price_change`` formats (spec 4.2, formats A and B) into format C.

    Format B carries one ``hash`` for the state after all its ``changes``; giving it to every entry is
    exact for the book, which checks only the last entry's hash of a burst.
    """
    if "price_changes" in obj:
        return obj
    asset_id = obj.get("asset_id")
    book_hash = obj.get("hash", "")
    changes = obj.get("changes")
    if changes is None:
        changes = [{"price": obj.get("price"), "size": obj.get("size"), "side": obj.get("side")}]
    if not isinstance(changes, list):
        return obj  # let validation report it
    entries = [
        {**change, "asset_id": asset_id, "hash": book_hash} if isinstance(change, dict) else change
        for change in changes
    ]
    return {"market": obj.get("market"), "timestamp": obj.get("timestamp"), "price_changes": entries}


def _decode_slow(
    data: bytes | str,
    by_tag: dict[str, type[msgspec.Struct]],
    infer: Any,
) -> list[msgspec.Struct]:
    decoded = decode_json(data)
    items = decoded if isinstance(decoded, list) else [decoded]
    out: list[msgspec.Struct] = []
    for item in items:
        if not isinstance(item, dict):
            raise FrameDecodeError(f"expected a JSON object, got {type(item).__name__}", data)
        tag = item.get("event_type")
        if tag is None:
            tag = infer(item)
            if tag is None:
                raise FrameDecodeError("object has no event_type and matches no known message", data)
        elif not isinstance(tag, str):
            raise FrameDecodeError(f"event_type is {type(tag).__name__}, not a string", data)
        cls = by_tag.get(tag)
        if cls is None:
            out.append(UnknownMessage(tag, item))
            continue
        if cls is PriceChange:
            item = _normalize_price_change(item)
        strings = _STRING_FIELDS[cls]
        fixed = {
            k: str(v) if (k in strings and isinstance(v, int) and not isinstance(v, bool)) else v
            for k, v in item.items()
            if k != "event_type"
        }
        try:
            out.append(msgspec.convert(fixed, cls))
        except msgspec.ValidationError as exc:
            raise FrameDecodeError(f"malformed {tag} message: {exc}", data) from None
    return out


def timestamp_ms(text: str | None) -> int | None:
    """A venue timestamp (ASCII digits, ms or s) as an integer; ``None`` when it is missing or anything
    else. ``str.isdigit`` alone is not enough: it accepts ``"²"``, which ``int`` then refuses, so a hostile
    timestamp would raise out of whatever parsed it."""
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return int(text)
