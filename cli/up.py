"""``lattice up``: a whole lattice on one machine, the embedded default (SPEC §6).

Starts a ``nats-server`` (JetStream, store under the state dir, a free port) unless ``--nats-url`` is
given, N host processes (``lattice host``), the control plane in this process, then deploys the demo
application (``actors/kvcounter``: HTTP → actor → key-value) and waits until it answers HTTP. Every
participant shares one cluster seed, made on the first run and kept in the state directory with the API
token and the NATS users (``upsecrets``): links and sealed state persisted in JetStream stay valid across
restarts. Ctrl-C stops everything: hosts get SIGTERM
(they drain), then the control plane and the NATS server stop; no child is left behind.

One ``lattice up`` per state directory (a lock; a second one is told which process holds it): two
nats-servers on one JetStream store would corrupt it. The embedded nats-server and the hosts are
supervised: one that exits is started again, with backoff. The demo is applied under a version derived
from its content and settings (``v0.1.0-<hash>``), so another ``--http`` is a new version, not a conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import socket
import sys
import time
from functools import partial
from importlib import resources
from pathlib import Path
from typing import IO

import httpx
import structlog
import yaml
from rich.console import Console
from rich.table import Table

from lattice.cli import natsauth, upsecrets
from lattice.cli.client import Client
from lattice.cli.natsserver import NatsServer
from lattice.controlplane.service import ControlPlane
from lattice.errors import ConfigError, LatticeError
from lattice.failsafe import logged
from lattice.host.children import Child, PolledChild, Supervisor, child_env, start
from lattice.settings import DEFAULT_API_URL, Settings, default_state_dir

log = structlog.get_logger("lattice.cli.up")

STOP_GRACE_S = 15.0


def demo_manifest() -> Path:
    """The demo application's manifest (shipped with the ``actors`` package)."""
    return Path(str(resources.files("lattice.actors") / "kvcounter" / "manifest.yaml"))


