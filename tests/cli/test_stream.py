"""``polyfeed stream --format jsonl``: an object a line that jq can read, a clean end on a closed pipe;
``stream --nats --durable`` goes on where it stopped."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import msgspec
import nats
import pytest

from polyfeed.net.gamma import MarketFilter
from polyfeed.net.gamma_cache import GammaCache
from polyfeed.session import AnyEvent, MessageReceived, encode_event
from tests.cli.harness import (
    BOUND_S,
    Exchange,
    assert_one_line_failure,
    collector_process,
    polyfeed,
    polyfeed_process,
)
from tests.natsserver import NatsServer


def test_every_line_is_a_json_event_and_the_books_go_live(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    market = exchange.sim.exchange.markets[0]
    result = polyfeed(
        capsys, "stream", market.slug, "--format", "jsonl", "--count", "200", *exchange.venue_args()
    )
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert len(events) == 200
    snapshots = [e for e in events if e["type"] == "MessageReceived" and e["message_type"] == "Book"]
    assert {e["message"]["asset_id"] for e in snapshots} == {market.yes, market.no}
    assert all(e["message"]["event_type"] == "book" and e["message"]["bids"] for e in snapshots)
    went_live = {e["asset_id"] for e in events if e["type"] == "StatusChanged" and e["new"] == "live"}
    assert went_live == {market.yes, market.no}
    seqs: defaultdict[int, list[int]] = defaultdict(list)
    for event in events:
        assert isinstance(event["recv_ns"], int)
        seqs[event["connection_id"]].append(event["seq"])
    assert all(s == sorted(set(s)) for s in seqs.values()), "seq rises on each connection, no repeats"
    for line in result.out.splitlines():  # each line reads back as the event it was, and is written alike
        event = msgspec.json.decode(line, type=AnyEvent)
        assert type(event).__name__ == json.loads(line)["type"]
        if isinstance(event, MessageReceived):
            assert type(event.message).__name__ == json.loads(line)["message_type"]
        assert encode_event(event) == line.encode()


def test_all_streams_every_open_market(exchange: Exchange, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "stream", "--all", "--count", "600", *exchange.venue_args())
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    snapshots = {e["message"]["asset_id"] for e in events if e.get("message_type") == "Book"}
    assert snapshots == set(exchange.sim.exchange.asset_ids()), "a snapshot of every open market's tokens"


def test_all_streams_from_the_cached_listing_when_gamma_is_down(
    exchange: Exchange, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first ``--all`` run caches Gamma's listing; the next subscribes it without Gamma (and walks
    Gamma behind it, which fails here and is logged); ``--no-cache`` waits for Gamma."""
    first = polyfeed(capsys, "stream", "--all", "--count", "5", *exchange.venue_args())
    assert first.code == 0, first.err
    no_gamma = ["--ws-url", exchange.ws_url, "--rest-url", exchange.rest_url]
    no_gamma += ["--gamma-url", f"http://127.0.0.1:{closed_port}"]
    # the cache is keyed by Gamma's URL: seed the closed port's key with the listing just written
    cache_dir = Path(os.environ["POLYFEED_CACHE_DIR"])
    (written,) = cache_dir.iterdir()
    listing = GammaCache().load(exchange.rest_url, MarketFilter())
    assert listing is not None and written.stat().st_size > 0
    GammaCache().store(f"http://127.0.0.1:{closed_port}", MarketFilter(), listing)
    cached = polyfeed(capsys, "stream", "--all", "--count", "600", "--timeout", "20", *no_gamma)
    assert cached.code == 0, cached.err
    events = [json.loads(line) for line in cached.out.splitlines()]
    snapshots = {e["message"]["asset_id"] for e in events if e.get("message_type") == "Book"}
    assert snapshots == set(exchange.sim.exchange.asset_ids()), "every token of the cached listing"
    refused = polyfeed(capsys, "stream", "--all", "--no-cache", "--timeout", "1", *no_gamma)
    assert refused.code == 1 and "did not answer within 1 s" in refused.err


def test_seconds_ends_the_stream(exchange: Exchange, capsys: pytest.CaptureFixture[str]) -> None:
    token = exchange.sim.exchange.markets[1].yes
    result = polyfeed(capsys, "stream", token, "--seconds", "1", *exchange.venue_args())
    assert result.code == 0, result.err
    first = json.loads(result.out.splitlines()[0])
    assert first["type"] == "MessageReceived" and first["message"]["asset_id"] == token


