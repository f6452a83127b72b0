"""Mutated frames through ``decode_market``, the market session and the books (issue 12): nothing raises
out of the session, every bad frame is counted, and no LIVE book ever holds a level it could not have
taken from a valid message.

``make test`` runs a short version; ``make chaos`` (``POLYFEED_CHAOS_SCALE=20``) runs 10^6 frames.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import msgspec

from polyfeed.book import BookStatus, OrderBook
from polyfeed.book.prices import price_key, size_is_valid, size_is_zero
from polyfeed.errors import InvalidLevelError
from polyfeed.session import DecodeFailed, MarketSession, ResyncRequested, SessionConfig
from polyfeed.sim import Exchange
from polyfeed.sim.frames import book_frame, encode_outbound
from tests.driving import connect, feed, missing, resynced

SCALE = int(os.environ.get("POLYFEED_CHAOS_SCALE", "1"))
FRAMES = 50_000 * SCALE
S = 1_000_000_000

_HOSTILE_TEXTS = [
    "0",
    "1",
    "-0.4",
    "1.5",
    "abc",
    "",
    "0.00001",
    "1e3",
    "NaN",
    "0.405",
    " 0.4",
    "٣",
    "0" * 400,
]
_HOSTILE_VALUES: list[object] = [None, 5, 0.5, True, [], {}, "x" * 10_000, -1, 2**80]


def _mutate_text(rng: random.Random, frame: bytes) -> bytes:
    """Byte-level damage: flips, cuts, repeats, insertions, truncation, deep nesting."""
    data = bytearray(frame)
    kind = rng.randrange(7)
    if kind == 0 and data:
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1 and data:
        start = rng.randrange(len(data))
        del data[start : start + rng.randrange(1, 40)]
    elif kind == 2 and data:
        start = rng.randrange(len(data))
        data[start:start] = data[start : start + rng.randrange(1, 60)]
    elif kind == 3:
        data[rng.randrange(len(data) + 1) : 0] = rng.choice(
            [b"[", b"{", b"]", b"}", b",", b'"', b"\\", b"\x00"]
        )
    elif kind == 4:
        del data[rng.randrange(len(data) + 1) :]
    elif kind == 5:
        depth = rng.choice([10, 600, 1500])
        return b"[" * depth + bytes(data) + b"]" * depth
    else:
        return rng.choice(
            [b"PONG", b"INVALID OPERATION", b"", b" ", b"null", b"[]", b"[[]]", b"{}", b"\xff\xfe"]
        )
    return bytes(data)


def _mutate_json(rng: random.Random, frame: bytes, assets: list[str]) -> bytes:
    """Structure-level damage: a field's value swapped for a hostile one, a key dropped, an asset or
    event type changed, a timestamp moved back or forth."""
    try:
        obj = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return frame
    items = obj if isinstance(obj, list) else [obj]
    if not items or not isinstance(items[0], dict):
        return frame
    target: dict[str, object] = rng.choice(items)
    nested = [e for e in target.get("price_changes") or [] if isinstance(e, dict)]  # type: ignore[attr-defined]
    nested += [e for side in ("bids", "asks") for e in target.get(side) or [] if isinstance(e, dict)]  # type: ignore[attr-defined]
    if nested and rng.random() < 0.6:
        target = rng.choice(nested)
    key = rng.choice(list(target) or ["x"])
    roll = rng.random()
    if roll < 0.35:
        target[key] = rng.choice(_HOSTILE_TEXTS)
    elif roll < 0.55:
        target[key] = rng.choice(_HOSTILE_VALUES)
    elif roll < 0.7:
        target.pop(key, None)
    elif roll < 0.8:
        target["asset_id"] = rng.choice([*assets, "1234", ""])
    elif roll < 0.9:
        target["event_type"] = rng.choice(
            ["book", "price_change", "last_trade_price", "tick_size_change", "x"]
        )
    else:
        stamp = target.get("timestamp")
        if isinstance(stamp, str) and stamp.isdigit():
            target["timestamp"] = str(int(stamp) + rng.choice([-(10**6), -1, 0, 1, 10**6, 10**15]))
    return msgspec.json.encode(obj)


def _assert_live_books_hold_only_valid_levels(books: dict[str, OrderBook]) -> None:
    for book in books.values():
        if book.status is not BookStatus.LIVE:
            continue
        bids, asks = book.wire_levels()
        for level in (*bids, *asks):
            try:
                key = price_key(level.price)
            except InvalidLevelError:
                raise AssertionError(f"LIVE book {book.asset_id} holds price {level.price!r}") from None
            assert 0 < key < 10_000, f"LIVE book {book.asset_id} holds a level at {level.price}"
            assert size_is_valid(level.size), f"LIVE book {book.asset_id} holds size {level.size!r}"
            assert not size_is_zero(level.size), f"LIVE book {book.asset_id} holds an empty level"


def test_a_stream_of_mutated_frames_never_raises_and_never_leaves_a_malformed_level_live() -> None:
    rng = random.Random(20261202)
    exchange = Exchange(markets=4, seed=12)
    assets = exchange.asset_ids()
    dumps = [msgspec.json.encode([book_frame(exchange.book(a, initial=True), initial=True)]) for a in assets]
    clean: list[bytes] = []
    while len(clean) < 20_000:
        clean.extend(encode_outbound(o).encode() for o in exchange.step() if o.channel == "market")
    books: dict[str, OrderBook] = {}
    session = MarketSession(1, assets, books, SessionConfig(resync_burst=10**9, resync_per_minute=10**9))
    connect(session, 0)
    mutators: list[Callable[[bytes], bytes]] = [
        lambda f: _mutate_text(rng, f),
        lambda f: _mutate_json(rng, f, assets),
    ]
    decode_failed = mutated = 0
    now = S
    for n in range(FRAMES):
        if n % 5_000 == 0:  # now and then the venue sends every book again (a resubscription)
            for dump in dumps:
                feed(session, dump, now)
        frame = clean[n % len(clean)]
        if rng.random() < 0.3:
            frame = rng.choice(mutators)(frame)
            mutated += 1
        now += 1_000_000
        session.receive_data(frame, now)  # its requests wait until the next timer tick is answered
        decode_failed += sum(1 for e in session.events_received() if isinstance(e, DecodeFailed))
        if n % 97 == 0:
            session.timer(now)
            session.events_received()
            while requests := session.requests_received():
                for request in requests:  # the answer: the exchange's book of the moment
                    assert isinstance(request, ResyncRequested)
                    if request.asset_id in exchange.by_asset:
                        resynced(session, exchange.book(request.asset_id), now)
                    else:  # its market resolved: 404
                        missing(session, request.asset_id, now)
        if n % 499 == 0:
            _assert_live_books_hold_only_valid_levels(books)
    _assert_live_books_hold_only_valid_levels(books)
    assert session.decode_failures == decode_failed > 0, "every frame that did not decode was counted"
    assert mutated > FRAMES // 4
    for dump in dumps:  # the venue sends every book again: the stream takes them, whatever came before
        feed(session, dump, now + S)
    assert all(b.status is BookStatus.LIVE for b in books.values()), "the stream carried on"