def demo_on_every_host(directory: Path) -> Path:
    """The demo's manifest with its HTTP server on every host (a daemonscaler), written to ``directory``:
    the hosts of ``lattice up`` share the port (``LATTICE_HTTP_REUSE_PORT``), so each serves requests
    with its own instances and the kernel spreads the connections over them."""
    source = demo_manifest()
    doc = yaml.safe_load(source.read_text())
    for comp in doc["spec"]["components"]:
        image = comp["properties"].get("image", "")
        if comp["type"] == "actor" and image.startswith("file://./"):
            comp["properties"]["image"] = f"file://{source.parent / image.removeprefix('file://./')}"
        if comp["name"] == "httpserver":
            comp["traits"] = [{"type": "daemonscaler", "properties": {"replicas": 1}}]
    path = directory / "kvcounter.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def port_free(address: str, flag: str) -> bool:
    """Whether ``host:port`` can be bound; ``ConfigError`` naming ``flag`` when it is not an address."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{flag} takes host:port with a port from 1 to 65535, got {address!r}")
    with socket.socket() as s:
        # as the servers that will listen there do (uvicorn, nats-server): connections of a run just stopped,
        # in TIME_WAIT for a minute, do not make a free port look taken
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def lock_state_dir(state_dir: Path) -> IO[str]:
    """Hold ``state_dir/up.lock`` for this process (released when it exits, however it exits);
    ``ConfigError`` naming the holder when another ``lattice up`` has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = (state_dir / "up.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise ConfigError(
            f"another `lattice up` ({holder}) is running with the state directory {state_dir}: stop it first, "
            "or give this one its own with LATTICE_STATE_DIR=<dir>"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock


class Up:
    """One ``lattice up`` run. ``run()`` until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        hosts: int,
        http: str,
        api: str,
        nats_url: str | None,
        demo: bool,
        console: Console,
    ) -> None:
        self.settings = settings
        self.n_hosts = hosts
        self.http = http
        self.api = api
        self.nats_url = nats_url
        self.demo = demo
        self.console = console
        self.nats: NatsServer | None = None
        self.nats_supervisor: Supervisor | None = None
        self.hosts: list[Supervisor] = []
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        lock = lock_state_dir(self.settings.state_dir)
        try:
            # the API token and the cluster seed: the ones kept in the state directory unless given
            # (LATTICE_API_TOKEN, LATTICE_CLUSTER_SEED); read under the lock, made on the first run
            up_dir = self.settings.state_dir / "up"
            self.settings = self.settings.with_overrides(
                api_token=self.settings.api_token or upsecrets.api_token(up_dir),
                cluster_seed=self.settings.cluster_seed or upsecrets.cluster_seed(up_dir),
            )
            await self._run_locked()
        finally:
            lock.close()

    async def _run_locked(self) -> None:
        for address, flag in ((self.api, "--api"), *([(self.http, "--http")] if self.demo else [])):
            if not port_free(address, flag):
                raise ConfigError(f"{address} is already in use: pick another with {flag}")
        main = asyncio.create_task(self._run())
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not main.done():  # Ctrl-C: a running lattice winds down by itself, one still starting is cut short
                await asyncio.wait({main}, timeout=STOP_GRACE_S)
                main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await main
        finally:
            stopper.cancel()
            await self._stop_children()

    async def _run(self) -> None:
        say = self.console.print
        url = self.nats_url
        up_dir = self.settings.state_dir / "up"
        creds: natsauth.Credentials | None = None
        if url is None:
            store = up_dir / "nats"
            creds = natsauth.kept_credentials(up_dir)
            conf, saved = natsauth.write(creds, self.settings.lattice, up_dir)
            self.nats = NatsServer(store, extra_args=["-c", str(conf)])
            self.nats_supervisor = Supervisor(
                "nats-server", self._launch_nats, on_exit=self._nats_exited, on_restart=self._nats_restarted
            )
            with self.console.status("starting nats-server"):
                await self.nats_supervisor.start()
            url = self.nats.url
            say(f"[green]✓[/green] nats-server (JetStream) at {url}, store {store}")
            say(f"  NATS users per role (host, control, observer): credentials in {saved}")
        say(
            f"  API token and cluster seed in {up_dir} (kept across runs; lattice commands on this machine read the"
            " token; LATTICE_API_TOKEN overrides)"
        )
        settings = self.settings.with_overrides(nats_url=url)
        if creds is not None:
            settings = settings.with_overrides(nats_user=creds.control[0], nats_password=creds.control[1])
        hosts = settings.with_overrides(nats_user=creds.host[0], nats_password=creds.host[1]) if creds else settings
        env = child_env(
            hosts,
            LATTICE_ALLOW_UNSIGNED="true",
            # a development lattice: unsigned actors run, so signed ones of any issuer may too
            LATTICE_ALLOW_ANY_ISSUER="true",
            LATTICE_STATE_DIR=str(settings.state_dir),
            # the whole lattice stops at once: there is nowhere to drain to
            LATTICE_DRAIN_TIMEOUT="0",
            # the hosts share HTTP ports: the demo's server runs on each, the kernel spreads connections
            LATTICE_HTTP_REUSE_PORT="true",
        )
        logs_dir = settings.state_dir / "up" / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.host_env = env
        self.logs_dir = logs_dir
        for i in range(self.n_hosts):
            name = f"host-{i + 1}"
            host = Supervisor(name, partial(self._launch_host, name), on_exit=partial(self._host_exited, name))
            self.hosts.append(host)
            await host.start()
        async with ControlPlane(settings, listen=self.api) as cp:
            server = asyncio.create_task(cp.serve())
            try:
                await self._bring_up(cp, server, logs_dir)
                # from here on, a participant that exits is started again: the hosts and the control plane
                # reconnect to the same nats-server (same port, same store), work is placed on a new host again
                for supervisor in (*([self.nats_supervisor] if self.nats_supervisor else []), *self.hosts):
                    supervisor.watch()
                stopper = asyncio.create_task(self._stop.wait())
                await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                say("\nstopping…")
                if server.done():
                    server.result()  # the control plane ended on its own (lost NATS for good): say why, exit 1
            finally:
                cp.stop()
                with logged(log, "control plane did not stop within 5 s"):
                    await asyncio.wait_for(server, 5)

    async def _launch_host(self, name: str) -> Child:
        args = [sys.executable, "-m", "lattice", "host", "--label", f"name={name}"]
        with (self.logs_dir / f"{name}.log").open("ab") as log_file:
            return await start(args, env=self.host_env, output=log_file)

    async def _host_exited(self, name: str, code: int, backoff_s: float) -> None:
        self.console.print(
            f"[yellow]{name} exited with status {code}; restarting it[/yellow] (see {self.logs_dir / f'{name}.log'})"
        )

    async def _launch_nats(self) -> Child:
        assert self.nats is not None
        await asyncio.to_thread(self.nats.start)
        assert self.nats.proc is not None
        return PolledChild(self.nats.proc)

    async def _nats_exited(self, code: int, backoff_s: float) -> None:
        assert self.nats is not None
        self.console.print(
            f"[yellow]nats-server exited with status {code}; restarting it[/yellow]"
            f" (see {self.nats.store_dir / 'nats-server.log'})"
        )

    async def _nats_restarted(self, child: Child) -> None:
        assert self.nats is not None
        self.console.print(f"[green]✓[/green] nats-server back at {self.nats.url}")

    async def _bring_up(self, cp: ControlPlane, server: asyncio.Task[None], logs_dir: Path) -> None:
        say = self.console.print
        with self.console.status(f"waiting for {self.n_hosts} hosts to join") as status:
            deadline = time.monotonic() + 60
            while len(cp.hosts()) < self.n_hosts:
                dead = [h.child.returncode for h in self.hosts if h.child and h.child.returncode is not None]
                if dead:  # not restarted while coming up: a host that cannot start says why in its log
                    raise LatticeError(f"a host exited with status {dead[0]}; see {logs_dir}")
                if time.monotonic() > deadline:
                    raise LatticeError(f"hosts did not join within 60 s; see {logs_dir}")
                status.update(f"waiting for hosts: {len(cp.hosts())}/{self.n_hosts}")
                await asyncio.sleep(0.1)
        say(f"[green]✓[/green] {self.n_hosts} hosts joined (logs in {logs_dir})")
        while cp.server is None or not cp.server.started:  # listening before anyone is told where
            if server.done():
                server.result()  # why it ended (it could not listen, or lost NATS)
                raise LatticeError(f"the control plane stopped before it listened on {self.api}")
            await asyncio.sleep(0.02)
        say(f"[green]✓[/green] control plane at http://{self.api}: dashboard /ui, API docs /docs, metrics /metrics")
        if exports := self._cli_exports():
            say(f"  for the CLI in another shell: [bold]export {exports}[/bold]", soft_wrap=True)  # one pasteable line
        if self.demo:
            await asyncio.to_thread(self._deploy_demo)
        self._print_table(cp)
        say("Ctrl-C stops everything.")

    def _cli_exports(self) -> str:
        """What another shell's ``lattice`` commands need to reach this run: its API URL and, for its token,
        its state directory (each only when not the default)."""
        exports = []
        if f"http://{self.api}" != DEFAULT_API_URL:
            exports.append(f"LATTICE_API_URL=http://{self.api}")
        if self.settings.state_dir != default_state_dir(
            {k: v for k, v in os.environ.items() if k != "LATTICE_STATE_DIR"}
        ):
            exports.append(f"LATTICE_STATE_DIR={shlex.quote(str(self.settings.state_dir))}")
        return " ".join(exports)

    def _deploy_demo(self) -> None:
        client = Client(f"http://{self.api}", self.settings.api_token)
        try:
            with self.console.status("deploying the demo application (kvcounter)") as status:
                manifest = demo_on_every_host(self.logs_dir.parent)
                app = client.apply(manifest, overrides={"httpserver": self.http}, content_version=True)
                client.wait_deployed(app["name"], 60, on_status=lambda s: status.update(f"kvcounter: {s['message']}"))
                deadline = time.monotonic() + 30
                while True:
                    try:
                        # not /hello: the user's first curl should count 1 there (on a fresh state dir)
                        if httpx.get(f"http://{self.http}/lattice-up-ready", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise LatticeError(f"the demo did not answer on http://{self.http} within 30 s")
                    time.sleep(0.1)
        finally:
            client.close()
        self.console.print(f"[green]✓[/green] demo deployed: [bold]curl http://{self.http}/hello[/bold]")

    def _print_table(self, cp: ControlPlane) -> None:
        table = Table(title="what runs where")
        for column in ("host", "labels", "actors", "providers"):
            table.add_column(column)
        for h in cp.host_summaries():
            table.add_row(
                h.id[:16] + "…",
                ", ".join(f"{k}={v}" for k, v in h.labels.items() if not k.startswith("hostcore")),
                ", ".join(f"{a.name or a.id[:10]}×{a.count}" for a in h.actors),
                ", ".join(sorted({p.image_ref for p in h.providers})),
            )
        self.console.print(table)

    async def _stop_children(self) -> None:
        """The hosts first (SIGTERM: they leave; SIGKILL after 10 s), all at once, then the nats-server."""
        await asyncio.gather(*(host.stop(10) for host in self.hosts))
        if self.nats_supervisor is not None:
            await self.nats_supervisor.stop()
        if self.nats is not None:
            self.nats.stop()  # a restart cut short while it waited for the server to be ready
