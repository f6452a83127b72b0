"""``polyfeed``'s entry point: a bad argument is one line and exit 2; help lists every command with
examples."""

from __future__ import annotations

import re

import pytest

from polyfeed.cli import COMMANDS, _global_options_first
from tests.cli.harness import assert_one_line_failure, polyfeed, venue_args_at


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["watch"], "give markets to follow (slugs, URLs, token ids), or --all"),
        (["watch", "sim-market-0", "--ws-url", "http://127.0.0.1:1/ws/market"], "--ws-url"),
        (["watch", "sim-market-0", "--rest-url", "ftp://127.0.0.1"], "--rest-url"),
        (["watch", "sim-market-0", "--gamma-url", "http://127.0.0.1:99999"], "bad port"),
        (["watch", "sim-market-0", "--depth", "0"], "--depth"),
        (["stream", "sim-market-0", "--format", "csv"], "--format"),
        (["stream", "sim-market-0", "--count", "0"], "--count"),
        (["stream", "sim-market-0", "--seconds", "-1"], "--seconds"),
        (["markets"], "Missing argument"),
        (["markets", "a", "b"], "unexpected extra argument"),
        (["no-such-command"], "No such command"),
        (["demo", "--markets", "0"], "--markets"),
        (["demo", "--seconds", "-1"], "--seconds"),
        (["sim", "--port", "70000"], "--port"),
        (["sim", "--markets", "x"], "--markets"),
        (["sim", "--fault", "explode"], "explode"),
        (["sim", "--fault", "delay:ms"], "--fault"),
        (["sim", "--fault-every", "0"], "--fault-every"),
    ],
)
def test_a_bad_argument_is_one_line_on_stderr_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = polyfeed(capsys, *argv)
    line = assert_one_line_failure(result, argv[0])
    assert result.code == 2
    assert says in line
    assert "--help" in line, "the line says where to read more"
    assert result.out == ""


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, "--help")
    assert result.code == 0
    for name, _, _ in COMMANDS:
        assert f" {name} " in result.out


def test_bare_polyfeed_prints_the_help_once(capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys)
    assert result.code == 0
    assert result.out.count("Usage: polyfeed") == 1
    assert "demo" in result.out


@pytest.mark.parametrize("name", [name for name, _, _ in COMMANDS])
def test_each_command_has_help_with_examples_of_itself(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = polyfeed(capsys, name, "--help")
    assert result.code == 0
    assert "Examples" in result.out
    assert f"polyfeed {name}" in result.out.split("Examples", 1)[1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--version", "-V"):
        result = polyfeed(capsys, flag)
        assert result.code == 0
        assert re.fullmatch(r"polyfeed \S+ \(Python 3\.\d+\.\d+\)\n", result.out), result.out


def test_verbose_may_follow_the_command(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    """``-v`` after the command was a usage error ("No such option"): it is the same flag there."""
    result = polyfeed(
        capsys, "markets", "x", *venue_args_at(f"127.0.0.1:{closed_port}"), "-v", "--timeout", "5"
    )
    assert result.code == 1, result.err  # the closed port's failure, not a usage error (2)
    assert "cannot reach" in result.err
    assert _global_options_first(["watch", "a", "-v", "--", "-v"]) == ["-v", "watch", "a", "--", "-v"]
    assert _global_options_first(["watch", "a"]) == ["watch", "a"]
