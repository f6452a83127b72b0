"""NatsMarketStream against a real nats-server and a collector on the local exchange: consumers in other
processes, a late consumer, NATS restarted, a durable consumer killed and restarted, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.js.client import JetStreamContext

from polyfeed.book import BookStatus, CheckKind
from polyfeed.fanout import Collector, FanoutError, NatsMarketStream, publish
from polyfeed.fanout.schema import decode_envelope, shard_of
from polyfeed.session import Disconnected, Event, MessageReceived, StatusChanged
from polyfeed.sim import Simulator
from polyfeed.stream import MarketStream
from polyfeed.wire import PriceChange, decode_market
from tests.fanout.processes import book_state, read_state, spawn
from tests.natsserver import NatsServer
from tests.waiting import BOUND_S, until, until_async

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def run(main: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(main(), BOUND_S * 3))


@contextlib.asynccontextmanager
async def collecting(
    nats: NatsServer, sim: Simulator, assets: list[str], **kwargs: Any
) -> AsyncIterator[tuple[MarketStream, Collector]]:
    """A collector publishing ``assets`` of the exchange, in this process."""
    opened: asyncio.Future[tuple[MarketStream, Collector]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        publish(
            nats.url,
            assets,
            venue=sim.venue,
            stop=stop,
            on_open=lambda m, c: opened.set_result((m, c)),
            **kwargs,
        )
    )
    done, _ = await asyncio.wait([opened, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it
    try:
        yield opened.result()
    finally:
        stop.set()
        await task


def levels(books: dict[str, Any]) -> dict[str, Any]:
    return {a: (b["bids"], b["asks"]) for a, b in books.items()}


def collector_levels(market: MarketStream) -> dict[str, Any]:
    return levels({a: book_state(b) for a, b in market.books.items()})


async def all_live(market: MarketStream) -> None:
    await until(lambda: all(b.status is BookStatus.LIVE for b in market.books.values()), "collector live")


def test_consumers_in_other_processes_hold_the_collectors_books_all_live(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Simulator(markets=3, seed=11, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, collector):
                await all_live(market)
                states = [tmp_path / f"consumer{i}.json" for i in range(2)]
                consumers = [spawn("consume", nats_server.url, str(s), *assets) for s in states]
                try:

                    def live(path: Path) -> bool:
                        state = read_state(path)
                        return (
                            state is not None
                            and len(state["books"]) == len(assets)
                            and all(b["status"] == "live" for b in state["books"].values())
                        )

                    await until(lambda: all(live(s) for s in states), "both consumers' books live")
                    await asyncio.sleep(0.5)  # the flow goes on a moment with the consumers live
                    sim.pause()

                    def equal(path: Path) -> bool:
                        state = read_state(path)
                        return state is not None and levels(state["books"]) == collector_levels(market)

                    await until(lambda: all(equal(s) for s in states), "consumers equal the collector")
                    for path in states:
                        state = read_state(path)
                        assert state is not None
                        assert all(b["status"] == "live" for b in state["books"].values())
                        # checked independently with the venue's hashes: no check ever failed (a consumer
                        # that started behind its stream once judged a trade burst in its middle by the
                        # clock, before its timer waited for what JetStream still held)
                        books = state["books"]
                        assert {a: b["last_failure"] for a, b in books.items() if b["failed_checks"]} == {}
                        assert state["gaps"] == 0
                    assert collector.publisher.failed == collector.publisher.unpublished == 0
                finally:
                    for process in consumers:
                        process.kill()
                        process.wait()

    run(main)


def test_a_late_consumer_starts_from_the_buckets_snapshots_and_is_equal(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=12, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets, snapshot_interval_s=0.5) as (market, collector):
                await all_live(market)
                await until(lambda: collector.books_in_bucket == set(assets), "every book in the bucket")
                await until(lambda: collector.publisher.pending == 0, "their writes acknowledged")
                await until(lambda: collector.publisher.acked > 300, "a backlog in the stream")
                async with NatsMarketStream(nats_server.url, assets, max_queue=0) as late:
                    # started from the bucket, not from the stream's first message
                    assert late.snapshots_read == len(assets)
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in late.books.values()), "late live"
                    )
                    sim.pause()
                    await until(
                        lambda: (
                            {a: b.wire_levels() for a, b in late.books.items()}
                            == {a: b.wire_levels() for a, b in market.books.items()}
                        ),
                        "the late consumer equals the collector",
                    )

    run(main)


def test_nats_restarted_mid_run_consumers_end_equal_and_the_gap_is_an_event(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=13, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets, snapshot_interval_s=0.5) as (market, collector):
                await all_live(market)
                events: list[Event] = []
                async with NatsMarketStream(
                    nats_server.url, assets, on_event=events.append, max_queue=0
                ) as c:
                    await until(lambda: all(b.status is BookStatus.LIVE for b in c.books.values()), "live")
                    await asyncio.to_thread(nats_server.restart)
                    await until(
                        lambda: any(type(e) is Disconnected for e in events), "the consumer's gap is an event"
                    )
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in c.books.values()), "live again"
                    )
                    await asyncio.sleep(1.0)  # the flow goes on after the restart
                    sim.pause()
                    await until(
                        lambda: (
                            {a: b.wire_levels() for a, b in c.books.items()}
                            == {a: b.wire_levels() for a, b in market.books.items()}
                        ),
                        "the consumer equals the collector after the restart",
                    )
                    stale = [e for e in events if type(e) is StatusChanged and e.new is BookStatus.STALE]
                    assert stale, "the books were stale while NATS was away"
                    failed = {a: b.last_failure for a, b in c.books.items() if b.checks.total_failed}
                    assert failed == {}, "no check failed across the restart"
                publisher = collector.publisher
                # every message the collector could not publish was followed by a gap and a snapshot
                assert collector.gaps >= len(publisher.dirty) == 0

    run(main)


def test_an_unreachable_nats_is_one_clear_error(closed_port: int) -> None:
    async def main() -> None:
        with pytest.raises(FanoutError, match=f"cannot reach NATS at nats://127.0.0.1:{closed_port}"):
            async with NatsMarketStream(f"nats://127.0.0.1:{closed_port}", ["1"]):
                pass

    run(main)


def test_a_stream_that_does_not_exist_yet_says_to_start_a_collector(nats_server: NatsServer) -> None:
    async def main() -> None:
        with pytest.raises(FanoutError, match=r"no stream POLYFEED.*start a collector first"):
            async with NatsMarketStream(nats_server.url, ["1"]):
                pass

    run(main)


def test_a_stream_of_that_name_with_other_subjects_is_one_clear_error(nats_server: NatsServer) -> None:
    async def main() -> None:
        import nats

        client = await nats.connect(nats_server.url)
        await client.jetstream().add_stream(name="ORDERS", subjects=["orders.>"])
        await client.close()
        with pytest.raises(FanoutError, match=r"ORDERS exists with subjects \['orders.>'\].*not a polyfeed"):
            async with NatsMarketStream(nats_server.url, ["1"], stream="ORDERS"):
                pass

    run(main)


def test_a_message_that_does_not_decode_is_a_counted_skip(nats_server: NatsServer) -> None:
    async def main() -> None:
        import nats

        async with Simulator(markets=1, seed=14, events_per_s=100) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, _):
                await all_live(market)
                async with NatsMarketStream(nats_server.url, None, max_queue=0) as consumer:
                    await until(lambda: len(consumer.books) == len(assets), "all books")
                    client = await nats.connect(nats_server.url)
                    js = client.jetstream()
                    subject = f"polyfeed.book.x.{assets[0]}"
                    await js.publish(subject, b"not json")
                    await js.publish(subject, msgspec.json.encode({"kind": "novel", "asset_id": assets[0]}))
                    await client.close()
                    await until(lambda: consumer.undecodable == 2, "both counted")
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in consumer.books.values()), "on"
                    )

    run(main)


async def stream_made(url: str) -> bool:
    import nats

    client = await nats.connect(url)
    try:
        await client.jetstream().key_value("POLYFEED_books")
    except Exception:
        return False
    finally:
        await client.close()
    return True


async def acknowledged(url: str, durable: str) -> int:
    """The stream sequence up to which a durable consumer acknowledged everything (its floor)."""
    import nats

    client = await nats.connect(url)
    try:
        info = await client.jetstream().consumer_info("POLYFEED", durable)
        return int(info.ack_floor.stream_seq) if info.ack_floor is not None else 0
    finally:
        await client.close()


def test_a_durable_consumer_killed_and_restarted_resumes_where_it_stopped(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=15, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets, snapshot_interval_s=0.5) as (market, collector):
                await all_live(market)
                state = tmp_path / "durable.json"
                first = spawn("consume", nats_server.url, str(state), "--durable", "desk", *assets)
                try:
                    await until(lambda: (read_state(state) or {}).get("last_seq", 0) > 100, "consuming")
                    first.send_signal(signal.SIGKILL)
                    first.wait()
                    before = read_state(state)
                    assert before is not None and before["resumed_at"] is None
                    floor = await acknowledged(nats_server.url, "desk")
                    # what it took, up to the batch it had not acknowledged when it died
                    assert before["last_seq"] - 1_000 <= floor <= before["last_seq"] + 1_000
                    state.unlink()
                    await until(lambda: collector.publisher.acked > floor + 200, "more flow")
                finally:
                    first.kill()
                second = spawn("consume", nats_server.url, str(state), "--durable", "desk", *assets)
                try:
                    await until(lambda: (read_state(state) or {}).get("first_seq") is not None, "resumed")
                    after = read_state(state)
                    assert after is not None
                    # resumed right after what it had acknowledged: nothing skipped, nothing from the start
                    assert after["resumed_at"] == floor + 1
                    sim.pause()

                    def equal() -> bool:
                        now = read_state(state)
                        return now is not None and levels(now["books"]) == collector_levels(market)

                    await until(equal, "the restarted consumer equals the collector")
                    now = read_state(state)
                    assert now is not None and all(b["status"] == "live" for b in now["books"].values())
                finally:
                    second.kill()
                    second.wait()

    run(main)


async def changes_in_stream(url: str) -> list[PriceChange]:
    """Every book change in the fan-out's stream, in its order (read with nats-py)."""
    import nats

    client = await nats.connect(url)
    try:
        reader = await client.jetstream().pull_subscribe("polyfeed.book.>", stream="POLYFEED")
        changes: list[PriceChange] = []
        while (await reader.consumer_info()).num_pending:
            for msg in await reader.fetch(1000, timeout=BOUND_S):
                envelope = msgspec.json.decode(msg.data)
                if envelope["kind"] == "change":
                    [change] = decode_market(msgspec.json.encode(envelope["message"]))
                    assert isinstance(change, PriceChange)
                    changes.append(change)
        return changes
    finally:
        await client.close()


