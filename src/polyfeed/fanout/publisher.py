"""Publishing to JetStream with acknowledgements, a bounded window and a bounded buffer.

:meth:`Publisher.put` is synchronous (the stream's ``on_event`` calls it, on the event loop, once a
message): it appends to a buffer that one task drains into NATS, each message with a reply inbox whose
acknowledgement (the stream sequence, or an error) comes back to one subscription. At most
``max_pending`` messages wait for their acknowledgement (the window); while NATS is away the buffer keeps
up to ``max_buffer`` messages, which are published once it is back.

What cannot be published is never dropped silently. A message refused by JetStream, one whose
acknowledgement does not come within ``ack_timeout_s``, or one that finds the buffer full makes its book
*dirty*: the book's later messages are counted in :attr:`Publisher.unpublished` and not sent (they would
follow a hole), until the collector mends it with a ``gap`` message and a fresh snapshot
(:meth:`Publisher.mend`), so consumers see the gap and start again from the snapshot.

A key-value snapshot is tied to the last message of its book published before it was taken
(:meth:`Publisher.put_snapshot`): it is written once that message's acknowledgement gives its stream
sequence, which is what the snapshot includes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import msgspec

from polyfeed.fanout.jetstream import DUPLICATE_WINDOW_S, StreamLayout
from polyfeed.fanout.schema import SnapshotValue, encode_snapshot_value

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

__all__ = ["Publisher"]

log = logging.getLogger("polyfeed.fanout")


_STALE_NS = int((DUPLICATE_WINDOW_S - 20) * 1e9)


class _Ack(msgspec.Struct, frozen=True):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, object] | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class _Item:
    """One message on its way: what to send, its book, and what waits for its acknowledgement."""

    __slots__ = ("asset", "headers", "payload", "put_ns", "sent_ns", "seq", "snapshot", "subject", "token")

    def __init__(self, subject: str, payload: bytes, headers: dict[str, str] | None, asset: str) -> None:
        self.subject = subject
        self.payload = payload
        self.headers = headers
        self.asset = asset
        self.put_ns = time.monotonic_ns()
        self.sent_ns = 0
        self.seq = 0  # the stream sequence, once acknowledged; -1: failed
        # a key-value snapshot (and its trade price alternates) to write once acknowledged
        self.snapshot: tuple[bytes, tuple[str | None, str | None]] | None = None
        self.token = 0


class Publisher:
    """The collector's outbound half (see the module's docstring).

    Args:
        client: a connected NATS client (it reconnects by itself).
        layout: the stream and bucket.
        collector: this collector's name, written into the key-value values.
        max_pending: messages sent and not yet acknowledged, at most.
        max_buffer: messages held while NATS is away or the window is full, at most.
        ack_timeout_s: how long an acknowledgement may take before the message counts as failed.
    """

    def __init__(
        self,
        client: Client,
        layout: StreamLayout,
        *,
        collector: str = "",
        max_pending: int = 4_000,
        max_buffer: int = 200_000,
        ack_timeout_s: float = 5.0,
    ) -> None:
        self.client = client
        self.layout = layout
        self.collector = collector
        self.max_pending = max_pending
        self.max_buffer = max_buffer
        self.ack_timeout_s = ack_timeout_s
        self.labels: Mapping[str, tuple[str, str]] = {}
        """Each book's market slug and outcome, where known, written with its snapshots."""
        self.acked = 0
        """Messages JetStream acknowledged (duplicates included)."""
        self.duplicates = 0
        """Of those, the ones JetStream already held (another collector of the shard published them)."""
        self.failed = 0
        """Messages refused by JetStream or never acknowledged."""
        self.unpublished = 0
        """Messages not sent: their book was dirty, or the buffer was full."""
        self.snapshots_written = 0
        """Key-value snapshots acknowledged."""
        self.newest_seq = 0
        """The newest stream sequence acknowledged (of this stream, not the bucket's)."""
        self.dirty: dict[str, str] = {}
        """Books whose messages could not all be published, and why (mended by :meth:`mend`)."""
        self.on_failure: Callable[[str], None] | None = None
        """Called with a book's asset id when it turns dirty."""
        self._buffer: deque[_Item] = deque()
        self._pending: dict[int, _Item] = {}
        self._last: dict[str, _Item] = {}  # each book's last message put
        self._token = 0
        self._inbox = ""
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._logged_failures = 0

    @property
    def pending(self) -> int:
        """Messages sent and waiting for their acknowledgement."""
        return len(self._pending)

    @property
    def buffered(self) -> int:
        """Messages waiting to be sent."""
        return len(self._buffer)

    async def start(self) -> None:
        client = self.client
        self._inbox = client.new_inbox()
        await client.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._task = asyncio.create_task(self._run(), name="polyfeed-publisher")
        self._sweeper = asyncio.create_task(self._sweep(), name="polyfeed-publisher-acks")

    async def close(self, *, drain_s: float = 5.0) -> None:
        """Send what is buffered and wait up to ``drain_s`` for the acknowledgements, then stop."""
        deadline = time.monotonic() + drain_s
        while (self._buffer or self._pending) and time.monotonic() < deadline and self.client.is_connected:
            await asyncio.sleep(0.01)
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._task, self._sweeper) if t is not None), return_exceptions=True
        )
        self._task = self._sweeper = None
        # What the drain did not get acknowledged is counted, not forgotten.
        left = sum(1 for i in (*self._buffer, *self._pending.values()) if not i.asset.startswith("$KV"))
        if left:
            self.unpublished += left
            log.warning("%d messages were not acknowledged when the publisher stopped", left)
        self._buffer.clear()
        self._pending.clear()

    # -- what the collector gives -------------------------------------------------------------------------

    def put(self, subject: str, payload: bytes, asset: str, message_id: str | None) -> None:
        """Send ``payload`` on ``subject`` (about book ``asset``), stored once per ``message_id``."""
        if asset in self.dirty:
            self.unpublished += 1
            return
        if len(self._buffer) >= self.max_buffer:
            self.unpublished += 1
            self._make_dirty(asset, f"the publish buffer was full ({self.max_buffer} messages)")
            return
        item = _Item(subject, payload, {"Nats-Msg-Id": message_id} if message_id else None, asset)
        self._buffer.append(item)
        self._last[asset] = item
        self._wake.set()

    def put_snapshot(
        self,
        asset: str,
        book: bytes,
        *,
        quiet: bool = False,
        alternates: tuple[str | None, str | None] = (None, None),
    ) -> bool:
        """Write ``book`` (a ``book`` message's JSON, the book as its messages put so far left it) to the
        key-value bucket, with the stream sequence of its last message. Returns whether it will be
        written (not for a dirty book, nor one with nothing published yet).

        With ``quiet``, only if its last message is acknowledged, and at the newest sequence acknowledged
        (no message of the book lies between: the snapshot includes the stream up to there)."""
        last = self._last.get(asset)
        if last is None or asset in self.dirty or last.seq < 0:
            return False
        if quiet:
            if last.seq == 0:
                return False
            self._write_snapshot(asset, book, max(last.seq, self.newest_seq), alternates)
        elif last.seq > 0:
            self._write_snapshot(asset, book, last.seq, alternates)
        else:
            last.snapshot = (book, alternates)
        return True

    def delete_snapshot(self, asset: str) -> None:
        """Remove a book's value from the bucket (a closed book: nothing to start from)."""
        item = _Item(self.layout.kv_subject(asset), b"", {"KV-Operation": "DEL"}, f"$KV{asset}")
        self._buffer.append(item)
        self._wake.set()

    def connection_lost(self) -> None:
        """NATS dropped the connection: every message sent and not yet acknowledged is in doubt (the
        server may have gone before storing it, and no acknowledgement will say so before
        ``ack_timeout_s``), so it counts as failed and its book turns dirty now (an acknowledgement that
        comes after all is ignored). Its later messages then wait for the ``gap`` and
        the snapshot that mend it, which follow the hole at once in the stream: a consumer never applies
        a message across it (it would fail a hash) before it learns of it."""
        pending = self._pending
        for token in list(pending):
            self._fail(pending.pop(token), "NATS connection lost before its acknowledgement")
        self._room.set()

    def mend(self, asset: str) -> str | None:
        """Clear a dirty book (the caller then puts its ``gap`` and snapshot); returns why it was."""
        return self.dirty.pop(asset, None)

    # -- the task that sends ----------------------------------------------------------------------------

    async def _run(self) -> None:
        client = self.client
        buffer = self._buffer
        pending = self._pending
        publish = client.publish
        inbox = self._inbox
        while True:
            if not buffer:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not client.is_connected:
                await asyncio.sleep(0.05)  # nats-py reconnects by itself; the buffer holds meanwhile
                continue
            if len(pending) >= self.max_pending:
                self._room.clear()
                await self._room.wait()
                continue
            item = buffer.popleft()
            if item.asset in self.dirty:  # put before its book turned dirty: it would follow the hole
                self.unpublished += 1
                continue
            if item.put_ns < time.monotonic_ns() - _STALE_NS and not item.asset.startswith("$KV"):
                # Held past JetStream's duplicate window (NATS away that long): another collector's copy
                # may be stored already, and this one would be stored again, late and out of order.
                self.unpublished += 1
                self._make_dirty(item.asset, "held longer than the duplicate window while NATS was away")
                continue
            self._token += 1
            token = item.token = self._token
            item.sent_ns = time.monotonic_ns()
            pending[token] = item
            try:
                await publish(item.subject, item.payload, reply=f"{inbox}.{token}", headers=item.headers)
            except Exception as exc:  # the connection closed under us, the outbound buffer full, ...
                pending.pop(token, None)
                self._fail(item, f"publish failed: {exc or type(exc).__name__}")

    async def _on_ack(self, msg: Msg) -> None:
        token_text = msg.subject.rpartition(".")[2]
        item = self._pending.pop(int(token_text), None) if token_text.isdigit() else None
        if item is None:
            return  # answered after its timeout: already counted as failed
        if len(self._pending) < self.max_pending:
            self._room.set()
        if msg.headers and msg.headers.get("Status") == "503":
            self._fail(item, "no JetStream stream takes this subject (NATS answered 503)")
            return
        try:
            ack = _decode_ack(msg.data)
        except msgspec.DecodeError:
            self._fail(item, f"an acknowledgement that does not decode: {msg.data[:200]!r}")
            return
        if ack.error is not None:
            self._fail(item, f"JetStream refused it: {ack.error.get('description', ack.error)}")
            return
        item.seq = ack.seq
        self.acked += 1
        self.duplicates += ack.duplicate
        if item.asset.startswith("$KV"):
            self.snapshots_written += 1
            return
        if ack.seq > self.newest_seq:
            self.newest_seq = ack.seq
        if item.snapshot is not None:
            if item.asset not in self.dirty:  # a dirty book's snapshot waits for the one that mends it
                self._write_snapshot(item.asset, item.snapshot[0], ack.seq, item.snapshot[1])
            item.snapshot = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.ack_timeout_s / 4))
            limit = time.monotonic_ns() - int(self.ack_timeout_s * 1e9)
            late = [t for t, item in self._pending.items() if item.sent_ns < limit]
            for token in late:
                item = self._pending.pop(token)
                self._fail(item, f"no acknowledgement within {self.ack_timeout_s:g} s")
            if late:
                self._room.set()

    # -- failures ---------------------------------------------------------------------------------------

    def _fail(self, item: _Item, why: str) -> None:
        item.seq = -1
        item.snapshot = None
        self.failed += 1
        if item.asset.startswith("$KV"):
            log.warning("a key-value snapshot was not written: %s", why)
            return
        self._make_dirty(item.asset, why)

    def _make_dirty(self, asset: str, why: str) -> None:
        if asset in self.dirty:
            return
        self.dirty[asset] = why
        self._logged_failures += 1
        if self._logged_failures <= 10 or self._logged_failures % 1000 == 0:
            log.warning(
                "book %s: a message could not be published (%s); its messages wait for a fresh snapshot "
                "(%d books so far)",
                asset,
                why,
                self._logged_failures,
            )
        if self.on_failure is not None:
            self.on_failure(asset)

    def _write_snapshot(
        self, asset: str, book: bytes, seq: int, alternates: tuple[str | None, str | None]
    ) -> None:
        slug, outcome = self.labels.get(asset, ("", ""))
        value = SnapshotValue(
            seq=seq,
            book=msgspec.Raw(book),
            collector=self.collector,
            written_ns=time.time_ns(),
            previous_trade_price=alternates[0],
            candidate_price=alternates[1],
            slug=slug,
            outcome=outcome,
        )
        item = _Item(self.layout.kv_subject(asset), encode_snapshot_value(value), None, f"$KV{asset}")
        self._buffer.append(item)
        self._wake.set()
