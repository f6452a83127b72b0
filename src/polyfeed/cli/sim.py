"""``polyfeed sim``: the local exchange on a port, with faults on demand, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from collections.abc import Sequence
from typing import Annotated, TextIO

import typer

from polyfeed.cli.errors import CommandError, run_command
from polyfeed.cli.options import MetricsHost
from polyfeed.metrics.exchange import serve_exchange_metrics
from polyfeed.sim import Simulator
from polyfeed.sim.faults import Fault, parse_fault_flag
from polyfeed.sim.lifetimes import LONG_DATED, MEDIAN_LIFETIME_S

__all__ = ["EPILOG", "serve", "sim_command"]

EPILOG = """**Examples**

* `polyfeed sim --port 8765 --markets 50 --seed 1`
* `polyfeed sim --fault drop:mode=reset --fault zombie --fault-every 30`
* `polyfeed sim --lifetime 120` (markets past sim-market-19 live about two minutes; `0`: for ever)
* `polyfeed sim --metrics-port 9110` (the exchange's own metrics: frames sent, connections, faults)
* and beside it: `polyfeed watch sim-market-0 --ws-url ws://127.0.0.1:8765/ws/market
  --rest-url http://127.0.0.1:8765 --gamma-url http://127.0.0.1:8765`
"""


def _faults(flags: list[str] | None) -> list[str]:
    for flag in flags or ():
        try:
            parse_fault_flag(flag)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return flags or []


def sim_command(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port (0: any free port).")] = 8765,
    markets: Annotated[int, typer.Option(min=1, help="Binary markets on the exchange.")] = 50,
    seed: Annotated[int, typer.Option(help="The order flow's seed: the same seed, the same stream.")] = 1,
    events_per_s: Annotated[
        float, typer.Option("--events-per-s", min=0.001, help="Order-flow events a second.")
    ] = 200.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KIND[:k=v,...]",
            callback=_faults,
            help="Inject this fault every --fault-every seconds (repeatable, taken in turn), e.g. "
            "drop:mode=reset, zombie, corrupt, duplicate:count=20, delay:ms=200,count=50, "
            "reject_connects:count=3.",
        ),
    ] = None,
    fault_every: Annotated[
        float, typer.Option("--fault-every", metavar="SECONDS", min=0.001, help="Seconds between faults.")
    ] = 30.0,
    lifetime: Annotated[
        float,
        typer.Option(
            "--lifetime",
            metavar="SECONDS",
            min=0.0,
            help=f"The median lifetime of a market (0: none resolves on its own). A resolved market is "
            f"replaced by a new one; sim-market-0 to sim-market-{LONG_DATED - 1} never resolve.",
        ),
    ] = MEDIAN_LIFETIME_S,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve the exchange's own Prometheus metrics (polyfeed_sim_...: frames sent, connections, "
            "faults, HTTP requests) at /metrics and a health check at /healthz (200 while it serves) on "
            "this port (0: any free port).",
            rich_help_panel="Operations",
        ),
    ] = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run the local exchange until Ctrl-C, with faults on demand.

    Polymarket's market channel (`/ws/market`), user channel (`/ws/user`), REST book calls and
    Gamma's `/markets` and `/events` on one port; faults also through `POST /control/faults`.
    """
    faults = [parse_fault_flag(flag) for flag in fault or ()]
    lifetime_s = lifetime or None
    run_command(
        "sim",
        serve(
            host,
            port,
            markets,
            seed,
            events_per_s,
            faults,
            fault_every,
            lifetime_s=lifetime_s,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        ),
    )


async def serve(
    host: str,
    port: int,
    markets: int,
    seed: int,
    events_per_s: float,
    faults: Sequence[Fault] = (),
    fault_every_s: float = 30.0,
    out: TextIO | None = None,
    *,
    lifetime_s: float | None = MEDIAN_LIFETIME_S,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Serve the local exchange until cancelled, injecting ``faults`` in turn every ``fault_every_s``;
    markets resolve after a median ``lifetime_s`` (``None``: never on their own); with
    ``metrics_port``, its metrics and health on ``metrics_host:metrics_port``
    (:mod:`polyfeed.metrics.exchange`)."""
    out = out or sys.stdout
    async with contextlib.AsyncExitStack() as stack:
        simulator = Simulator(
            markets, seed=seed, host=host, port=port, events_per_s=events_per_s, median_lifetime_s=lifetime_s
        )
        try:
            sim = await stack.enter_async_context(simulator)
        except OSError as exc:  # the port is taken, or the address is not this machine's
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        metrics = None
        if metrics_port is not None:
            try:
                metrics = await serve_exchange_metrics(sim, metrics_port, metrics_host)
            except OSError as exc:
                raise CommandError(
                    f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror or exc}"
                ) from None
            # closed first on the way out (the stack unwinds backwards), before the exchange stops
            await stack.enter_async_context(metrics)
        out.write(f"local exchange: {markets} markets, seed {seed}\n")
        out.write(
            f"  market channel  {sim.ws_url}/ws/market\n  REST            {sim.rest_url}/book?token_id=...\n"
        )
        if metrics is not None:
            out.write(f"  metrics         {metrics.url}/metrics, health at {metrics.url}/healthz\n")
        for market in sim.exchange.markets[:3]:
            out.write(f"  {market.slug}: YES {market.yes}\n  {' ' * len(market.slug)}  NO  {market.no}\n")
        if lifetime_s is not None and markets > LONG_DATED:
            out.write(
                f"markets after sim-market-{LONG_DATED - 1} resolve after a median {lifetime_s:g} s, "
                "each replaced by a new one\n"
            )
        if faults:
            out.write(f"injecting {', '.join(f.kind for f in faults)} in turn every {fault_every_s:g} s\n")
        out.write("Ctrl-C to stop\n")
        out.flush()
        if not faults:
            await asyncio.Event().wait()
        for next_fault in itertools.cycle(faults):
            await asyncio.sleep(fault_every_s)
            await sim.inject(next_fault)
            out.write(f"injected {next_fault.kind}\n")
            out.flush()
