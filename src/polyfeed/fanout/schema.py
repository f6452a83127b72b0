"""What the fan-out publishes on NATS JetStream: subjects, the envelope, message ids, the KV value.

One subject a book, ``<prefix>.book.<condition_id>.<asset_id>`` (the prefix is the stream's name in lower
case: ``polyfeed`` for the stream ``POLYFEED``), carries everything about that book in the venue's order,
so that a consumer can filter one book, one market (``polyfeed.book.<condition_id>.*``) or all
(``polyfeed.book.>``). Each message is one JSON :class:`Envelope`:

.. code-block:: json

    {"kind": "change", "asset_id": "7667...", "market": "0x5f65...", "recv_ns": 1790658693412000000,
     "collector": "host-1234", "message": {"event_type": "price_change", "market": "0x5f65...",
     "timestamp": "1790658693030", "price_changes": [{"asset_id": "7667...", "price": "0.3",
     "size": "120", "side": "BUY", "hash": "0x9e1c...", "best_bid": "0.3", "best_ask": "0.31"}]}}

``message`` is the venue's own message in Polymarket's documented market-channel format, as polyfeed
decodes and re-encodes it (absent fields ``null``, unknown ones dropped, old shapes normalised), narrowed to
this book: a ``price_change`` keeps only this asset's entries, with their hashes, so a consumer in any
language verifies the book with the venue's hash independently of the collector. The kinds:

- ``snapshot``: a ``book`` message, the venue's (a subscription, a trade) or the collector's own book
  after a resync or a NATS outage, with the venue's metadata and its hash;
- ``change``: a ``price_change``; ``tick``: a ``tick_size_change``;
- ``trade``: a ``last_trade_price``, on the subject of every followed token of its market (a print settles
  both tokens' hashes); ``token`` names the one that traded when it is not the subject's;
- ``status``: the collector's book changed status (``old``, ``new``, ``reason``; no ``message``);
- ``gap``: the collector lost this book's data (its venue connection dropped, or messages could not be
  published): what follows on the subject is not a continuation until the next ``snapshot``.

The position of a message is its JetStream stream sequence. Two collectors of one shard publish the venue's
messages under the same JetStream message id (:func:`message_id`, from the content: the asset, the venue's
timestamp, the message's ordinal within that timestamp and a digest of its bytes), so the stream holds each
once. A per-collector counter would differ between the two (each numbers what it saw since it started)
and break that; gaps are shown instead by ``gap`` messages, and by the venue's hashes, which a missing
change fails (the venue numbers nothing: ``docs/book-checks.md``).

The key-value bucket holds, under each asset id, the latest verified snapshot and the stream sequence it
includes (:class:`SnapshotValue`): a consumer starting late applies it and then every message of the book
with a greater sequence. ``docs/fanout.md`` and ``docs/fanout-schema.json`` describe the same for readers
without polyfeed.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from polyfeed.net.gamma import shard_of

__all__ = [
    "KINDS",
    "Envelope",
    "Heartbeat",
    "SnapshotValue",
    "bucket_name",
    "heartbeat_subject",
    "message_id",
    "message_id_ms",
    "parse_shard",
    "shard_of",
    "subject_prefix",
    "subject_token",
]

KINDS = ("snapshot", "change", "trade", "tick", "status", "gap")
"""Every ``kind`` an :class:`Envelope` has (a consumer skips, counting, a kind it does not know)."""

VENUE_KINDS = frozenset({"snapshot", "change", "trade", "tick"})
"""The kinds whose ``message`` is a venue message, applied to the book."""


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One published message about one book (see the module's docstring).

    ``message`` is kept as raw JSON (``msgspec.Raw``): the collector writes the venue's JSON once, and a
    consumer hands it to the same decoder as a live frame.
    """

    kind: str
    asset_id: str
    market: str = ""
    recv_ns: int = 0
    """When the collector received the venue's frame (or decided, for ``status`` and ``gap``), ns."""
    collector: str = ""
    message: msgspec.Raw = msgspec.Raw()
    """The venue's message (empty for ``status`` and ``gap``)."""
    old: str | None = None
    new: str | None = None
    reason: str | None = None
    token: str = ""
    """For a ``trade`` published on another token's subject of the same market: the token that traded
    (a print settles the hashes of both tokens of its market). Empty on the token's own subject."""
    slug: str = ""
    """For a ``snapshot``: the market's slug on Gamma, where the collector knows it (empty otherwise)."""
    outcome: str = ""
    """For a ``snapshot``: the token's outcome (``Yes``, ``No``, a candidate's name), where known."""


