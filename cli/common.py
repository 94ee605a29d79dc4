"""What every ``lattice`` command shares: the Typer apps commands register on, the console, the common
options (``--nats-url``, ``--lattice``, ``--api-url``, ``--cluster-seed``, ``-o``…), settings from flags and
environment, the error exit and the event-loop runner. ``app``, ``security`` and ``registry`` add commands.
"""

from __future__ import annotations

import asyncio
import signal
from enum import StrEnum
from typing import Annotated, Any

import click
import typer
import uvloop
from rich.console import Console

from lattice.errors import LatticeError
from lattice.observability import logs, tracing
from lattice.settings import Settings

app = typer.Typer(
    help="lattice: an actor-based, distributed WebAssembly runtime.", no_args_is_help=True, add_completion=False
)
get_app = typer.Typer(help="Show hosts, applications or links.", no_args_is_help=True)
keys_app = typer.Typer(help="Generate nkeys (account, module, cluster, ...).", no_args_is_help=True)
claims_app = typer.Typer(help="Sign and inspect actor claims (SPEC §3).", no_args_is_help=True)
app.add_typer(get_app, name="get")
app.add_typer(keys_app, name="keys")
app.add_typer(claims_app, name="claims")
console = Console()


class Output(StrEnum):
    table = "table"
    wide = "wide"  # the table with full ids
    json = "json"


NatsUrl = Annotated[str | None, typer.Option("--nats-url", envvar="LATTICE_NATS_URL", help="NATS server URL(s).")]
LatticeName = Annotated[str | None, typer.Option("--lattice", envvar="LATTICE_NAME", help="Lattice name.")]
ApiUrl = Annotated[str, typer.Option("--api-url", envvar="LATTICE_API_URL", help="Control plane URL.")]
ApiToken = Annotated[str | None, typer.Option("--api-token", envvar="LATTICE_API_TOKEN", help="Bearer token.")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table, wide (full ids) or json")]
ClusterSeed = Annotated[
    str | None,
    typer.Option(
        "--cluster-seed",
        envvar="LATTICE_CLUSTER_SEED",
        help="The lattice's cluster seed (SC…), the same for every part: invocations are signed with it.",
    ),
]
NO_SEED = (
    "a cluster seed is required (--cluster-seed or LATTICE_CLUSTER_SEED), the same one every part of the lattice "
    "uses: without it this process could neither call nor be called. Make one with: lattice keys generate cluster"
)
Metrics = Annotated[
    str | None,
    typer.Option("--metrics", envvar="LATTICE_METRICS", help="Serve Prometheus metrics on HOST:PORT (port 0: any)."),
]


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.from_env(**overrides)
    except LatticeError as exc:
        _fail(str(exc))
    logs.configure(json_logs=settings.json_logs, level=settings.log_level)
    command = click.get_current_context(silent=True)
    tracing.configure(settings, f"lattice-{command.info_name if command else 'cli'}")
    return settings


def _fail(message: str, code: int = 1) -> Any:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _run(main: Any, stop: Any) -> None:
    """Run coroutine ``main`` until it ends or SIGINT/SIGTERM calls ``stop()``."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await main()

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
            loop_runner.run(runner())
    except LatticeError as exc:
        _fail(str(exc))


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--label takes KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def client(api_url: str, token: str | None) -> Any:
    """An API client; without a token, the one ``lattice up`` left in the state directory (if any)."""
    from lattice.cli.client import Client, local_api_token
    from lattice.settings import Settings

    if token:
        return Client(api_url, token, token_hint="the token from --api-token / LATTICE_API_TOKEN")
    state_dir = Settings.from_env().state_dir
    hint = (
        f"no token given, so the one of the `lattice up` with the state directory {state_dir} was sent: for another,"
        " set LATTICE_STATE_DIR to its state directory (`lattice up` prints the line) or LATTICE_API_TOKEN"
    )
    return Client(api_url, local_api_token(state_dir), token_hint=hint)
