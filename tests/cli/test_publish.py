"""``polyfeed publish`` against the local exchange and a real nats-server: two shards publish every book
once, and a consumer that starts after they stopped holds the books they ended with; ``stream --nats``
writes the events of the books a running collector publishes, all checked with the venue's hashes;
Ctrl-C ends a collector with its summary; bad input is one line."""

from __future__ import annotations

import asyncio
import json
import re

import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from polyfeed.book import BookStatus
from polyfeed.cli.recording import book_digest
from polyfeed.fanout import NatsMarketStream
from polyfeed.session import Event, StatusChanged
from tests.cli.harness import Exchange, assert_one_line_failure, collector_process, polyfeed
from tests.natsserver import NatsServer
from tests.waiting import BOUND_S, until

ROW = re.compile(r"^(\S+ · (?:Yes|No))\s+(\w+)\s+\S+\s+\S+\s+\d+/\d+\s+(\d+)\s+([0-9a-f]{12})\s*$")


def table(out: str) -> dict[str, tuple[str, str, str]]:
    """The summary's books table: name -> (status, failed checks, digest)."""
    return {m[1]: (m[2], m[3], m[4]) for line in out.splitlines() if (m := ROW.match(line))}


def names(exchange: Exchange) -> dict[str, str]:
    """Every book of the exchange by its name in a table (``slug · Yes``): its token id."""
    return {
        f"{m.slug} · {outcome}": token
        for m in exchange.sim.exchange.markets
        for outcome, token in (("Yes", m.yes), ("No", m.no))
    }


async def consumer_books(url: str, expected: dict[str, str]) -> dict[str, tuple[bool, int]]:
    """A NATS stream of every published book, read until its books' digests are ``expected`` (token ->
    digest); each book's (whether it went live, its failed checks)."""
    went_live: set[str] = set()

    def on_event(event: Event) -> None:
        if type(event) is StatusChanged and event.new is BookStatus.LIVE:
            went_live.add(event.asset_id)

    async with NatsMarketStream(url, None, on_event=on_event, max_queue=0) as stream:
        await until(
            lambda: {a: book_digest(b) for a, b in stream.books.items()} == expected,
            "the consumer's books equal the collectors' (their digests)",
        )
        return {a: (a in went_live, b.checks.total_failed) for a, b in stream.books.items()}