class SnapshotValue(msgspec.Struct, frozen=True, kw_only=True):
    """The value under an asset id in the key-value bucket."""

    seq: int
    """The stream sequence of the last message of this book that ``book`` includes: a consumer applies
    the messages of this book with a greater one."""
    book: msgspec.Raw
    """A ``book`` message (REST ``/book`` shape: with ``tick_size``, ``min_order_size``, ``neg_risk``
    and the hash)."""
    collector: str = ""
    written_ns: int = 0
    previous_trade_price: str | None = None
    """The book's other trade prices its hashes may be computed with (polyfeed's
    ``OrderBook.trade_price_alternates``): a print that overtook changes hashed before it ..."""
    candidate_price: str | None = None
    """... and a print of the market's other token not yet confirmed by a hash."""
    slug: str = ""
    """The market's slug on Gamma, where the collector knows it (empty otherwise)."""
    outcome: str = ""
    """The token's outcome, where known."""


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """What a collector says once a second on ``<prefix>.heartbeat.<collector>`` (core NATS, not stored):
    a consumer marks the books of a shard no collector is heard from stale."""

    collector: str
    shard: tuple[int, int] | None = None
    """``(I, N)``: the collector follows the markets :func:`shard_of` gives to I of N (``None``: all)."""
    books: int = 0
    live: int = 0
    time_ns: int = 0


encode_envelope = msgspec.json.Encoder().encode
decode_envelope = msgspec.json.Decoder(Envelope).decode
encode_snapshot_value = msgspec.json.Encoder().encode
decode_snapshot_value = msgspec.json.Decoder(SnapshotValue).decode
encode_heartbeat = msgspec.json.Encoder().encode
decode_heartbeat = msgspec.json.Decoder(Heartbeat).decode

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_prefix(stream: str) -> str:
    """The subjects' first token for a stream name (``POLYFEED`` -> ``polyfeed``).

    Raises:
        ValueError: a name JetStream does not accept (letters, digits, ``_`` and ``-`` only).
    """
    if not _NAME.fullmatch(stream):
        raise ValueError(f"stream name {stream!r}: use letters, digits, '_' and '-' only")
    return stream.lower()


def bucket_name(stream: str) -> str:
    """The key-value bucket of a stream's snapshots (``POLYFEED`` -> ``POLYFEED_books``)."""
    return f"{stream}_books"


def subject_token(text: str) -> str:
    """``text`` as one subject token: condition ids (``0x...``) and token ids (digits) are already;
    anything else has its unsafe characters replaced, and an empty one is ``_``."""
    return _TOKEN_UNSAFE.sub("_", text) or "_"


def book_subject(prefix: str, market: str, asset_id: str) -> str:
    return f"{prefix}.book.{subject_token(market)}.{subject_token(asset_id)}"


def heartbeat_subject(prefix: str, collector: str) -> str:
    """Where a collector says once a second that it runs (core NATS, outside the stream)."""
    return f"{prefix}.heartbeat.{subject_token(collector)}"


def message_id(asset_id: str, timestamp: str, ordinal: int | str, body: bytes) -> str:
    """A JetStream message id derived from a venue message's content: two collectors that received the
    same message give it the same id, and JetStream stores it once (within its duplicate window).

    ``ordinal`` counts the book's messages with the same venue timestamp (a burst), so that a level set,
    changed and set back within one millisecond (the same bytes twice) is two messages; snapshots, which
    a collector may get where another does not (its own subscription's), have ``"s"`` in its place."""
    digest = hashlib.blake2b(body, digest_size=10).hexdigest()
    return f"{asset_id}.{timestamp}.{ordinal}.{digest}"


def message_id_ms(msg_id: str, asset_id: str) -> int:
    """The venue timestamp a :func:`message_id` of ``asset_id`` holds (0: not such an id)."""
    if not msg_id.startswith(asset_id + "."):
        return 0
    start = len(asset_id) + 1
    end = msg_id.find(".", start)
    text = msg_id[start:end] if end > 0 else ""
    return int(text) if text.isascii() and text.isdigit() else 0


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (``0 <= I < N``) as ``(I, N)``.

    Raises:
        ValueError: anything else, saying what is expected.
    """
    index, slash, count = text.partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"shard {text!r}: expected I/N, such as 0/3 (the first of three collectors)")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ValueError(f"shard {text!r}: I must be at least 0 and below N, and N at least 1")
    return i, n
