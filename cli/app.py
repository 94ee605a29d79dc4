"""The ``lattice`` command (SPEC §6): run the parts, drive the control plane, manage keys and claims.

Every flag also reads an environment variable (``LATTICE_*``); flags win. Output for people is tables;
``-o json`` prints machine-readable JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lattice.capability import BUILTIN_CONTRACTS
from lattice.cli.common import (
    NO_SEED,
    ApiToken,
    ApiUrl,
    ClusterSeed,
    LatticeName,
    Metrics,
    NatsUrl,
    Output,
    OutputOpt,
    _fail,
    _labels,
    _run,
    _settings,
    app,
    client,
    console,
    get_app,
)
from lattice.errors import LatticeError
from lattice.inventory import HostSummary
from lattice.observability import logs

# --- running the parts ---------------------------------------------------------------------------


@app.command()
def up(
    hosts: Annotated[int, typer.Option(help="How many hosts to start.", min=1, max=16)] = 2,
    http: Annotated[str, typer.Option(help="Where the demo serves HTTP.")] = "127.0.0.1:8080",
    api: Annotated[str, typer.Option(help="Where the control plane listens.")] = "127.0.0.1:8081",
    nats_url: NatsUrl = None,
    lattice: LatticeName = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not deploy the demo application.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the control plane's log.")] = False,
) -> None:
    """Run a whole lattice on this machine: nats-server, hosts, control plane and a demo app."""
    from lattice.cli.up import Up

    settings = _settings(lattice=lattice)
    if not verbose:  # hosts log to files; keep this terminal for what runs where
        logs.configure(json_logs=settings.json_logs, level="warning")
    runner = Up(settings, hosts=hosts, http=http, api=api, nats_url=nats_url, demo=not no_demo, console=console)
    _run(runner.run, runner.stop)


@app.command()
def host(
    nats_url: NatsUrl = None,
    lattice: LatticeName = None,
    label: Annotated[list[str], typer.Option("--label", "-l", help="Host label KEY=VALUE (repeatable).")] = [],  # noqa: B006
    allow_unsigned: Annotated[
        bool | None, typer.Option("--allow-unsigned", envvar="LATTICE_ALLOW_UNSIGNED", help="Run unsigned actors.")
    ] = None,
    trusted_issuers: Annotated[
        str | None, typer.Option("--trusted-issuers", envvar="LATTICE_TRUSTED_ISSUERS", help="A…,A… accounts.")
    ] = None,
    cluster_seed: ClusterSeed = None,
    cluster_seed_file: Annotated[
        Path | None, typer.Option("--cluster-seed-file", exists=True, help="A file holding the cluster seed.")
    ] = None,
    provider_processes: Annotated[
        bool | None,
        typer.Option(
            "--provider-processes",
            envvar="LATTICE_PROVIDER_PROCESSES",
            help="Run bundled providers as supervised child processes (isolation over speed).",
        ),
    ] = None,
    metrics: Metrics = None,
    allow_any_issuer: Annotated[
        bool | None,
        typer.Option(
            "--allow-any-issuer",
            envvar="LATTICE_ALLOW_ANY_ISSUER",
            help="Run signed actors of any issuer when no --trusted-issuers are given (by default: refused).",
        ),
    ] = None,
    allow_dir: Annotated[
        list[Path],
        typer.Option(
            "--allow-dir",
            help="A host directory actors' WASI grants may reach (repeatable; default none). LATTICE_ALLOW_DIRS.",
        ),
    ] = [],  # noqa: B006
    files_root: Annotated[
        Path | None,
        typer.Option(
            "--files-root",
            envvar="LATTICE_FILES_ROOT",
            help="Read file:// actor images sent over the lattice only under this directory (default: none).",
        ),
    ] = None,
    workers: Annotated[str, typer.Option(envvar="LATTICE_HOST_WORKERS", help="Hosts to run: N or auto")] = "1",
) -> None:
    """Run one host: it joins the lattice and runs what the control plane places on it."""
    from lattice.host.host import Host
    from lattice.host.workers import WorkerHosts

    if workers.strip() != "1":  # a supervisor of N worker hosts (lattice.host.workers), not a host itself
        group = WorkerHosts(workers)
        return _run(group.run, group.stop)
    seed = cluster_seed_file.read_text().strip() if cluster_seed_file else cluster_seed
    if not seed:
        _fail(NO_SEED)
    issuers = frozenset(s for s in (trusted_issuers or "").split(",") if s) or None
    settings = _settings(
        nats_url=nats_url,
        lattice=lattice,
        labels=_labels(label),
        allow_unsigned=allow_unsigned,
        trusted_issuers=issuers,
        cluster_seed=seed,
        provider_processes=provider_processes,
        metrics=metrics,
        allow_any_issuer=allow_any_issuer,
        allow_dirs=tuple(allow_dir) or None,
        files_root=files_root,
    )
    holder: dict[str, Host] = {}

    async def main() -> None:
        async with Host(settings) as h:
            holder["host"] = h
            console.print(f"host [bold]{h.id}[/bold] joined lattice {settings.lattice!r} at {settings.nats_url}")
            if h.metrics_url:
                console.print(f"metrics at {h.metrics_url}")
            await h.serve()

    _run(main, lambda: holder["host"].stop() if "host" in holder else sys.exit(130))


@app.command("control-plane")
def control_plane(
    nats_url: NatsUrl = None,
    lattice: LatticeName = None,
    listen: Annotated[str, typer.Option(envvar="LATTICE_API_LISTEN", help="host:port to serve the API on.")] = (
        "127.0.0.1:8081"
    ),
    cluster_seed: ClusterSeed = None,
    files_root: Annotated[
        Path | None,
        typer.Option(
            "--files-root",
            envvar="LATTICE_FILES_ROOT",
            file_okay=False,
            help="Read file:// actor images only under this directory (default: read none).",
        ),
    ] = None,
) -> None:
    """Run the control plane (the HTTP API, the scheduler and the reconciler)."""
    from lattice.controlplane.service import ControlPlane

    if not cluster_seed:
        _fail(NO_SEED)
    settings = _settings(nats_url=nats_url, lattice=lattice, cluster_seed=cluster_seed, files_root=files_root)
    holder: dict[str, ControlPlane] = {}

    async def main() -> None:
        async with ControlPlane(settings, listen=listen) as cp:
            holder["cp"] = cp
            await cp.serve()

    _run(main, lambda: holder["cp"].stop() if "cp" in holder else sys.exit(130))


@app.command()
def provider(
    name: Annotated[str, typer.Argument(help=f"Which bundled provider: {', '.join(sorted(BUILTIN_CONTRACTS))}.")],
    nats_url: NatsUrl = None,
    lattice: LatticeName = None,
    link_name: Annotated[str, typer.Option(help="The link name it serves.")] = "default",
    provider_id: Annotated[
        str | None, typer.Option(help="The V… id to serve as (default: the bundled provider's stable id).")
    ] = None,
    cluster_seed: ClusterSeed = None,
    metrics: Metrics = None,
) -> None:
    """Run one bundled capability provider as its own process on the lattice (with the hosts' cluster seed).

    The one provider command: hosts run their provider processes (LATTICE_PROVIDER_PROCESSES) with it too.
    """
    from lattice.providers.sdk.base import provider_class
    from lattice.providers.sdk.runner import run_standalone

    settings = _settings(nats_url=nats_url, lattice=lattice, cluster_seed=cluster_seed, metrics=metrics)
    try:
        cls = provider_class(f"builtin:{name}")
    except LatticeError as exc:
        _fail(str(exc))

    async def main() -> None:  # SIGTERM/SIGINT: the runner drains, then returns (run_standalone's handlers)
        await run_standalone(cls(), settings, link_name=link_name, provider_id=provider_id)

    _run(main, lambda: sys.exit(130))


# --- driving the control plane -------------------------------------------------------------------


def _client(api_url: str, token: str | None) -> Any:
    return client(api_url, token)


def _print(data: Any, output: Output, columns: list[str], title: str) -> None:
    if output == Output.json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps an id, never cuts it
    for row in data:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


@app.command()
def apply(
    manifest: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A wadm 0.x manifest (YAML/JSON).")],
    wait: Annotated[bool, typer.Option(help="Wait until the application is deployed.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    api_url: ApiUrl = "http://127.0.0.1:8081",
    api_token: ApiToken = None,
    output: OutputOpt = Output.table,
) -> None:
    """Deploy (or update) an application; local file:// actor images are uploaded first."""
    client = _client(api_url, api_token)
    try:
        result = client.apply(manifest)
        if wait:
            with console.status(f"waiting for {result['name']} to deploy") as status:
                result = client.wait_deployed(result["name"], timeout, on_status=lambda s: status.update(_progress(s)))
    except LatticeError as exc:
        _fail(str(exc))
    if output == Output.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"{result['name']} version {result['version']}: {result['status']['type']}")
        if result["status"]["type"] == "failed":  # stored; why it does not run (yet), e.g. a registry image
            console.print(f"[red]{result['status']['message']}[/red]", highlight=False)


