"""``lattice get app NAME [--version V]`` and ``lattice rollback APP [VERSION]`` (SPEC §5, §6): one application,
its rollout, its stored versions, and rolling back by hand."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from lattice.cli.common import ApiToken, ApiUrl, Output, OutputOpt, _fail, app, client, console, get_app
from lattice.errors import LatticeError

err_console = Console(stderr=True)


@get_app.command("app")
def get_one_app(
    name: Annotated[str, typer.Argument(help="Application name.")],
    version: Annotated[
        str | None, typer.Option("--version", help="A stored version (default: the deployed one).")
    ] = None,
    api_url: ApiUrl = "http://127.0.0.1:8081",
    api_token: ApiToken = None,
    output: OutputOpt = Output.table,
) -> None:
    """One application: version, status, rollout, and with --version that version's manifest."""
    try:
        data = client(api_url, api_token).app(name, version)
    except LatticeError as exc:
        _fail(str(exc))
    if output == Output.json:
        print(json.dumps(data, indent=2))
        return
    status = data["status"]
    # with --version the manifest is the output (to a file or a pipe, unwrapped); the summary goes to stderr
    summary = err_console if version else console
    summary.print(f"{data['name']} {data['version']} (deployed: {data.get('deployed_version')}): {status['type']}")
    summary.print(f"  {status['message']}", highlight=False)
    for comp in status["components"]:
        summary.print(f"  {comp['name']} {comp['running']}/{comp['desired']}", highlight=False)
    if rollout := status.get("rollout"):
        summary.print(
            f"  rollout {rollout['from_version']} → {rollout['to_version']}: {rollout['state']} "
            f"(step {rollout.get('step')}, {rollout.get('percent', 100)}% of replicas) {rollout.get('reason') or ''}",
            highlight=False,
        )
    if version:
        manifest = data["manifest"]
        sys.stdout.write(manifest if manifest.endswith("\n") else manifest + "\n")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Application name.")],
    version: Annotated[
        str | None,
        typer.Argument(help="Version to deploy again (default: the last healthy one before the deployed one)."),
    ] = None,
    api_url: ApiUrl = "http://127.0.0.1:8081",
    api_token: ApiToken = None,
) -> None:
    """Roll an application back to an earlier version (SPEC §6)."""
    try:
        data = client(api_url, api_token).rollback(name, version)
    except LatticeError as exc:
        _fail(str(exc))
    if data.get("already_deployed"):
        console.print(f"{name}: {data['deployed_version']} is already the deployed version; nothing to roll back")
    else:
        console.print(f"{name}: rolled back to {data['deployed_version']}")
