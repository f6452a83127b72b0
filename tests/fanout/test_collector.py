"""The collector against a real nats-server and the local exchange: two collectors of one shard (high
availability) with one killed, what is published for each venue message, shards, and NATS refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from polyfeed.book import BookStatus, CheckKind
from polyfeed.fanout import FanoutError, NatsMarketStream, publish
from polyfeed.fanout.schema import decode_envelope
from polyfeed.session import Event, StatusChanged
from polyfeed.sim import Simulator
from polyfeed.wire import Book, decode_market
from tests.fanout.processes import spawn
from tests.fanout.test_consumer import collecting, run
from tests.natsserver import NatsServer
from tests.waiting import until, until_async


async def stored(url: str, stream: str = "POLYFEED") -> list[tuple[int, dict[str, str], bytes]]:
    """Every message the stream holds: (sequence, headers, payload)."""
    import nats
    from nats.js import api

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        last = int(info.state.last_seq)
        sub = await js.pull_subscribe(
            f"{stream.lower()}.book.>",
            stream=stream,
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.ALL),
        )
        messages: list[tuple[int, dict[str, str], bytes]] = []
        while not messages or messages[-1][0] < last:
            for msg in await sub.fetch(1000, timeout=5):
                messages.append((msg.metadata.sequence.stream, dict(msg.headers or {}), msg.data))
        return messages
    finally:
        await client.close()


async def exchange_books(sim: Simulator, assets: list[str]) -> dict[str, Any]:
    import aiohttp

    books = {}
    async with aiohttp.ClientSession() as http:
        for asset in assets:
            async with http.get(sim.rest_url + "/book", params={"token_id": asset}) as response:
                book = decode_market(await response.read())[0]
            assert isinstance(book, Book)
            books[asset] = (book.bids, book.asks)
    return books


async def kill_and_compare(
    consumer: NatsMarketStream,
    victim: subprocess.Popen[bytes],
    sim: Simulator,
    assets: list[str],
    left_live: list[str],
) -> None:
    """With the flow going on, SIGKILL ``victim`` (a collector); then, the flow paused, the consumer must
    equal the exchange, no book having left LIVE, no gap and no failed check (more than 100 hashes
    verified)."""
    seen = consumer.last_seq
    await until(lambda: consumer.last_seq > seen + 100, "the flow goes on")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    seen = consumer.last_seq
    await until(lambda: consumer.last_seq > seen + 300, "the flow goes on after the kill")
    sim.pause()
    truth = await exchange_books(sim, assets)
    books = consumer.books
    await until(
        lambda: {a: b.wire_levels() for a, b in books.items()} == truth, "the consumer equals the exchange"
    )
    failures = [str(b.last_failure) for b in books.values() if b.last_failure is not None]
    assert left_live == []
    assert consumer.gaps == 0
    assert sum(sum(b.checks.failed.values()) for b in books.values()) == 0, failures
    assert sum(b.checks.passed[CheckKind.HASH] for b in books.values()) > 100


@pytest.mark.parametrize("killed", [0, 1])
def test_two_collectors_of_one_shard_one_killed_consumers_see_neither_gap_nor_duplicate(
    nats_server: NatsServer, killed: int
) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=21 + killed, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            base = sim.ws_url
            collectors = [spawn("collect", nats_server.url, base, f"c{i}", *assets) for i in range(2)]
            left_live: list[str] = []

            def on_event(event: Event) -> None:
                if type(event) is StatusChanged and event.old is BookStatus.LIVE:
                    left_live.append(f"{event.asset_id[:8]}: {event.reason}")

            try:
                # both collectors publishing: the stream holds messages of each
                async def both_publish() -> bool:
                    try:
                        names = {decode_envelope(p).collector for _, _, p in await stored(nats_server.url)}
                    except Exception:  # the stream not made yet
                        return False
                    return {"c0", "c1"} <= names

                await until_async(both_publish, "both collectors publish", poll_s=0.5)
                async with NatsMarketStream(nats_server.url, assets, on_event=on_event, max_queue=0) as c:
                    await until(lambda: all(b.status is BookStatus.LIVE for b in c.books.values()), "live")
                    await kill_and_compare(c, collectors[killed], sim, assets, left_live)
            finally:
                for process in collectors:
                    process.kill()
                    process.wait()
            messages = await stored(nats_server.url)
            ids = Counter(h["Nats-Msg-Id"] for _, h, _ in messages if "Nats-Msg-Id" in h)
            assert [i for i, n in ids.items() if n > 1] == []
            venue_kinds = Counter(decode_envelope(p).kind for _, _, p in messages)
            assert venue_kinds["change"] > 300
            # the survivor's messages after the kill carry on the book's history without a gap marker
            assert venue_kinds["gap"] == 0
            survivor = f"c{1 - killed}"
            after_kill = [decode_envelope(p).collector for _, _, p in messages[-100:]]
            assert set(after_kill) == {survivor}

    run(main)


def test_a_change_of_two_books_is_published_as_one_message_each_with_that_books_entries(
    nats_server: NatsServer,
) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=23, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (_, collector):
                await until(lambda: collector.publisher.acked > 300, "messages published")
            messages = await stored(nats_server.url)
        per_subject: Counter[str] = Counter()
        for _, headers, payload in messages:
            envelope = decode_envelope(payload)
            if envelope.kind in ("change", "trade", "tick", "snapshot"):
                assert "Nats-Msg-Id" in headers
                [venue] = decode_market(bytes(envelope.message))
                if envelope.kind == "change":
                    assert {e.asset_id for e in venue.price_changes} == {envelope.asset_id}  # type: ignore[attr-defined]
                else:  # a print is on every token's subject of its market, naming the one that traded
                    assert venue.asset_id == (envelope.token or envelope.asset_id)  # type: ignore[attr-defined]
                    assert envelope.kind == "trade" or not envelope.token
                if envelope.kind == "snapshot":
                    # the metadata the venue's WebSocket leaves out, filled from the collector's REST
                    assert venue.min_order_size is not None and venue.neg_risk is not None  # type: ignore[attr-defined]
            per_subject[envelope.asset_id] += 1
        assert set(per_subject) == set(assets)

    run(main)


def test_shards_split_the_markets_and_together_cover_them(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with Simulator(markets=6, seed=24, events_per_s=100) as sim:
            assets = sim.exchange.asset_ids()
            followed: list[set[str]] = []
            for index in range(2):
                async with collecting(nats_server, sim, assets, shard=(index, 2)) as (market, _):
                    followed.append(set(market.books))
                    await until(lambda: all(b.market for b in market.books.values()), "markets known")
                    markets = {b.market for b in market.books.values()}
                    # both tokens of a market on the same shard
                    assert all(sum(b.market == m for b in market.books.values()) == 2 for m in markets)
            assert followed[0].isdisjoint(followed[1])
            assert followed[0] | followed[1] == set(assets)
            assert followed[0] and followed[1]

    run(main)


def test_a_stream_with_other_subjects_is_one_clear_error(nats_server: NatsServer) -> None:
    async def main() -> None:
        import nats

        client = await nats.connect(nats_server.url)
        await client.jetstream().add_stream(name="POLYFEED", subjects=["elsewhere.>"])
        await client.close()
        with pytest.raises(FanoutError, match=r"exists with subjects \['elsewhere.>'\].*--stream"):
            await publish(nats_server.url, ["1"], seconds=1)

    run(main)


def test_messages_jetstream_refuses_make_the_book_dirty_then_gap_and_snapshot(
    nats_server: NatsServer,
) -> None:
    async def main() -> None:
        import nats

        async with Simulator(markets=1, seed=25, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, collector):
                await until(lambda: all(b.status is BookStatus.LIVE for b in market.books.values()), "live")
                # the stream stops taking messages for a moment: its subjects changed under the collector
                client = await nats.connect(nats_server.url)
                js = client.jetstream()
                info = await js.stream_info("POLYFEED")
                info.config.subjects = ["elsewhere.>"]
                await js.update_stream(info.config)
                await until(lambda: collector.publisher.failed > 0, "refusals counted")
                await until(lambda: collector.publisher.unpublished > 0, "what follows a hole held back")
                info.config.subjects = ["polyfeed.book.>"]
                await js.update_stream(info.config)
                await client.close()
                await until(lambda: not collector.publisher.dirty and collector.gaps > 0, "mended")
            messages = await stored(nats_server.url)
        kinds = [(decode_envelope(p).kind, decode_envelope(p).asset_id) for _, _, p in messages]
        for asset in assets:
            if ("gap", asset) in kinds:
                after = kinds[kinds.index(("gap", asset)) :]
                # the book's next message after its gap is its snapshot
                assert next(k for k, a in after[1:] if a == asset) == "snapshot"

    run(main)


def test_envelopes_round_trip_through_msgspec() -> None:
    body = msgspec.json.encode({"event_type": "last_trade_price"})
    envelope = msgspec.json.decode(
        msgspec.json.encode({"kind": "trade", "asset_id": "1", "message": msgspec.Raw(body)}),
        type=type(decode_envelope(b'{"kind":"gap","asset_id":"1"}')),
    )
    assert bytes(envelope.message) == body


_ROOT = Path(__file__).resolve().parents[2]


def spawn_lagging(
    url: str, exchange: str, name: str, lag_s: float, assets: list[str]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT / "src"), str(_ROOT)])}
    args = [sys.executable, "-m", "tests.fanout.lagging", url, exchange, name, str(lag_s), *assets]
    return subprocess.Popen(args, env=env, cwd=_ROOT)


@pytest.mark.parametrize("lag_s", [0.03, 0.3])
@pytest.mark.parametrize("killed", [0, 1])
def test_a_collector_joining_one_that_lags_consumers_see_no_failed_check(
    nats_server: NatsServer, killed: int, lag_s: float
) -> None:
    """The second collector's subscription snapshot reaches the stream before the lagging first one's
    copies of older changes, which the second never sends (its snapshot holds them): they are stored
    after it. Consumers must see neither a failed check nor a wrong book (under a CPU hog, the HA test
    above failed so once). The lag is made deterministic by tests/fanout/lagging.py: every book message
    published ``lag_s`` after it was put, in order."""

    async def main() -> None:
        async with Simulator(markets=2, seed=21 + killed, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            base = sim.ws_url
            collectors = [spawn_lagging(nats_server.url, base, "c0", lag_s, assets)]
            left_live: list[str] = []

            def on_event(event: Event) -> None:
                if type(event) is StatusChanged and event.old is BookStatus.LIVE:
                    left_live.append(f"{event.asset_id[:8]}: {event.reason}")

            async def publishing(names: set[str]) -> bool:
                try:
                    seen = {decode_envelope(p).collector for _, _, p in await stored(nats_server.url)}
                except Exception:  # the stream not made yet
                    return False
                return names <= seen

            try:
                await until_async(lambda: publishing({"c0"}), "the lagging collector publishes", poll_s=0.5)
                async with NatsMarketStream(nats_server.url, assets, on_event=on_event, max_queue=0) as c:
                    await until(lambda: all(b.status is BookStatus.LIVE for b in c.books.values()), "live")
                    # the second collector joins the shard while the first one lags
                    collectors.append(spawn_lagging(nats_server.url, base, "c1", 0.0, assets))
                    await until_async(lambda: publishing({"c0", "c1"}), "both publish", poll_s=0.5)
                    await kill_and_compare(c, collectors[killed], sim, assets, left_live)
            finally:
                for process in collectors:
                    process.kill()
                    process.wait()

    run(main)
