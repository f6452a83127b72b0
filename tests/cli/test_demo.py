"""``polyfeed demo``: the README's main job, piped (plain text, ends by itself) and in a real 80x24
terminal (tmux), where the live screen must be legible, redraw cleanly when the window is resized, and
end cleanly on Ctrl-C; the README shows the screen as it is; a watched market that resolves makes way
for the busiest live one."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from polyfeed.book import BookStatus
from polyfeed.cli.demo import BOOKS, busiest, watch_busiest
from polyfeed.cli.view import WatchState
from polyfeed.sim import Simulator
from tests.cli.harness import BOUND_S, polyfeed
from tests.cli.tmux import EXIT_MARK, Tmux, tmux_server

LADDER = re.compile(r"\d\.\d{2,3} │ \d\.\d{2,3}")
ROOT = Path(__file__).resolve().parents[2]


def test_piped_the_demo_prints_plain_live_books_and_ends_by_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = polyfeed(capsys, "demo", "--markets", "5", "--seed", "2", "--seconds", "2.5")
    assert result.code == 0, result.err
    assert "/ws/market" in result.out.splitlines()[0]
    assert "LIVE" in result.out
    assert LADDER.search(result.out)
    assert "\x1b[" not in result.out, "no colour or cursor codes when stdout is not a terminal"
    assert all(cell_len(line) <= 80 for line in result.out.splitlines()[1:-1])
    summary = result.out.splitlines()[-2:]
    assert summary[0].startswith("4 books for") and re.fullmatch(
        r"checks: [\d,]+ passed, 0 failed", summary[1]
    )


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    with tmux_server() as server:
        yield server


def start_demo(tmux: Tmux, *demo_args: str) -> None:
    tmux.start("demo", *demo_args)


def showing_a_live_book(screen: str) -> bool:
    return "LIVE" in screen and len(LADDER.findall(screen)) >= 3


def test_in_an_80x24_terminal_the_live_screen_is_legible(tmux: Tmux) -> None:
    start_demo(tmux, "--seconds", "5")
    screen = tmux.wait_for(showing_a_live_book, "a live book")
    lines = screen.splitlines()
    assert all(cell_len(line) <= 80 for line in lines)
    header = next(line for line in lines if line.startswith("polyfeed "))
    assert "4 books" in header and "msg/s" in header and "drops 0  reconnects 0" in header
    assert header.endswith("^C quits"), "the whole line fits"
    ladder = [line for line in lines if LADDER.search(line)]
    assert all(line.startswith("│") and line.endswith("│") for line in ladder), "no panel cut or wrapped"
    assert any(len(LADDER.findall(line)) == 2 for line in ladder), "two books side by side"
    assert any("checks" in line and "LIVE" in line for line in lines)
    assert shape(header) == shape(documented_screen()[0]), "the README shows today's header"
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "the demo end by itself")
    assert f"{EXIT_MARK}0" in final
    assert "Traceback" not in final
    before_exit = final[: final.index(EXIT_MARK)].rstrip().splitlines()
    summary = before_exit[-2:]
    assert summary[0].startswith("4 books for") and re.fullmatch(
        r"checks: [\d,]+ passed, 0 failed", summary[1]
    )
    assert LADDER.search(before_exit[-4]) is None and "╰" in before_exit[-3], "the last frame stays"


def shape(line: str) -> str:
    """A header line with its figures blanked: ``polyfeed 4 books  N msg/s  drops N ...``."""
    return re.sub(r"\d[\d,.]*(?:m\d+)?s?", "N", line)


def documented_screen() -> list[str]:
    """The screen as the README shows it (the top of docs/watch-screen.txt, which must agree)."""
    readme = ROOT.joinpath("README.md").read_text()
    found = re.search(r"An\s+80x24 terminal shows this.*?```text\n(.*?)```", readme, re.DOTALL)
    assert found is not None, "the README's screen block"
    block = found.group(1).splitlines()
    full = ROOT.joinpath("docs/watch-screen.txt").read_text().splitlines()
    assert block == full[: len(block)], "the README shows the top of docs/watch-screen.txt"
    assert len(full) <= 24 and all(cell_len(line) <= 80 for line in full), "an 80x24 screen"
    return block


def one_clean_frame(width: int) -> Callable[[str], bool]:
    """The screen holds one whole frame drawn for this width: one header, at the top; a row of panels
    spanning the width exactly (a stale frame the terminal cut at a narrower width does not end in a
    corner); every panel closed; nothing wider than the window."""

    def clean(screen: str) -> bool:
        lines = screen.splitlines()
        headers = [line for line in lines if line.startswith("polyfeed ")]
        rows = [line for line in lines if line.startswith("╭") and line.endswith("╮")]
        return (
            showing_a_live_book(screen)
            and len(headers) == 1
            and lines[0] == headers[0]
            and any(cell_len(line) == width for line in rows)
            and sum(line.count("╭") for line in lines) == sum(line.count("╰") for line in lines)
            and all(cell_len(line) <= width for line in lines)
        )

    return clean


def test_resizing_the_window_redraws_one_clean_frame(tmux: Tmux) -> None:
    """Before the alternate screen, frames of the old size stayed on screen above and within the new."""
    start_demo(tmux)
    tmux.wait_for(showing_a_live_book, "a live book")
    for width, height in ((100, 30), (60, 20), (80, 24)):
        tmux.resize(width, height)
        tmux.wait_for(one_clean_frame(width), f"one clean frame {width} columns wide")
    tmux.keys("C-c")
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "the demo end on Ctrl-C")
    assert f"{EXIT_MARK}0" in final


def last_frame(text: str) -> str:
    """The last plain frame printed (from its header line on)."""
    return text[text.rindex("\npolyfeed ") :] if "\npolyfeed " in text else ""


async def until(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not ready():
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.05)


def test_a_watched_market_that_resolves_makes_way_for_the_busiest_live_one() -> None:
    async def scenario() -> None:
        out = io.StringIO()
        console = Console(file=out, width=80)  # not a terminal: a plain frame every two seconds
        state = WatchState()
        async with Simulator(8, seed=3, events_per_s=300) as sim:
            watched = busiest(sim.exchange, BOOKS)
            demo = asyncio.create_task(watch_busiest(sim, state, console, seconds=None, resolved_shown_s=0.5))
            try:

                def live(asset: str) -> bool:
                    book = state.books.get(asset)
                    return book is not None and book.status is BookStatus.LIVE

                await until(lambda: all(live(m.yes) for m in watched), "the four books live")
                gone = watched[0]
                sim.resolve_market(sim.exchange.markets.index(gone))
                (successor,) = busiest(sim.exchange, 1, besides={m.yes for m in watched})
                await until(lambda: live(successor.yes), "the busiest market not watched live")
                assert state.winners[gone.yes] in ("Yes", "No"), "market_resolved reached the stream"
                assert gone.yes not in state.books, "the resolved book was unsubscribed"
                await until(lambda: f"{successor.slug} · Yes" in last_frame(out.getvalue()), "its panel")
                frame = last_frame(out.getvalue())
                assert f"{gone.slug} · Yes" not in frame and frame.count("╭") == BOOKS
                assert all(f"{m.slug} · Yes" in frame for m in watched[1:])
            finally:
                demo.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await demo

    asyncio.run(scenario())


def test_in_a_terminal_the_demo_runs_until_ctrl_c_and_then_exits_0(tmux: Tmux) -> None:
    start_demo(tmux)
    tmux.wait_for(showing_a_live_book, "a live book")
    tmux.keys("C-c")
    final = tmux.wait_for(lambda s: EXIT_MARK in s, "the demo end on Ctrl-C")
    assert f"{EXIT_MARK}0" in final
    assert "Traceback" not in final and "Error" not in final
    assert any(line.startswith("4 books for") for line in final.splitlines())