def test_a_durable_consumer_acknowledges_what_the_program_took_not_what_it_fetched(
    nats_server: NatsServer,
) -> None:
    """A program takes 40 changes with ``async for`` while the stream has fetched many more, and leaves: the
    next run with the same name starts with the change it had not finished taking, or the one after it
    (at least once), never further on."""

    async def main() -> None:
        async with Simulator(markets=1, seed=21, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, _):
                await all_live(market)

                async def changes(take: int) -> tuple[list[PriceChange], int]:
                    taken: list[PriceChange] = []
                    async with NatsMarketStream(nats_server.url, assets, durable="slow") as consumer:
                        async for event in consumer:
                            if type(event) is MessageReceived and type(event.message) is PriceChange:
                                taken.append(event.message)
                                if len(taken) == take:
                                    break
                        # the program is busy elsewhere while the stream reads on
                        handled = consumer.messages
                        await until(lambda: consumer.messages > handled + 100, "the stream reads on")
                        return taken, consumer.messages

                first, fetched = await changes(40)
                assert fetched > 140
                second, _ = await changes(1)
                sim.pause()
                order = await changes_in_stream(nats_server.url)
                at = [order.index(change) for change in first]
                assert at == sorted(at), "the first run took the changes in the stream's order"
                last = at[-1]
                assert second[0] in (order[last], order[last + 1]), (
                    "the second run starts with the first one's last change (taken in part), or the next"
                )

    run(main)


