"""The lattice processes a scenario runs against, each a child that dies with this process.

    with Cluster(workdir, hosts=3, heartbeat_s=0.5) as lattice:
        digest = lattice.upload(wasm)["digest"]
        lattice.put_app("hello", hello_app("hello", digest, port=8080))

A ``nats-server`` (JetStream), the control plane (``python -m lattice control-plane``) and N hosts
(``python -m lattice host``, label ``bench=host-<i>``), all sharing one cluster seed; optionally a
standalone provider (``python -m lattice provider httpserver``). ``close()`` terminates every child
(then kills what is left) and stops the server; logs are kept under ``workdir/logs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from lattice import keys
from lattice.cli.natsserver import NatsServer, free_port, spawn

ROOT = Path(__file__).resolve().parent.parent
LATTICE = "bench"


class ClusterError(RuntimeError):
    """A lattice process did not come up, or the API refused something; the message says which."""


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; ``ClusterError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise ClusterError(f"{what}: not within {timeout_s:g} s")
        time.sleep(interval_s)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Terminate ``proc`` (a child of ours), kill it if it is still there after ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http_status(url: str, timeout_s: float = 2.0) -> int:
    """The status of ``GET url``, 0 when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code
    except httpx.HTTPError:
        return 0


def hello_app(name: str, digest: str, *, port: int | None, replicas: int = 1) -> dict[str, Any]:
    """A one-actor application; with ``port``, linked to an in-host ``builtin:httpserver`` on it."""
    actor: dict[str, Any] = {
        "name": "hello",
        "type": "actor",
        "properties": {"image": digest},
        "traits": [{"type": "spreadscaler", "properties": {"replicas": replicas}}],
    }
    components = [actor]
    if port is not None:
        actor["traits"].append(
            {"type": "linkdef", "properties": {"target": "httpserver", "values": {"port": str(port)}}}
        )
        components.append(
            {
                "name": "httpserver",
                "type": "capability",
                "properties": {"image": "builtin:httpserver", "contract": "wasmcloud:httpserver"},
            }
        )
    return {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": name, "annotations": {"version": "v1"}},
        "spec": {"components": components},
    }


