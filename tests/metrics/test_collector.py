"""StreamCollector: what a scrape reads, and counters that stay monotonic as books leave a stream; a
fan-out collector's and a NATS stream's counters."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polyfeed import MarketStream
from polyfeed.book import BookStatus, CheckKind, OrderBook
from polyfeed.book.status import CHECK_INDEX
from polyfeed.fanout import Collector, NatsMarketStream, StreamLayout
from polyfeed.fanout.publisher import Publisher
from polyfeed.metrics import StreamCollector, check_health
from polyfeed.metrics.collector import _CheckTotals
from polyfeed.metrics.exchange import ExchangeCollector
from polyfeed.record import Recorder
from polyfeed.record.format import Channel, RecordKind
from polyfeed.sim import Simulator
from polyfeed.stream import UserStream
from polyfeed.wire import Credentials
from tests.waiting import BOUND_S, until

HASH = CHECK_INDEX[CheckKind.HASH]


def values(collector: StreamCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels), read back through the text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_books_checks_stay_in_the_totals_after_it_leaves_and_a_replaced_book_adds_its_own() -> None:
    totals = _CheckTotals()
    a, b = OrderBook("a"), OrderBook("b")
    a.checks.passed_by_index[HASH] = 5
    b.checks.failed_by_index[HASH] = 1
    books = {"a": a, "b": b}
    passed, failed = totals.read(books)
    assert (passed[HASH], failed[HASH]) == (5, 1)
    a.checks.passed_by_index[HASH] = 7  # checked twice more, then unsubscribed
    del books["a"]
    passed, failed = totals.read(books)
    assert (passed[HASH], failed[HASH]) == (7, 1), "a's last counts kept: a counter never goes down"
    books["b"] = OrderBook("b")  # subscribed again: a new book, counting from 0
    books["b"].checks.passed_by_index[HASH] = 2
    passed, failed = totals.read(books)
    assert (passed[HASH], failed[HASH]) == (9, 1)


def test_unsubscribed_books_leave_the_books_gauge_but_not_the_check_counters() -> None:
    async def main() -> None:
        async with Simulator(markets=2, seed=5, events_per_s=300) as sim:
            assets = sim.exchange.asset_ids()
            async with MarketStream(assets, venue=sim.venue) as stream:
                collector = StreamCollector([stream])
                await until(lambda: all(b.status is BookStatus.LIVE for b in stream.books.values()), "live")
                leaving = assets[:2]
                await until(
                    lambda: all(stream.books[a].checks.total_passed for a in leaving), "their checks passed"
                )
                before = values(collector)
                stream.unsubscribe(leaving)  # nothing runs between the two scrapes: no check either
                after = values(collector)
                live = ("polyfeed_books", (("status", "live"), ("stream", "market")))
                assert after[live] == len(assets) - 2, "the books left"
                checks = {k: v for k, v in after.items() if k[0] == "polyfeed_book_checks_total"}
                assert checks == {k: v for k, v in before.items() if k[0] == "polyfeed_book_checks_total"}, (
                    "their checks did not: a counter never goes down"
                )

    asyncio.run(asyncio.wait_for(main(), BOUND_S * 2))


def test_recordings_and_streams_are_named_and_a_streams_recorder_comes_with_it(tmp_path: Path) -> None:
    with Recorder(tmp_path / "rec") as recorder:
        recorder.write(int(RecordKind.FRAME), int(Channel.MARKET), 1, 1_000, b"[]")
        market = MarketStream(["a"], recorder=recorder)
        other = MarketStream(["b"])
        user = UserStream(Credentials("key", "secret", "phrase"))
        collector = StreamCollector([market, other, user], [recorder])
        assert list(collector.streams) == ["market", "market-2", "user"]
        assert collector.recorders == {"rec": recorder}, "given twice, collected once"
        scraped = values(collector)
        assert scraped["polyfeed_recording_records_total", (("recording", "rec"),)] == 1
        assert scraped["polyfeed_recording_bytes_total", (("recording", "rec"),)] == recorder.bytes_in
        assert scraped["polyfeed_recording_write_errors_total", (("recording", "rec"),)] == 0
        assert scraped["polyfeed_connections_open", (("channel", "user"), ("stream", "user"))] == 0
        assert scraped["polyfeed_user_reconciliations_total", (("stream", "user"),)] == 0


def test_every_metric_the_operations_page_and_the_dashboard_name_is_served(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    named = set(re.findall(r"\bpolyfeed_[a-z_]+", (docs / "operations.md").read_text()))
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named |= {n for e in exprs for n in re.findall(r"\bpolyfeed_[a-z_]+", e)}
    with Recorder(tmp_path / "rec") as recorder:
        streams = [
            MarketStream(["a"], recorder=recorder),
            UserStream(Credentials("key", "secret", "phrase")),
            NatsMarketStream("nats://127.0.0.1:4222", ["a"]),
        ]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StreamCollector(streams, fanouts=[fanout_collector()]))
        registry.register(ExchangeCollector(Simulator(markets=1)))  # polyfeed sim's own
        families = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert len(named) > 20
    for name in sorted(named):
        assert re.sub(r"_(total|bucket|count|sum)$", "", name) in families, name


def fanout_collector(stream: str = "POLYFEED") -> Collector:
    """A fan-out collector on a NATS client never connected (its counters are what a scrape reads)."""
    publisher = Publisher(NatsClient(), StreamLayout(stream), collector="c1")
    return Collector(publisher, dict, collector="c1")


def test_a_fanout_collector_and_a_nats_stream_are_read_counter_by_counter() -> None:
    fanout = fanout_collector()
    publisher = fanout.publisher
    fanout.published, fanout.gaps = 101, 2
    publisher.acked, publisher.duplicates, publisher.failed = 97, 11, 3
    publisher.unpublished, publisher.snapshots_written = 5, 7
    publisher.dirty.update({"a": "why", "b": "why"})
    publisher.put("polyfeed.book.m.a", b"{}", "z", None)  # buffered: NATS is not connected
    consumer = NatsMarketStream("nats://127.0.0.1:4222", ["a"])
    consumer.messages, consumer.skipped, consumer.undecodable = 41, 13, 17
    consumer.gaps, consumer.snapshots_read, consumer.last_seq = 19, 23, 1234
    collector = StreamCollector([consumer], fanouts=[fanout, fanout])
    assert list(collector.streams) == ["nats"] and list(collector.fanouts) == ["POLYFEED"], "named once"
    scraped = values(collector)
    by_fanout = {name: v for (name, labels), v in scraped.items() if labels == (("fanout", "POLYFEED"),)}
    assert by_fanout == {
        "polyfeed_fanout_published_total": 101,
        "polyfeed_fanout_acked_total": 97,
        "polyfeed_fanout_duplicates_total": 11,
        "polyfeed_fanout_failed_total": 3,
        "polyfeed_fanout_unpublished_total": 5,
        "polyfeed_fanout_snapshots_written_total": 7,
        "polyfeed_fanout_gaps_published_total": 2,
        "polyfeed_fanout_pending": 0,
        "polyfeed_fanout_buffered": 1,
        "polyfeed_fanout_dirty_books": 2,
        "polyfeed_fanout_nats_connected": 0,
    }
    by_stream = {
        name: v
        for (name, labels), v in scraped.items()
        if labels == (("stream", "nats"),) and name.startswith("polyfeed_fanout_")
    }
    assert by_stream == {
        "polyfeed_fanout_received_total": 41,
        "polyfeed_fanout_skipped_total": 13,
        "polyfeed_fanout_undecodable_total": 17,
        "polyfeed_fanout_gaps_received_total": 19,
        "polyfeed_fanout_snapshots_read_total": 23,
        "polyfeed_fanout_sequence": 1234,
    }
    nats = (("channel", "nats"), ("connection", "1"), ("stream", "nats"))
    assert scraped["polyfeed_connection_up", nats] == 0, "its session, a market session on the nats channel"
    assert scraped["polyfeed_books", (("status", "syncing"), ("stream", "nats"))] == 1
    health = check_health(collector)
    assert not health.healthy
    assert health.connections_down == [
        {"stream": "nats", "channel": "nats", "connection": 1},
        {"stream": "POLYFEED", "channel": "nats", "connection": None},
    ]