def test_consumers_name_the_books_as_the_collector_knows_them(nats_server: NatsServer) -> None:
    """A collector that followed a slug publishes its books' market slug and outcome with their snapshots:
    a consumer started at once reads them from the stream's snapshots, a late one from the bucket."""

    async def main() -> None:
        async with Simulator(markets=2, seed=23, events_per_s=100) as sim:
            followed = sim.exchange.markets[1]
            async with collecting(nats_server, sim, [], slugs=[followed.slug]) as (market, collector):
                tokens = [followed.yes, followed.no]
                assert sorted(market.labels) == sorted(tokens)
                assert {slug for slug, _ in market.labels.values()} == {followed.slug}
                early = NatsMarketStream(nats_server.url, tokens, max_queue=0)
                async with early:
                    await until(lambda: early.labels == market.labels, "the early consumer names its books")
                await until(lambda: collector.books_in_bucket == set(tokens), "both books in the bucket")
                async with NatsMarketStream(nats_server.url, tokens, max_queue=0) as late:
                    assert late.snapshots_read == 2
                    assert late.labels == market.labels, "from the bucket"

    run(main)


def test_a_shard_whose_collector_dies_turns_stale_and_the_others_stay_live(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with Simulator(markets=6, seed=18, events_per_s=200) as sim:
            assets = sim.exchange.asset_ids()
            assert {shard_of(m.condition_id, 2) for m in sim.exchange.markets} == {0, 1}  # both follow some
            shards = [
                spawn("collect", nats_server.url, sim.ws_url, f"s{i}", "--shard", f"{i}/2", *assets)
                for i in range(2)
            ]
            try:
                await until_async(lambda: stream_made(nats_server.url), "the collectors made the stream")
                async with NatsMarketStream(nats_server.url, None, max_queue=0) as consumer:
                    books = consumer.books

                    def statuses(shard: int) -> set[BookStatus]:
                        return {b.status for b in books.values() if shard_of(b.market, 2) == shard}

                    await until(
                        lambda: (
                            len(books) == len(assets)
                            and all(b.status is BookStatus.LIVE for b in books.values())
                        ),
                        "every book of both shards live",
                    )
                    shards[0].send_signal(signal.SIGKILL)
                    shards[0].wait()
                    await until(lambda: statuses(0) == {BookStatus.STALE}, "shard 0's books stale")
                    assert statuses(1) == {BookStatus.LIVE}
                    shards[0] = spawn(
                        "collect", nats_server.url, sim.ws_url, "s0b", "--shard", "0/2", *assets
                    )
                    await until(lambda: statuses(0) == {BookStatus.LIVE}, "shard 0 live again")
                    assert statuses(1) == {BookStatus.LIVE}
            finally:
                for process in shards:
                    process.kill()
                    process.wait()

    run(main)


def test_a_consumer_of_one_token_gets_its_markets_prints_and_fails_no_check(nats_server: NatsServer) -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=17, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets) as (market, collector):
                await all_live(market)
                await until(lambda: collector.publisher.snapshots_written >= len(assets), "snapshots")
                for token in assets:  # each token alone: the prints of its market settle its hash too
                    async with NatsMarketStream(nats_server.url, [token], max_queue=0) as alone:
                        book = alone.books[token]
                        await until(lambda b=book: b.checks.passed[CheckKind.HASH] > 20, "hashes checked")
                        assert sum(book.checks.failed.values()) == 0, book.last_failure
                        assert book.status is BookStatus.LIVE

    run(main)