class Cluster:
    """A whole lattice on this machine, for one scenario (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        hosts: int = 1,
        heartbeat_s: float = 1.0,
        heartbeat_misses: int = 3,
        shared_state: bool = False,
        workers: int = 1,
    ) -> None:
        """``shared_state``: the control plane uses the first host's state directory (compile cache
        included), as ``lattice up`` does; otherwise its own under ``workdir``. ``workers``: each host
        process is ``lattice host --workers N`` (N hosts sharing HTTP ports)."""
        self.workdir = workdir
        self.shared_state = shared_state
        self.n_hosts = hosts * workers
        self.n_processes = hosts
        self.workers = workers
        self.heartbeat_s = heartbeat_s
        self.heartbeat_misses = heartbeat_misses
        self.cluster_seed = keys.generate("cluster").seed
        self.nats = NatsServer(workdir / "nats")
        self.api_port = free_port()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = workdir / "logs"
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=30)

    # --- processes -----------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "LATTICE_NATS_URL": self.nats.url,
            "LATTICE_NAME": LATTICE,
            "LATTICE_CLUSTER_SEED": self.cluster_seed,
            "LATTICE_ALLOW_UNSIGNED": "true",
            "LATTICE_HEARTBEAT": str(self.heartbeat_s),
            "LATTICE_HEARTBEAT_MISSES": str(self.heartbeat_misses),
            "LATTICE_JSON_LOGS": "true",
            "LATTICE_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            **extra,
        }

    def spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        """Start ``python -m lattice <args>`` as child ``name``, its output in ``logs/<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log_file:
            proc = spawn(
                [sys.executable, "-m", "lattice", *args],
                env=self.env(**env),
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.children[name] = proc
        return proc

    def start(self) -> Cluster:
        self.nats.start()
        state = self.workdir / ("host-1" if self.shared_state else "control-plane")
        self.spawn(
            "control-plane", ["control-plane", "--listen", f"127.0.0.1:{self.api_port}"], LATTICE_STATE_DIR=str(state)
        )
        for i in range(1, self.n_processes + 1):
            self.spawn_host(f"host-{i}")
        wait_until(lambda: self.alive() and len(self.hosts()) == self.n_hosts, 60, f"{self.n_hosts} host(s) joining")
        return self

    def spawn_host(self, name: str) -> subprocess.Popen[bytes]:
        state = self.workdir / name
        args = ["host", *(["--workers", str(self.workers)] if self.workers > 1 else [])]
        return self.spawn(name, args, LATTICE_STATE_DIR=str(state), LATTICE_LABEL_BENCH=name)

    def spawn_provider(self, name: str = "httpserver") -> subprocess.Popen[bytes]:
        """A bundled provider in its own process (it serves the bundled provider's stable id)."""
        return self.spawn(f"provider-{name}", ["provider", name])

    def alive(self) -> bool:
        dead = {n: p.returncode for n, p in self.children.items() if p.poll() is not None}
        if dead:
            name, code = next(iter(dead.items()))
            raise ClusterError(f"{name} exited with status {code}: {self.log_tail(name)}")
        return True

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def kill(self, name: str) -> None:
        """``kill -9`` child ``name``."""
        proc = self.children.pop(name)
        proc.kill()
        proc.wait()

    def close(self) -> None:
        self.api.close()
        for proc in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.children.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
        self.nats.stop()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the control plane API -----------------------------------------------------------------------

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ClusterError(f"{response.request.method} {response.request.url.path}: {response.text[:500]}")
        return response.json()

    def hosts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._ok(self.api.get("/v1/hosts"))
        return result

    def host_names(self) -> dict[str, str]:
        """Host id → the ``bench`` label it was started with (``host-<i>``)."""
        return {h["id"]: h["labels"].get("bench", "") for h in self.hosts()}

    def upload(self, wasm: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(
            # a componentize-py component is compiled on upload: seconds, more on a busy machine
            self.api.post("/v1/artifacts", content=wasm, headers={"content-type": "application/wasm"}, timeout=300)
        )
        return result

    def put_app(self, name: str, manifest: dict[str, Any]) -> None:
        self._ok(
            self.api.put(
                f"/v1/applications/{name}", content=json.dumps(manifest), headers={"content-type": "application/json"}
            )
        )

    def delete_app(self, name: str) -> None:
        self._ok(self.api.delete(f"/v1/applications/{name}"))

    def app(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self.api.get(f"/v1/applications/{name}"))
        return result

    def wait_deployed(self, name: str, timeout_s: float = 60) -> dict[str, Any]:
        def deployed() -> dict[str, Any] | None:
            self.alive()
            app = self.app(name)
            return app if app["status"]["type"] == "deployed" else None

        result: dict[str, Any] = wait_until(deployed, timeout_s, f"application {name} deployed")
        return result

    def links_of(self, actor_id: str) -> list[dict[str, Any]]:
        return [link for link in self._ok(self.api.get("/v1/links")) if link["actor_id"] == actor_id]

    def hosts_running(self, actor_id: str) -> list[str]:
        """Ids of the hosts whose last heartbeat lists ``actor_id``."""
        return [h["id"] for h in self.hosts() if any(a["id"] == actor_id for a in h["actors"])]

    def placements(self, name: str) -> list[str]:
        """Host ids running any of the application's components."""
        return [p["host_id"] for c in self.app(name)["status"]["components"] for p in c["placements"] if p["count"]]

    def put_link(self, actor_id: str, provider_id: str, contract_id: str, values: dict[str, str]) -> None:
        body = {
            "actor_id": actor_id,
            "provider_id": provider_id,
            "contract_id": contract_id,
            "link_name": "default",
            "values": values,
        }
        self._ok(self.api.put("/v1/links", json=body))