def test_two_shards_publish_every_book_once_and_a_late_consumer_holds_the_books_they_ended_with(
    exchange: Exchange, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    printed: dict[str, tuple[str, str, str]] = {}
    for shard in ("0/2", "1/2"):
        result = polyfeed(
            capsys,
            "publish",
            "--all",
            "--shard",
            shard,
            "--nats",
            nats_server.url,
            "--seconds",
            "2",
            *exchange.venue_args(),
        )
        assert result.code == 0, result.err
        assert " 0 failed, 0 unpublished, 0 gaps" in result.out, result.out
        books = table(result.out)
        assert books, f"shard {shard} published no book: {result.out}"
        assert not books.keys() & printed.keys(), "a market is in one shard only"
        printed.update(books)
    by_name = names(exchange)
    assert printed.keys() == by_name.keys(), "the two shards together publish every open market"
    assert {status for status, _, _ in printed.values()} == {"live"}
    assert {failed for _, failed, _ in printed.values()} == {"0"}

    expected = {by_name[name]: digest for name, (_, _, digest) in printed.items()}
    books = asyncio.run(asyncio.wait_for(consumer_books(nats_server.url, expected), BOUND_S * 2))
    assert books.keys() == expected.keys()
    assert set(books.values()) == {(True, 0)}, "every book went live, every check passed"


def test_stream_nats_writes_the_events_of_the_books_a_running_collector_publishes(
    exchange: Exchange, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    market = exchange.sim.exchange.markets[2]
    tokens = {market.yes, market.no}
    with collector_process(exchange, nats_server.url, market.slug) as collector:
        status, text = collector.get("/metrics")
        assert status == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        fanout = (("fanout", "POLYFEED"),)
        assert samples["polyfeed_fanout_nats_connected", fanout] == 1
        assert samples["polyfeed_fanout_published_total", fanout] > 0
        for counter in ("failed", "unpublished", "gaps_published"):
            assert samples[f"polyfeed_fanout_{counter}_total", fanout] == 0, counter
        assert samples["polyfeed_books", (("status", "live"), ("stream", "market"))] == 2

        result = polyfeed(capsys, "stream", "--nats", nats_server.url, *sorted(tokens), "--count", "120")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert len(events) == 120
    assert {e["asset_id"] for e in events if e["type"] == "BookUpdated"} == tokens
    went_live = {e["asset_id"] for e in events if e["type"] == "StatusChanged" and e["new"] == "live"}
    assert went_live == tokens
    troubles = [e for e in events if e["type"] == "ResyncRequested" or e.get("new", "live") != "live"]
    assert not troubles, "every hash the consumer checked passed: no book turned suspect, no resync"
    changes = [e["message"] for e in events if e.get("message_type") == "PriceChange"]
    assert changes, "the venue's changes, not only the snapshots"
    assert {c["asset_id"] for m in changes for c in m["price_changes"]} <= tokens, "narrowed to the books"

    assert set(table(collector.out)) == {f"{market.slug} · Yes", f"{market.slug} · No"}, collector.out
    assert collector.out.startswith("published "), "Ctrl-C ends it with its summary"


def test_an_unreachable_nats_is_one_line_and_exit_1(
    exchange: Exchange, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"nats://127.0.0.1:{closed_port}"
    result = polyfeed(capsys, "publish", "sim-market-0", "--nats", url, *exchange.venue_args())
    line = assert_one_line_failure(result, "publish")
    assert result.code == 1 and f"cannot reach NATS at {url}: connection refused" in line
    for command in ("stream", "watch"):
        result = polyfeed(capsys, command, "--nats", url, "--all")
        line = assert_one_line_failure(result, command)
        assert result.code == 1 and f"cannot reach NATS at {url}: connection refused" in line


def test_a_stream_of_that_name_with_other_subjects_is_one_line_and_exit_1(
    exchange: Exchange, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def someone_elses_stream() -> None:
        client = await nats.connect(nats_server.url)
        try:
            await client.jetstream().add_stream(name="ORDERS", subjects=["orders.>"])
        finally:
            await client.close()

    asyncio.run(someone_elses_stream())
    args = ["publish", "sim-market-0", "--nats", nats_server.url, "--stream", "ORDERS"]
    result = polyfeed(capsys, *args, *exchange.venue_args())
    line = assert_one_line_failure(result, "publish")
    assert result.code == 1
    assert "a JetStream stream named ORDERS exists with subjects ['orders.>']" in line
    assert "name another with --stream" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--shard", "2/2"], "Invalid value for '--shard': shard '2/2': I must be at least 0 and below N"),
        (["--shard", "two"], "Invalid value for '--shard': shard 'two': expected I/N"),
        (["--stream", "my.stream"], "Invalid value for '--stream': stream name 'my.stream'"),
        (["--nats", "http://127.0.0.1:4222"], "'http://127.0.0.1:4222' is not a NATS URL (nats://HOST:4222)"),
    ],
)
def test_bad_fanout_options_are_one_usage_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nats_url = [] if "--nats" in args else ["--nats", "nats://127.0.0.1:4222"]
    result = polyfeed(capsys, "publish", "sim-market-0", *nats_url, *args)
    line = assert_one_line_failure(result, "publish")
    assert result.code == 2 and says in line, line


def test_publish_needs_a_nats_url(capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "publish", "sim-market-0", "--local")
    line = assert_one_line_failure(result, "publish")
    assert result.code == 2 and "Missing option '--nats'" in line