def test_a_market_resolved_at_the_venue_closes_its_books_downstream(nats_server: NatsServer) -> None:
    """The venue sends nothing more for a resolved market's books: the collector's status message is the
    only way a consumer learns it (end to end: ``market_resolved`` at the exchange, the collector's book
    closed, its status published and its bucket value deleted, the consumer's book closed)."""

    async def main() -> None:
        async with Simulator(markets=2, seed=18, events_per_s=100) as sim:
            assets = sim.exchange.asset_ids()
            resolved = sim.exchange.markets[0]
            async with collecting(nats_server, sim, assets) as (market, _):
                await all_live(market)
                async with NatsMarketStream(nats_server.url, assets, max_queue=0) as consumer:
                    await until(
                        lambda: all(b.status is BookStatus.LIVE for b in consumer.books.values()), "live"
                    )
                    sim.pause()  # nothing from the flow can race the resolution
                    sim.resolve_market(0)
                    closed = (resolved.yes, resolved.no)
                    await until(
                        lambda: all(consumer.books[a].status is BookStatus.CLOSED for a in closed), "closed"
                    )
                    assert all("closed by the collector" in consumer.books[a].status_reason for a in closed)
                    open_ = [a for a in assets if a not in closed]
                    assert len(open_) == 2
                    assert all(consumer.books[a].status is BookStatus.LIVE for a in open_)
                    assert all(market.books[a].status is BookStatus.CLOSED for a in closed)

                    async def resolved_gone_from_the_bucket() -> bool:
                        import nats
                        from nats.js.errors import NoKeysError

                        client = await nats.connect(nats_server.url)
                        try:
                            kv = await client.jetstream().key_value("POLYFEED_books")
                            try:
                                return not set(await kv.keys()) & set(closed)
                            except NoKeysError:
                                return True
                        finally:
                            await client.close()

                    # a late consumer must not start the resolved books from an old snapshot
                    await until_async(resolved_gone_from_the_bucket, "the resolved books leave the bucket")

    run(main)