def test_a_closed_pipe_ends_the_stream_quietly(exchange: Exchange) -> None:
    """``polyfeed stream ... | head -n 1``: the reader leaves after one line."""
    process = polyfeed_process("stream", "sim-market-2", *exchange.venue_args())
    assert process.stdout is not None and process.stderr is not None
    try:
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read()
        process.wait(BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert json.loads(first)["type"] == "MessageReceived"
    assert process.returncode == 0
    assert err == b"", err.decode()


def test_an_unreachable_venue_is_one_line_and_exit_1(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, "stream", "1234567890", "--rest-url", f"http://127.0.0.1:{closed_port}")
    line = assert_one_line_failure(result, "stream")
    assert result.code == 1 and "connection refused" in line
    assert result.out == ""


def test_tokens_the_venue_does_not_know_time_out_as_no_data(
    exchange: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    """The venue ignores unknown token ids silently (spec 1.3): no data ever comes."""
    result = polyfeed(capsys, "stream", "1234567890", "--timeout", "1", *exchange.venue_args())
    line = assert_one_line_failure(result, "stream")
    assert result.code == 1 and "no market data from" in line


def test_jq_reads_it(exchange: Exchange) -> None:
    jq = subprocess.run(["which", "jq"], capture_output=True, check=False)
    if jq.returncode != 0:
        pytest.skip("jq is not installed: the plain JSON parse above covers the format")
    stream = polyfeed_process(
        "stream", "sim-market-0", "--count", "20", *exchange.venue_args(), stderr=subprocess.DEVNULL
    )
    assert stream.stdout is not None
    with stream.stdout:  # jq holds the pipe's reading end now
        out = subprocess.run(
            ["jq", "-r", ".type"], stdin=stream.stdout, capture_output=True, check=True, timeout=BOUND_S
        )
    assert stream.wait(BOUND_S) == 0
    assert out.stdout.decode().splitlines()[0] == "MessageReceived"


def test_local_streams_from_an_exchange_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "stream", "sim-market-7", "--local", "--count", "3")
    assert result.code == 0, result.err
    assert [json.loads(line)["type"] for line in result.out.splitlines()] == [
        "MessageReceived",
        "BookUpdated",
        "StatusChanged",
    ], "the first book: its message, the update, and the book going live"


def test_a_durable_nats_stream_goes_on_where_it_stopped_and_loses_no_change(
    exchange: Exchange, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs of one durable consumer: the second writes first the change that follows the first run's
    last in the stream, or that last one again when the first stopped amid its events (at least once; a
    consumer without a name starts again from the bucket's snapshot or further back)."""
    market = exchange.sim.exchange.markets[3]
    url = nats_server.url
    with collector_process(exchange, url, market.slug):
        durable = ["stream", "--nats", url, market.yes, "--durable", "reader-1", "--count", "60"]
        first = polyfeed(capsys, *durable)
        second = polyfeed(capsys, *durable)
    assert first.code == 0 and second.code == 0, first.err + second.err
    once, again = price_changes(first.out), price_changes(second.out)
    assert once and again
    order = asyncio.run(changes_in_stream(url, market.yes))
    last = order.index(once[-1])
    assert order.index(again[0]) in (last, last + 1), "the second run goes on where the first stopped"
    assert [order.index(c) for c in once + again[1:]] == sorted(order.index(c) for c in once + again[1:]), (
        "each run writes the changes in the stream's order"
    )


def price_changes(out: str) -> list[str]:
    """The ``PriceChange`` messages a ``stream`` run wrote, as JSON text."""
    events = [json.loads(line) for line in out.splitlines()]
    return [json.dumps(e["message"]) for e in events if e.get("message_type") == "PriceChange"]


async def changes_in_stream(url: str, token: str) -> list[str]:
    """Every change of ``token``'s book in the fan-out's stream, in its order (read with nats-py)."""
    client = await nats.connect(url)
    try:
        reader = await client.jetstream().pull_subscribe(f"polyfeed.book.*.{token}", stream="POLYFEED")
        changes: list[str] = []
        while (await reader.consumer_info()).num_pending:
            for msg in await reader.fetch(1000, timeout=BOUND_S):
                envelope = json.loads(msg.data)
                if envelope["kind"] == "change":
                    changes.append(json.dumps(envelope["message"]))
        return changes
    finally:
        await client.close()
