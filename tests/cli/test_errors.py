"""How a command fails or ends: one line for what a person can act on, a quiet end on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
import typer

from polyfeed.cli.errors import CommandError, describe, run_command
from polyfeed.errors import SubscriptionError


def test_a_refused_connection_says_which_address_and_why(closed_port: int) -> None:
    async def connect() -> None:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{closed_port}/markets"):
            pass

    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        asyncio.run(connect())
    assert describe(caught.value) == f"cannot reach 127.0.0.1:{closed_port}: connection refused"


def test_a_polyfeed_error_is_its_message_on_one_line() -> None:
    assert describe(SubscriptionError("no slug in\n'https://polymarket.com/'")) == (
        "no slug in 'https://polymarket.com/'"
    )


def test_run_command_prints_one_line_and_exits_with_the_errors_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def failing() -> None:
        raise CommandError("Gamma knows no market or event 'x'", exit_code=3)

    with pytest.raises(typer.Exit) as exit_info:
        run_command("markets", failing())
    assert exit_info.value.exit_code == 3
    assert capsys.readouterr().err == "polyfeed markets: Gamma knows no market or event 'x'\n"


def test_ctrl_c_cancels_the_command_so_it_cleans_up_then_ends_quietly() -> None:
    cleaned_up = []

    async def interrupted() -> str:
        try:
            await asyncio.sleep(0.01)
            signal.raise_signal(signal.SIGINT)  # what a Ctrl-C at the terminal does
            await asyncio.sleep(60)
        finally:
            cleaned_up.append(True)
        return "not reached"

    assert run_command("watch", interrupted()) is None
    assert cleaned_up == [True]


def test_a_bug_keeps_its_traceback() -> None:
    async def buggy() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_command("watch", buggy())
