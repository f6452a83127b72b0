"""``polyfeed ...``: the command line (typer for the arguments, rich for what a person reads).

Commands, one module each:

- ``demo`` (:mod:`polyfeed.cli.demo`): the local exchange in-process and the ``watch`` view on it.
- ``markets`` (:mod:`polyfeed.cli.markets`): the markets and tokens behind a slug, URL or token id.
- ``watch`` (:mod:`polyfeed.cli.watch`, the screen in :mod:`polyfeed.cli.view`): live books.
- ``stream`` (:mod:`polyfeed.cli.stream`): every event as a JSON line.
- ``sim`` (:mod:`polyfeed.cli.sim`): the local exchange on a port.
- ``capture`` (:mod:`polyfeed.cli.capture`): Polymarket's captured crossing burst, booked and checked.
- ``publish`` (:mod:`polyfeed.cli.publish`): books published to NATS JetStream; ``watch --nats`` and
  ``stream --nats`` read them back (:mod:`polyfeed.cli.fanout` holds what they share).

Adding a command (``record``, ``replay``, ``export``): write ``src/polyfeed/cli/record.py`` with

- ``EPILOG``: markdown examples (``**Examples**`` then ``* `polyfeed record ...` `` lines);
- ``record_command(...) -> None``: its parameters are ``Annotated`` typer arguments and options, the
  shared ones from :mod:`polyfeed.cli.options` (``Targets``, ``Seconds``, ``Timeout``, ``WsUrl``,
  ``RestUrl``, ``GammaUrl``, ``Local``, and ``VenueOptions`` to gather them); its docstring is the help
  (first line: the short help);
- the work as a coroutine run by :func:`polyfeed.cli.errors.run_command`, which ends quietly on
  Ctrl-C (returning ``None``, after the coroutine's clean-up ran) and turns an unreachable venue, a
  :class:`polyfeed.errors.PolyfeedError` (a bad recording too) or a
  :class:`polyfeed.cli.errors.CommandError` into one line and exit 1. Inside it, ``open_venue`` gives
  the :class:`polyfeed.venue.Venue` (and starts the local exchange for ``--local``),
  :func:`polyfeed.cli.options.resolve_for_console` turns slugs and URLs into token ids through
  :mod:`polyfeed.net.gamma`, and :func:`polyfeed.cli.watch.draw` with
  :func:`polyfeed.cli.view.render_screen` draws any books (a replay's) as ``watch`` does;

then import the module below and add ``("record", record.record_command, record.EPILOG)`` to
:data:`COMMANDS`. Tests go in ``tests/cli/test_record.py`` (``tests/cli/harness.py`` runs a command
in-process and a local exchange in a thread).
"""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Annotated, Any

import typer

import polyfeed
from polyfeed.cli import (
    capture,
    demo,
    export,
    markets,
    publish,
    record,
    replay,
    sim,
    stream,
    verify,
    watch,
)
from polyfeed.cli.errors import EXIT_USAGE, discard_stdout, stop_signals_as_ctrl_c
from polyfeed.cli.logs import JsonFormatter, LogFormat

__all__ = ["COMMANDS", "app", "main"]

COMMANDS: tuple[tuple[str, Callable[..., None], str], ...] = (
    ("demo", demo.demo_command, demo.EPILOG),
    ("markets", markets.markets_command, markets.EPILOG),
    ("watch", watch.watch_command, watch.EPILOG),
    ("stream", stream.stream_command, stream.EPILOG),
    ("record", record.record_command, record.EPILOG),
    ("publish", publish.publish_command, publish.EPILOG),
    ("replay", replay.replay_command, replay.EPILOG),
    ("export", export.export_command, export.EPILOG),
    ("verify", verify.verify_command, verify.EPILOG),
    ("sim", sim.sim_command, sim.EPILOG),
    ("capture", capture.capture_command, capture.EPILOG),
)
"""(name, function, examples) of every command, in the order ``polyfeed --help`` lists them."""