def _progress(status: dict[str, Any]) -> str:
    """``reconciling: api 1/3, httpserver 1/1`` — how far each component got."""
    parts = [f"{c['name']} {c['running']}/{c['desired']}" for c in status.get("components", [])]
    return f"{status['type']}: {', '.join(parts) or status.get('message', '')}"


@get_app.command("hosts")
def get_hosts(
    api_url: ApiUrl = "http://127.0.0.1:8081", api_token: ApiToken = None, output: OutputOpt = Output.table
) -> None:
    """Live hosts with labels and load."""
    wide = output == Output.wide
    try:
        data = _client(api_url, api_token).hosts()
        rows = [
            {**h, "actors": [f"{a.label(wide=wide)}×{a.count}" for a in HostSummary.from_dict(h).actors]} for h in data
        ]
    except LatticeError as exc:
        _fail(str(exc))
    _print(
        rows if output != Output.json else data,
        output,
        ["id", "labels", "actors", "in_flight", "uptime_seconds"],
        "hosts",
    )


@get_app.command("apps")
def get_apps(
    api_url: ApiUrl = "http://127.0.0.1:8081", api_token: ApiToken = None, output: OutputOpt = Output.table
) -> None:
    """Applications with version and status."""
    try:
        data = _client(api_url, api_token).apps()
    except LatticeError as exc:
        _fail(str(exc))
    rows = [
        {
            "name": a["name"],
            "version": a["version"],
            "status": a["status"]["type"],
            "components": [f"{c['name']} {c['running']}/{c['desired']}" for c in a["status"]["components"]],
            "message": a["status"]["message"],
        }
        for a in data
    ]
    _print(
        rows if output != Output.json else data,
        output,
        ["name", "version", "status", "components", "message"],
        "applications",
    )