STALL_S = 0.6  # longer than settle_after_s (0.25 s): the consumer's timer falls due meanwhile


def _change_key(msg: Any) -> tuple[str, str] | None:
    """(asset, timestamp) of a ``change`` envelope, else ``None``."""
    envelope = decode_envelope(msg.data)
    if envelope.kind != "change" or not envelope.message:
        return None
    [change] = decode_market(bytes(envelope.message))
    assert isinstance(change, PriceChange)
    return envelope.asset_id, change.timestamp


def split_bursts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pull fetches that end right after the first message of each multi-message burst, the rest coming
    ``STALL_S`` later: what a consumer starved of CPU sees (a fetch boundary in a trade burst, and its
    process not scheduled again before the session's timer). The messages are JetStream's own, with their
    metadata; the rest of the burst is in the stream (taken here) all along: JetStream's ``num_pending``
    of the message before the stall says so. Returns the stalls made."""
    fetch = JetStreamContext.PullSubscription.fetch
    held: dict[int, list[Any]] = {}
    stalls: list[int] = []
    split: set[tuple[str, str]] = set()

    async def fetch_split(self: Any, batch: int = 1, timeout: float | None = 5, heartbeat: Any = None) -> Any:
        left = held.pop(id(self), None)
        if left:
            stalls.append(1)
            await asyncio.sleep(STALL_S)
            return left  # the rest of the fetch, whole: one stall a fetch
        msgs = await fetch(self, batch, timeout, heartbeat)
        keys = [_change_key(m) for m in msgs]
        for i, key in enumerate(keys):
            # the first message of a burst (a book's changes sharing a timestamp; the market's other token's
            # entries come between them on the stream), split from the rest once
            if key is not None and key not in split and key in keys[i + 1 :]:
                split.add(key)
                held[id(self)] = msgs[i + 1 :]
                return msgs[: i + 1]
        return msgs

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", fetch_split)
    return stalls


def test_a_consumer_behind_its_stream_judges_a_burst_after_its_last_message(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with Simulator(2, seed=3, events_per_s=40, median_lifetime_s=None) as sim:
            assets = sim.exchange.asset_ids()
            async with collecting(nats_server, sim, assets, snapshot_interval_s=1e9) as (market, collector):
                await all_live(market)
                await until(lambda: collector.books_in_bucket == set(assets), "every book in the bucket")
                await asyncio.sleep(1.5)  # a few bursts after the bucket's snapshots
                sim.pause()
                publisher = collector.publisher
                await until(lambda: not publisher.pending and not publisher.buffered, "all published")
                stalls = split_bursts(monkeypatch)
                async with NatsMarketStream(nats_server.url, assets, max_queue=0) as late:
                    await until(lambda: late.last_seq >= publisher.newest_seq, "the late consumer caught up")
                    await asyncio.sleep(1.0)  # the last burst closed by the clock, the flow paused
                    assert stalls, "no burst of several messages was replayed: nothing was tested"
                    failures = {a: b.last_failure for a, b in late.books.items() if b.checks.total_failed}
                    assert failures == {}
                    assert all(b.status is BookStatus.LIVE for b in late.books.values())
                    assert {a: b.wire_levels() for a, b in late.books.items()} == {
                        a: b.wire_levels() for a, b in market.books.items()
                    }

    run(main)


def test_only_another_collectors_older_message_is_taken_as_held_by_the_books_snapshot() -> None:
    """A lagging collector's stragglers, stored after another collector's newer snapshot, are not applied
    (test_collector's joining tests); one collector's own stream is never judged so: its prints may come
    after the changes their hash already counted (spec 7.3), and are applied as they come."""
    stream = NatsMarketStream("nats://127.0.0.1:4222", ["7"])
    stream.books["7"].timestamp = "1790000000120"  # the book's last change
    stream._snapshot_ms["7"] = 1790000000100  # the snapshot that last took it forward ...
    stream._snapshot_by["7"] = "c0"  # ... from collector c0
    assert not stream._held("7", 1790000000090, "c0"), "c0's own late print: applied"
    assert stream._held("7", 1790000000090, "c1"), "c1's copy of what c0's snapshot holds: not applied"
    assert stream._held("7", 1790000000100, "c1"), "of the snapshot's own millisecond, older than the book"
    assert not stream._held("7", 1790000000110, "c1"), "newer than the snapshot: applied"
    assert not stream._held("7", 1790000000120, "c1"), "of the book's own millisecond: applied"
