"""Lifecycle: cold start of an application and failover after a host is killed.

cold_start_ms   from ``PUT /v1/applications/hello`` (hello actor + in-host ``builtin:httpserver``,
                artifact already uploaded, host already up with an empty module cache) to the
                first HTTP 200 on the link's port: reconcile, fetch, compile, instantiate, provider
                start, link, listener
failover_s      3 hosts with short heartbeats, the httpserver provider in its own process (so the
                HTTP listener survives), hello with one replica: from ``kill -9`` of the host
                running it to the next HTTP 200 (detection by missed heartbeats, rescheduling,
                start on another host)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.cluster import Cluster, ClusterError, hello_app, http_status, wait_until
from bench.micro import HELLO
from lattice.capability import HTTPSERVER, builtin_provider_id
from lattice.cli.natsserver import free_port

FAILOVER_HEARTBEAT_S = 0.5
FAILOVER_MISSES = 3


def _first_ok(url: str, timeout_s: float, interval_s: float = 0.005) -> float:
    """Monotonic time of the first 200 from ``url``; ``ClusterError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(interval_s)
    raise ClusterError(f"{url} did not answer 200 within {timeout_s:g} s")


def cold_start(lattice: Cluster) -> tuple[dict[str, float], dict[str, Any], int]:
    """Deploy ``hello`` with its in-host provider; returns the result, the artifact and the port."""
    art = lattice.upload(HELLO.read_bytes())
    port = free_port()
    manifest = hello_app("hello", art["digest"], port=port)
    start = time.monotonic()
    lattice.put_app("hello", manifest)
    ready = _first_ok(f"http://127.0.0.1:{port}/", 60)
    return {"cold_start_ms": (ready - start) * 1000}, art, port


def failover(workdir: Path) -> dict[str, float]:
    with Cluster(workdir, hosts=3, heartbeat_s=FAILOVER_HEARTBEAT_S, heartbeat_misses=FAILOVER_MISSES) as lattice:
        lattice.spawn_provider("httpserver")
        art = lattice.upload(HELLO.read_bytes())
        lattice.put_app("hello", hello_app("hello", art["digest"], port=None, replicas=1))
        lattice.wait_deployed("hello")
        port = free_port()
        lattice.put_link(art["actor_id"], builtin_provider_id("httpserver"), HTTPSERVER, {"port": str(port)})
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: lattice.alive() and http_status(url) == 200, 30, "hello answering through the provider")
        running = wait_until(lambda: lattice.hosts_running(art["actor_id"]), 10, "hello in a heartbeat")
        victim = lattice.host_names()[running[0]]
        start = time.monotonic()
        lattice.kill(victim)
        ready = _first_ok(url, 60, interval_s=0.01)
        return {
            "failover_s": ready - start,
            "failover_heartbeat_s": FAILOVER_HEARTBEAT_S,
            "failover_heartbeat_misses": float(FAILOVER_MISSES),
        }
