"""What the fan-out publishes (polyfeed.fanout.schema): ids, subjects, shards, the envelope, its JSON Schema.

``docs/fanout-schema.json`` is generated here from the msgspec structs; a test fails when it is stale.
Rewrite it with ``.venv/bin/python -m tests.fanout.test_schema``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pytest

from polyfeed.book import BookStatus
from polyfeed.fanout.schema import (
    KINDS,
    VENUE_KINDS,
    Envelope,
    Heartbeat,
    SnapshotValue,
    book_subject,
    bucket_name,
    decode_envelope,
    decode_heartbeat,
    decode_snapshot_value,
    encode_envelope,
    encode_heartbeat,
    encode_snapshot_value,
    heartbeat_subject,
    message_id,
    message_id_ms,
    parse_shard,
    shard_of,
    subject_prefix,
    subject_token,
)
from polyfeed.wire import decode_market
from polyfeed.wire.market import (
    Book,
    LastTradePrice,
    PriceChange,
    PriceChangeEntry,
    PriceLevel,
    TickSizeChange,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA_PATH = DOCS / "fanout-schema.json"
REGENERATE = ".venv/bin/python -m tests.fanout.test_schema"

# -- the JSON Schema ------------------------------------------------------------------------------------

VENUE_MESSAGES: dict[str, type[msgspec.Struct]] = {
    "snapshot": Book,
    "change": PriceChange,
    "trade": LastTradePrice,
    "tick": TickSizeChange,
}
"""The venue message each venue kind carries (``Collector.on_event``)."""

FIELD_NOTES: dict[type[msgspec.Struct], dict[str, str]] = {
    Envelope: {
        "kind": "What the message is: snapshot (a book message), change (a price_change), trade (a "
        "last_trade_price), tick (a tick_size_change), status (the collector's book changed status), gap "
        "(the collector lost this book's data: what follows is no continuation until the next snapshot). "
        "These are this version's: skip a kind you do not know.",
        "asset_id": "The book's token id (the subject's last token).",
        "market": "The book's condition id (the subject's third token, which is _ where this is empty).",
        "recv_ns": "When the collector received the venue's frame (or decided, for status and gap), ns "
        "since the Unix epoch.",
        "collector": "The name of the collector that published it. Two collectors of a shard store a venue "
        "message once: it names the one whose copy came first.",
        "message": "The venue's message narrowed to this book (a price_change keeps this asset's entries "
        "only, with their hashes); absent for status and gap.",
        "old": "status only: the collector's book status before.",
        "new": "status only: the collector's book status now.",
        "reason": "status: why the status changed; gap: what was lost, and why.",
        "token": "trade only: the token that traded, when it is not this subject's (a print goes on the "
        "subject of every followed token of its market: it settles the hashes of both). Absent on the "
        "traded token's own subject.",
        "slug": "snapshot only: the market's slug on Gamma, where the collector knows it (it followed slugs "
        "or every market). For a reader to show; absent otherwise.",
        "outcome": "snapshot only: the token's outcome (Yes, No, a candidate's name), where known.",
    },
    SnapshotValue: {
        "seq": "The stream sequence of the last message of this book that book includes: apply the book's "
        "messages with a greater sequence.",
        "book": "The book as a book message in the REST /book shape (with tick_size, min_order_size, "
        "neg_risk and the hash).",
        "collector": "The name of the collector that wrote it.",
        "written_ns": "When it was written, ns since the Unix epoch. A value older than five minutes is no "
        "start: every live book's value is rewritten at least once a minute.",
        "previous_trade_price": "The trade price before the book's last one: the venue's hash may still "
        "use it (a print that overtook the changes hashed before it).",
        "candidate_price": "A print of the market's other token not yet confirmed by a hash: the venue's "
        "hash may use it.",
        "slug": "The market's slug on Gamma, where the collector knows it; empty otherwise.",
        "outcome": "The token's outcome (Yes, No, a candidate's name), where known; empty otherwise.",
    },
    Heartbeat: {
        "collector": "The collector's name.",
        "shard": "[I, N]: the collector follows the markets of shard I of N; null: every market it was "
        "given. A consumer turns stale the books of a shard no collector is heard from.",
        "books": "Books it follows.",
        "live": "Of those, the live ones.",
        "time_ns": "When it was sent, ns since the Unix epoch.",
    },
}
"""Each field's description in the schema (the structs' attribute docstrings are not read at run time)."""

STRUCT_NOTES: dict[type[msgspec.Struct], str] = {
    Envelope: "One message about one book, on <prefix>.book.<condition_id>.<asset_id>, in the venue's order.",
    SnapshotValue: "The value under a token id in the key-value bucket: the latest verified snapshot of the "
    "book and the stream sequence it includes.",
    Heartbeat: "A collector runs: once a second on <prefix>.heartbeat.<collector>, on core NATS (not "
    "stored).",
}
"""Each struct's description in the schema (their docstrings speak to Python readers)."""