@get_app.command("links")
def get_links(
    api_url: ApiUrl = "http://127.0.0.1:8081", api_token: ApiToken = None, output: OutputOpt = Output.table
) -> None:
    """Link definitions."""
    try:
        data = _client(api_url, api_token).links()
    except LatticeError as exc:
        _fail(str(exc))
    _print(data, output, ["actor_id", "contract_id", "link_name", "provider_id", "values"], "links")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Application name.")],
    api_url: ApiUrl = "http://127.0.0.1:8081",
    api_token: ApiToken = None,
) -> None:
    """Undeploy and remove an application."""
    try:
        _client(api_url, api_token).delete_app(name)
    except LatticeError as exc:
        _fail(str(exc))
    console.print(f"{name} deleted")


@app.command()
def call(
    actor: Annotated[str, typer.Argument(help="Actor id (M…) or the name in its claims.")],
    operation: Annotated[str, typer.Argument(help="Operation, e.g. HttpServer.HandleRequest.")],
    payload: Annotated[str, typer.Argument(help="Payload (text; @file reads a file).")] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="The payload is JSON: send it as msgpack, print the answer as JSON.")
    ] = False,
    api_url: ApiUrl = "http://127.0.0.1:8081",
    api_token: ApiToken = None,
) -> None:
    """Invoke an actor through the control plane and print its answer."""
    from lattice.messages import pack, unpack

    try:
        body = Path(payload[1:]).read_bytes() if payload.startswith("@") else payload.encode()
    except OSError as exc:
        _fail(f"cannot read the payload file {payload[1:]}: {exc.strerror}")
    if as_json:
        try:
            body = pack(json.loads(body or b"null"))
        except ValueError as exc:
            _fail(f"--json: the payload is not JSON: {exc}")
    client = _client(api_url, api_token)
    try:
        result = client.invoke(_actor_id(client, actor), operation, body)
    except LatticeError as exc:
        _fail(str(exc))
    if as_json:
        try:
            print(json.dumps(unpack(result), default=lambda b: b.decode("utf-8", "replace"), indent=2))
            return
        except LatticeError:
            pass  # not msgpack: show it as it is
    sys.stdout.buffer.write(result + (b"" if result.endswith(b"\n") else b"\n"))


def _actor_id(client: Any, name: str) -> str:
    """``name`` itself when it is an actor id, else the id of the actor whose claims name it or that an
    application's manifest names so (a component name: how unsigned actors are known)."""
    if name.startswith("M") and len(name) == 56:
        return name
    try:
        hosts = [HostSummary.from_dict(h) for h in client.hosts()]
        ids = {a.id for h in hosts for a in h.actors if a.name == name}
        ids |= {app["actors"][name] for app in client.apps() if name in app.get("actors", {})}
    except LatticeError as exc:
        _fail(str(exc))
    if len(ids) != 1:
        _fail(
            f"{len(ids) or 'no'} actors are named {name!r} (by their claims or a manifest component): "
            "give the actor id (lattice get hosts -o json)"
        )
    return str(ids.pop())


def main() -> None:
    from lattice.cli import apps, registry, scaffold, security  # noqa: F401  (they register their commands)

    scaffold.register(app)
    app()
