"""HTTP throughput and latency: plain uvicorn, then lattice with the provider in the host and remote.

    uvicorn        ``uvicorn bench.asgi_hello:app --http httptools --loop uvloop`` in its own process
    http_local     HTTP → ``builtin:httpserver`` inside the host process → hello actor → response
    http_local2    the same on ``lattice host --workers 2``: two hosts sharing the port (SO_REUSEPORT)
    http_remote    the same with ``lattice provider httpserver`` in its own process: each request is
                   a signed ``Invocation`` over NATS to the host running the actor
    http_remote3   the scale row: 3 hosts each running the actor, one provider process in front

Every target gets the same load generator, connections and duration (``loadgen.run``). Keys:
``<name>_rps``, ``<name>_p50_ms``, ``<name>_p99_ms``, ``<name>_errors``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen
from bench.cluster import ROOT, Cluster, hello_app, http_status, stop_process, wait_until
from bench.lifecycle import HELLO
from lattice.capability import HTTPSERVER, builtin_provider_id
from lattice.cli.natsserver import free_port, spawn


@dataclass(frozen=True, slots=True)
class LoadPlan:
    connections: int
    duration_s: float
    warmup_s: float


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) process ``pid`` has used; ``None`` without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux ``/proc``; none elsewhere)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cpu_s(pids: list[int]) -> float | None:
    """CPU seconds processes ``pids`` have used together; ``None`` when one cannot be read."""
    times = [process_cpu_s(pid) for pid in pids]
    return None if not times or None in times else sum(t for t in times if t is not None)


def measure(
    name: str, url: str, plan: LoadPlan, host: str | None = None, pid: int | list[int] | None = None
) -> dict[str, float]:
    """Load ``url``; with ``pid`` (the serving process, or processes) also ``<name>_cpu_us_per_req``: its
    CPU time per request, which a machine shared with other work changes far less than req/s."""
    if plan.warmup_s > 0:
        loadgen.run(url, connections=plan.connections, duration_s=plan.warmup_s, host=host)
    pids = [] if pid is None else [pid] if isinstance(pid, int) else pid
    cpu_before = cpu_s(pids)
    load = loadgen.run(url, connections=plan.connections, duration_s=plan.duration_s, host=host)
    if load.requests == 0:
        raise RuntimeError(f"{load.tool}: no request to {url} completed ({load.errors} errors)")
    out = {
        f"{name}_rps": load.rps,
        f"{name}_p50_ms": load.p50_ms,
        f"{name}_p99_ms": load.p99_ms,
        f"{name}_errors": float(load.errors),
    }
    cpu_after = cpu_s(pids)
    if cpu_before is not None and cpu_after is not None:
        out[f"{name}_cpu_us_per_req"] = (cpu_after - cpu_before) / load.requests * 1e6
    return out


def uvicorn(plan: LoadPlan) -> dict[str, float]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.asgi_hello:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = spawn(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: proc.poll() is None and http_status(url) == 200, 30, "uvicorn answering")
        return measure("uvicorn", url, plan, pid=proc.pid)
    finally:
        stop_process(proc)


def local(port: int, plan: LoadPlan, pid: int | None = None) -> dict[str, float]:
    """Load the hello application already deployed with its in-host provider on ``port`` (host ``pid``)."""
    return measure("http_local", f"http://127.0.0.1:{port}/", plan, pid=pid)


def local_shared_port(workdir: Path, plan: LoadPlan) -> dict[str, float]:
    """``lattice host --workers 2``: two hosts, each with the provider in process, sharing one port (the
    workers' default ``reuse_port``): the kernel spreads connections, each host serves its own hello
    instance. Keys ``http_local2_*``."""
    with Cluster(workdir, hosts=1, workers=2) as lattice:
        art = lattice.upload(HELLO.read_bytes())
        port = free_port()
        manifest = hello_app("hello", art["digest"], port=port, replicas=2)
        provider = manifest["spec"]["components"][1]
        provider["traits"] = [{"type": "daemonscaler", "properties": {"replicas": 1}}]
        lattice.put_app("hello", manifest)
        lattice.wait_deployed("hello")
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: http_status(url) == 200, 30, "hello answering on the shared port")
        return measure("http_local2", url, plan, pid=children_of(lattice.children["host-1"].pid))


def remote(lattice: Cluster, digest: str, actor_id: str, plan: LoadPlan) -> dict[str, float]:
    """Undeploy ``hello`` (its in-host provider shares the bundled id), then serve the actor through a
    provider process: application ``hello-remote`` (the actor only) and a link put by hand."""
    lattice.delete_app("hello")
    wait_until(lambda: not lattice.links_of(actor_id), 30, "hello's link removed")
    wait_until(lambda: not lattice.hosts_running(actor_id), 30, "hello stopped")
    lattice.spawn_provider("httpserver")
    lattice.put_app("hello-remote", hello_app("hello-remote", digest, port=None))
    lattice.wait_deployed("hello-remote")
    port = free_port()
    lattice.put_link(actor_id, builtin_provider_id("httpserver"), HTTPSERVER, {"port": str(port)})
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: lattice.alive() and http_status(url) == 200, 30, "remote provider answering")
    return measure("http_remote", url, plan)


def remote_three_hosts(workdir: Path, plan: LoadPlan) -> dict[str, float]:
    """The scale row: a lattice of 3 hosts, the hello on each (3 replicas) and one ``httpserver`` provider
    in its own process, under the same load; every request crosses NATS to one of the hosts. Keys
    ``http_remote3_*``."""
    with Cluster(workdir, hosts=3) as lattice:
        lattice.spawn_provider("httpserver")
        art = lattice.upload(HELLO.read_bytes())
        lattice.put_app("hello", hello_app("hello", art["digest"], port=None, replicas=3))
        lattice.wait_deployed("hello")
        wait_until(lambda: len(lattice.hosts_running(art["actor_id"])) == 3, 30, "hello on the 3 hosts")
        port = free_port()
        lattice.put_link(art["actor_id"], builtin_provider_id("httpserver"), HTTPSERVER, {"port": str(port)})
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: lattice.alive() and http_status(url) == 200, 30, "hello answering through the provider")
        return measure("http_remote3", url, plan)
