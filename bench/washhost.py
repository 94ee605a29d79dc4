"""The ``wash host`` peer with a warm instance pool: wasmCloud 2.x's reference host as people serve with it.

``wash host`` takes workloads from a scheduler over NATS and images from an OCI registry, so this
module starts, in a temp dir, everything that needs (the setup of ``/work/shared/peers/wash_host_up.sh``):

    nats-server        ``-js`` on a free loopback port (``NatsServer``)
    docker-registry    Debian's ``docker-registry`` as the local OCI registry (free loopback port)
    wash oci push      ``peer_hello/hello_p3.component.wasm`` (wasi:http 0.3 hello, 8 KB)
    wash host          ``--http-addr`` on a free port, its scheduler and data on that NATS
    workload.start     ``runtime.host.<host_id>.workload.start`` (JSON of wasmcloud.runtime.v2): the hello
                       with ``poolSize`` 2 × ``maxConcurrency`` 16, routed by the ``Host`` header

Then the load (``http.measure``) carries ``Host: hello-p3-pool.local``. Keys ``wash_host_pool_*``.
A missing ``wash`` or ``docker-registry`` raises ``FileNotFoundError`` (``peers.run`` prints it as the
reason for the skip).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats

from bench.cluster import http_status, stop_process, wait_until
from lattice.cli.natsserver import NatsServer, free_port
from lattice.host.children import spawn

HELLO_P3 = Path(__file__).resolve().parent / "peer_hello" / "hello_p3.component.wasm"
VIRTUAL_HOST = "hello-p3-pool.local"
POOL_SIZE, MAX_CONCURRENCY = 2, 16


@contextlib.contextmanager
def _child(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = spawn(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        stop_process(proc)


def _registry_config(workdir: Path, port: int) -> Path:
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {workdir / 'registry-data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return config


def _workload(image: str) -> dict[str, object]:
    component = {
        "name": "hello",
        "image": image,
        "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT",
        "poolSize": POOL_SIZE,
        "maxConcurrency": MAX_CONCURRENCY,
    }
    http = {
        "namespace": "wasi",
        "package": "http",
        "version": "0.3.0",
        "interfaces": ["handler"],
        "config": {"host": VIRTUAL_HOST},
    }
    world = {"components": [component], "hostInterfaces": [http]}
    return {"workloadId": "hello-p3-pool", "workload": {"namespace": "default", "name": "hello", "witWorld": world}}


async def _start_workload(nats_url: str, host_id: str, image: str) -> str:
    nc = await nats.connect(nats_url)
    try:
        subject = f"runtime.host.{host_id}.workload.start"
        reply = await nc.request(subject, json.dumps(_workload(image)).encode(), timeout=120)
        return reply.data.decode(errors="replace")
    finally:
        await nc.close()


def _host_id(log: Path) -> str | None:
    found = re.search(r'Host started host_id="([^"]+)"', log.read_text(errors="replace")) if log.exists() else None
    return found.group(1) if found else None


@contextlib.contextmanager
def serving(wash: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """Everything up and the pooled hello answering; yields the URL (send ``Host: VIRTUAL_HOST``) and the
    pid of ``wash host``."""
    registry_bin = shutil.which("docker-registry")
    if registry_bin is None:
        raise FileNotFoundError("docker-registry not found (apt-get install -y docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home)}
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    server = NatsServer(workdir / "nats").start()
    try:
        reg_port, http_port = free_port(), free_port()
        registry_args = [registry_bin, "serve", str(_registry_config(workdir, reg_port))]
        with _child(registry_args, workdir / "registry.log", env) as registry:
            wait_until(lambda: registry.poll() is None and http_status(f"http://127.0.0.1:{reg_port}/v2/") == 200, 30,
                       "docker-registry answering")  # fmt: skip
            image = f"127.0.0.1:{reg_port}/bench/hello-p3:v1"
            push = [wash, "oci", "push", "--insecure", image, str(HELLO_P3)]
            subprocess.run(push, env=env, check=True, capture_output=True, timeout=120)
            host_args = [wash, "--non-interactive", "host", "--scheduler-nats-url", server.url, "--data-nats-url",
                         server.url, "--http-addr", f"127.0.0.1:{http_port}", "--host-name", "benchhost",
                         "--oci-cache-dir", str(workdir / "oci"), "--allow-insecure-registries"]  # fmt: skip
            log = workdir / "wash-host.log"
            with _child(host_args, log, env) as host:
                host_id = wait_until(lambda: host.poll() is None and _host_id(log), 60, "wash host started")
                answer = asyncio.run(_start_workload(server.url, host_id, image))
                url = f"http://127.0.0.1:{http_port}/"
                wait_until(lambda: _status_with_host(url) == 200, 60, f"wash host workload ({answer[:200]})")
                yield url, host.pid
    finally:
        server.stop()


def _status_with_host(url: str) -> int:
    import httpx

    try:
        return httpx.get(url, headers={"Host": VIRTUAL_HOST}, timeout=2).status_code
    except httpx.HTTPError:
        return 0