_STATUS: Any = Literal[tuple(s.value for s in BookStatus)] | None
_TYPES: dict[type[msgspec.Struct], dict[str, Any]] = {
    Envelope: {
        "kind": Literal[KINDS],
        "message": Book | PriceChange | LastTradePrice | TickSizeChange,
        "old": _STATUS,
        "new": _STATUS,
    },
    SnapshotValue: {"book": Book},
    Heartbeat: {},
}
"""Fields whose type the schema says more precisely than the struct: msgspec.Raw (JSON kept raw) by the
messages it holds, plain strings by their values."""


def _described(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A copy of ``struct`` for its JSON Schema: every field described, some typed more precisely."""
    notes, types = FIELD_NOTES[struct], _TYPES[struct]
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(struct):
        assert field.default_factory is msgspec.NODEFAULT, f"{struct.__name__}.{field.name}"
        type_: Any = Annotated[types.get(field.name, field.type), msgspec.Meta(description=notes[field.name])]
        if field.default is msgspec.NODEFAULT:
            fields.append((field.name, type_))
        elif isinstance(field.default, msgspec.Raw):  # left out when empty (omit_defaults)
            fields.append((field.name, type_ | msgspec.UnsetType, msgspec.UNSET))
        else:
            fields.append((field.name, type_, field.default))
    config = struct.__struct_config__
    return msgspec.defstruct(
        struct.__name__,
        fields,
        kw_only=True,
        omit_defaults=config.omit_defaults,
        namespace={"__doc__": STRUCT_NOTES[struct]},
    )


def fanout_json_schema() -> dict[str, Any]:
    """The JSON Schema of everything the fan-out publishes (``docs/fanout-schema.json``)."""
    described = tuple(_described(struct) for struct in (Envelope, SnapshotValue, Heartbeat))
    _, defs = msgspec.json.schema_components(described, ref_template="#/$defs/{name}")
    defs["Envelope"]["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {
                "properties": {"message": {"$ref": f"#/$defs/{message.__name__}"}},
                "required": ["message"],
            },
        }
        for kind, message in VENUE_MESSAGES.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "polyfeed's fan-out on NATS JetStream",
        "description": (
            "Each message on <prefix>.book.<condition_id>.<asset_id> (in the stream, POLYFEED by default, "
            "prefix polyfeed) is an Envelope; each value in the key-value bucket <stream>_books "
            "(POLYFEED_books), under a token id, is a SnapshotValue; each message on "
            "<prefix>.heartbeat.<collector> is a Heartbeat. docs/fanout.md explains them. Generated by "
            "tests/fanout/test_schema.py from polyfeed.fanout.schema and polyfeed.wire.market."
        ),
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in ("Envelope", "SnapshotValue", "Heartbeat")],
        "$defs": defs,
    }


def schema_text() -> str:
    return json.dumps(fanout_json_schema(), indent=2) + "\n"


def test_the_schema_in_docs_is_the_one_the_structs_give() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), f"docs/fanout-schema.json is stale: run {REGENERATE}"


def test_the_schema_describes_every_field_and_kind() -> None:
    for struct, notes in FIELD_NOTES.items():
        assert set(notes) == set(struct.__struct_fields__), struct.__name__
    assert set(VENUE_MESSAGES) == VENUE_KINDS
    defs = fanout_json_schema()["$defs"]
    assert set(defs["Envelope"]["properties"]["kind"]["enum"]) == set(KINDS)
    assert defs["Envelope"]["required"] == ["kind", "asset_id"]
    assert defs["SnapshotValue"]["properties"]["book"] == {
        "$ref": "#/$defs/Book",
        "description": FIELD_NOTES[SnapshotValue]["book"],
    }
    assert {
        "Book",
        "PriceChange",
        "PriceChangeEntry",
        "PriceLevel",
        "LastTradePrice",
        "TickSizeChange",
    } <= set(defs)


def test_the_fanout_page_quotes_the_example_in_another_language_as_it_is() -> None:
    # docs/examples/read-fanout.mjs was run against a collector on the local exchange (docs/fanout.md);
    # node is not needed here: only the quote is checked
    example = (DOCS / "examples" / "read-fanout.mjs").read_text()
    assert f"```js\n{example}```" in (DOCS / "fanout.md").read_text()


# -- message ids ------------------------------------------------------------------------------------------

BODY = b'{"event_type":"price_change","market":"0x5f65","timestamp":"1790658693030","price_changes":[]}'


def test_the_same_content_gives_the_same_id_so_two_collectors_store_it_once() -> None:
    assert message_id("7667", "1790658693030", 0, BODY) == message_id("7667", "1790658693030", 0, bytes(BODY))


def test_a_different_ordinal_asset_timestamp_or_byte_gives_a_different_id() -> None:
    base = message_id("7667", "1790658693030", 0, BODY)
    others = [
        message_id("7667", "1790658693030", 1, BODY),  # the same bytes again within the millisecond
        message_id("7667", "1790658693030", "s", BODY),
        message_id("7668", "1790658693030", 0, BODY),
        message_id("7667", "1790658693031", 0, BODY),
        message_id("7667", "1790658693030", 0, BODY.replace(b"0x5f65", b"0x5f66")),
        message_id("7667", "1790658693030", 0, BODY + b" "),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_an_id_is_asset_timestamp_ordinal_and_a_digest_the_same_in_every_version() -> None:
    # Collectors of one shard running different polyfeed versions must still agree on ids.
    digest = hashlib.blake2b(BODY, digest_size=10).hexdigest()
    assert message_id("7667", "1790658693030", 2, BODY) == f"7667.1790658693030.2.{digest}"
    assert message_id("7667", "1790658693030", 0, b"{}") == "7667.1790658693030.0.4ae4acf2f802f6f5210f"


def test_an_ids_timestamp_is_read_back_for_its_asset_only() -> None:
    msg_id = message_id("7667", "1790658693030", 2, BODY)
    assert message_id_ms(msg_id, "7667") == 1790658693030
    assert message_id_ms(msg_id, "766") == 0, "another asset's id (a prefix of it)"
    assert message_id_ms("", "7667") == message_id_ms("7667.x.0.ab", "7667") == 0


# -- shards -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", (0, 1)), ("0/3", (0, 3)), ("2/3", (2, 3)), ("9/10", (9, 10))]
)
def test_a_shard_is_i_of_n(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "expected I/N, such as 0/3"),
        ("3", "expected I/N"),
        ("1/", "expected I/N"),
        ("/3", "expected I/N"),
        ("a/3", "expected I/N"),
        ("-1/3", "expected I/N"),
        ("1/2/3", "expected I/N"),
        ("1.0/3", "expected I/N"),
        ("3/3", "I must be at least 0 and below N"),
        ("4/3", "below N"),
        ("0/0", "N at least 1"),
    ],
)
def test_a_shard_that_is_not_i_of_n_says_what_is_expected(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        parse_shard(text)
    assert repr(text) in str(caught.value)


CONDITION_ID = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"


def test_a_market_has_the_same_shard_in_every_process_and_version() -> None:
    # A digest of the condition id, never Python's hash() (salted per process): these are fixed.
    assert [shard_of(CONDITION_ID, n) for n in (1, 2, 3, 4, 7, 10)] == [0, 1, 2, 3, 6, 5]
    assert shard_of("0x0ed904759531985d5d9dc9f81818e811892f902bd23f0824128b2f330c5c7fd0", 3) == 1


def test_shards_share_the_markets_about_evenly() -> None:
    markets = ["0x" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(4_000)]
    for n in (2, 3, 5):
        counts = Counter(shard_of(m, n) for m in markets)
        assert set(counts) == set(range(n))
        expected = len(markets) / n
        # one standard deviation is 25 to 32 markets here: 10% is more than three of them
        assert all(abs(c - expected) < 0.1 * expected for c in counts.values()), (n, counts)


# -- subjects and names -------------------------------------------------------------------------------------


def test_ids_are_subject_tokens_as_they_are_and_other_text_is_made_one() -> None:
    assert subject_token(CONDITION_ID) == CONDITION_ID
    assert subject_token("76670011110000") == "76670011110000"
    assert subject_token("a.b c*>é") == "a_b_c___"  # '.' splits subjects; '*' and '>' are wildcards
    assert subject_token("") == "_"


def test_subjects_and_the_bucket_follow_the_stream_name() -> None:
    assert subject_prefix("POLYFEED") == "polyfeed"
    assert subject_prefix("Desk-2_feed") == "desk-2_feed"
    assert bucket_name("POLYFEED") == "POLYFEED_books"
    assert book_subject("polyfeed", "0xab", "7667") == "polyfeed.book.0xab.7667"
    assert book_subject("polyfeed", "", "7667") == "polyfeed.book._.7667"
    assert heartbeat_subject("polyfeed", "host-1.example 42") == "polyfeed.heartbeat.host-1_example_42"


@pytest.mark.parametrize("name", ["", "poly.feed", "poly feed", "poly*", "poly>", "polyféed", "a/b"])
def test_a_stream_name_jetstream_does_not_take_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="use letters, digits, '_' and '-' only"):
        subject_prefix(name)


def test_a_stream_name_with_a_final_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="use letters"):
        subject_prefix("POLYFEED\n")


# -- the envelope and the bucket's value ------------------------------------------------------------------

CHANGE = PriceChange(
    market=CONDITION_ID,
    timestamp="1790658693030",
    price_changes=[
        PriceChangeEntry(
            asset_id="7667", price="0.3", size="120", side="BUY", hash="9e1c", best_bid="0.3", best_ask="0.31"
        )
    ],
)
BOOK = Book(
    market=CONDITION_ID,
    asset_id="7667",
    timestamp="1790658693030",
    hash="9e1c",
    bids=[PriceLevel("0.29", "10"), PriceLevel("0.3", "120")],
    asks=[PriceLevel("0.32", "5"), PriceLevel("0.31", "7")],
    tick_size="0.01",
    min_order_size="5",
    neg_risk=False,
)


def test_a_venue_message_travels_as_its_bytes_and_decodes_as_the_venue_s() -> None:
    body = msgspec.json.encode(CHANGE)
    envelope = Envelope(
        kind="change",
        asset_id="7667",
        market=CONDITION_ID,
        recv_ns=1_790_658_693_412_000_000,
        collector="host-1234",
        message=msgspec.Raw(body),
    )
    data = encode_envelope(envelope)
    assert body in data  # embedded as JSON, not as a string
    back = decode_envelope(data)
    assert bytes(back.message) == body
    assert (back.kind, back.asset_id, back.market, back.recv_ns, back.collector) == (
        "change",
        "7667",
        CONDITION_ID,
        1_790_658_693_412_000_000,
        "host-1234",
    )
    assert decode_market(bytes(back.message)) == [CHANGE]


def test_a_status_message_has_no_message_and_leaves_out_what_it_does_not_say() -> None:
    envelope = Envelope(kind="status", asset_id="7667", old="live", new="stale", reason="connection lost")
    data = encode_envelope(envelope)
    assert (
        data == b'{"kind":"status","asset_id":"7667","old":"live","new":"stale","reason":"connection lost"}'
    )
    back = decode_envelope(data)
    assert back == envelope
    assert not back.message


def test_an_envelope_from_a_newer_collector_with_more_fields_still_decodes() -> None:
    back = decode_envelope(b'{"kind":"gap","asset_id":"7667","reason":"x","epoch":3,"extra":{"a":[1]}}')
    assert (back.kind, back.asset_id, back.reason) == ("gap", "7667", "x")


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b'{"asset_id":"7667"}', b'{"kind":"change"}', b'{"kind":1,"asset_id":"7667"}', b"{not json"],
)
def test_what_is_not_an_envelope_does_not_decode(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_envelope(data)


def test_the_bucket_s_value_keeps_the_book_s_bytes_and_its_sequence() -> None:
    body = msgspec.json.encode(BOOK)
    value = SnapshotValue(seq=4811, book=msgspec.Raw(body), collector="host-1234", written_ns=1)
    back = decode_snapshot_value(encode_snapshot_value(value))
    assert (back.seq, bytes(back.book), back.collector, back.written_ns) == (4811, body, "host-1234", 1)
    assert decode_market(bytes(back.book)) == [BOOK]


def test_a_heartbeat_says_the_collector_s_shard_as_i_and_n() -> None:
    beat = Heartbeat(collector="host-1234", shard=(1, 3), books=40, live=38, time_ns=5)
    data = encode_heartbeat(beat)
    assert json.loads(data) == {
        "collector": "host-1234",
        "shard": [1, 3],
        "books": 40,
        "live": 38,
        "time_ns": 5,
    }
    assert decode_heartbeat(data) == beat
    assert decode_heartbeat(b'{"collector":"host-1234"}').shard is None  # every market it was given


def test_what_is_published_decodes_under_the_schema_s_types() -> None:
    """The schema's precise types (a Book in a snapshot, a PriceChange in a change) hold for what the
    structs write: decoded by the same copies of the structs the schema is made from."""
    envelope = _described(Envelope)
    value = _described(SnapshotValue)
    for kind, message in (("snapshot", BOOK), ("change", CHANGE)):
        data = encode_envelope(
            Envelope(kind=kind, asset_id="7667", message=msgspec.Raw(msgspec.json.encode(message)))
        )
        assert msgspec.json.decode(data, type=envelope).message == message  # type: ignore[attr-defined]
    status = encode_envelope(
        Envelope(kind="status", asset_id="7667", old="syncing", new="live", reason="snapshot")
    )
    assert msgspec.json.decode(status, type=envelope).message is msgspec.UNSET  # type: ignore[attr-defined]
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'alive' - at `\$.new`"):
        msgspec.json.decode(status.replace(b'"live"', b'"alive"'), type=envelope)
    stored = encode_snapshot_value(SnapshotValue(seq=3, book=msgspec.Raw(msgspec.json.encode(BOOK))))
    assert msgspec.json.decode(stored, type=value).book == BOOK  # type: ignore[attr-defined]


def main() -> None:
    SCHEMA_PATH.write_text(schema_text())
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