app = typer.Typer(
    name="polyfeed",
    help="Polymarket's order books and trades, exact and checked: in a terminal, a pipe, or offline "
    "against the local exchange.",
    epilog="Start with `polyfeed demo`; every command has `--help` with examples.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"polyfeed {_version()} (Python {platform.python_version()})")
        raise typer.Exit()


def _version() -> str:
    try:
        return metadata.version("polyfeed")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return polyfeed.__version__


@app.callback()
def _options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log what connections and resyncs do, on stderr (before or after the command).",
        ),
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="How log lines are written on stderr: text, or json (one object a line: time, level, "
            "logger, message, and connection, channel and asset where a line is about one). "
            "Warnings and errors; with -v what connections and resyncs do too.",
        ),
    ] = LogFormat.TEXT,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print polyfeed's version and exit.",
        ),
    ] = False,
) -> None:
    if verbose or log_format is LogFormat.JSON:
        _log_to_stderr(logging.INFO if verbose else logging.WARNING, json=log_format is LogFormat.JSON)


for _name, _function, _epilog in COMMANDS:
    app.command(_name, epilog=_epilog)(_function)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``polyfeed`` with ``argv`` (``sys.argv[1:]`` by default); returns the exit code.

    A bad argument prints one line on stderr and returns 2, as any usage error; a command's failure
    has printed its own line (:mod:`polyfeed.cli.errors`).
    """
    command = typer.main.get_command(app)
    args = _global_options_first(list(sys.argv[1:] if argv is None else argv))
    try:
        with stop_signals_as_ctrl_c():
            result = command.main(args=args, prog_name="polyfeed", standalone_mode=False)
    except _CLICK_EXCEPTION as exc:
        return _usage_error(exc)
    except typer.Abort:
        sys.stderr.write("polyfeed: aborted\n")
        return 1
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) outside a command's event loop (while parsing, say)
        return 130
    except BrokenPipeError:  # ``| head`` left while a command printed outside its event loop
        discard_stdout()
        return 0
    return result if isinstance(result, int) else 0


_GLOBAL_FLAGS = frozenset({"-v", "--verbose"})
_GLOBAL_OPTIONS = frozenset({"--log-format"})  # options with a value


def _global_options_first(args: list[str]) -> list[str]:
    """``polyfeed watch X -v --log-format json`` as ``polyfeed -v --log-format json watch X``: the
    global options may come after the command, as people type them (no command has options of these
    names; ``--`` ends the options)."""
    if "--" in args:
        head, tail = args[: args.index("--")], args[args.index("--") :]
    else:
        head, tail = args, []
    globals_: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(head):
        arg = head[i]
        if arg in _GLOBAL_FLAGS or (arg.split("=", 1)[0] in _GLOBAL_OPTIONS and "=" in arg):
            globals_.append(arg)
        elif arg in _GLOBAL_OPTIONS and i + 1 < len(head):
            globals_ += head[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return [*globals_, *rest, *tail] if globals_ else args


def _click_exception() -> type[Exception]:
    """click's ``ClickException``, from whichever click typer uses (its own copy since typer 0.2x,
    the ``click`` package before): typer exports it only as the base of ``BadParameter``."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise ImportError("typer.BadParameter does not derive from click's ClickException")


_CLICK_EXCEPTION = _click_exception()


def _usage_error(exc: Exception) -> int:
    ctx: Any = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``polyfeed``: typer has printed the help
        return 0
    message: str = exc.format_message()  # type: ignore[attr-defined]
    where = ctx.command_path if ctx is not None else "polyfeed"
    hint = f" (see {where} --help)" if ctx is not None else ""
    sys.stderr.write(f"{where}: {' '.join(message.split())}{hint}\n")
    code = getattr(exc, "exit_code", EXIT_USAGE)
    return code if isinstance(code, int) else EXIT_USAGE


class _StderrHandler(logging.Handler):
    """Writes to ``sys.stderr`` as it is at each record: while the live ``watch`` screen is up, that is
    its :class:`polyfeed.cli.terminal.ScreenLog` (a strip at the screen's foot, replayed on stderr when
    it closes), so log lines never tear the screen."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except (OSError, ValueError):
            self.handleError(record)


def _log_to_stderr(level: int, *, json: bool = False) -> None:
    logger = logging.getLogger("polyfeed")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        logger.addHandler(handler)
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("polyfeed: %(levelname)s %(name)s: %(message)s")
    )
    logger.setLevel(level)
