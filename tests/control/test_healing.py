"""Healing with real host processes: kill -9, graceful drain, control plane restart and failover."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice.cli.natsserver import free_port, spawn
from lattice.controlplane.service import ControlPlane
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import deploy_kvcounter, http_ok


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.with_overrides(heartbeat_s=0.3, heartbeat_misses=3)


@pytest.fixture
def host_processes(fast_settings: Settings, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "LATTICE_NATS_URL": fast_settings.nats_url,
            "LATTICE_NAME": fast_settings.lattice,
            "LATTICE_CLUSTER_SEED": fast_settings.cluster_seed or "",
            "LATTICE_ALLOW_UNSIGNED": "true",
            "LATTICE_HEARTBEAT": str(fast_settings.heartbeat_s),
            "LATTICE_HEARTBEAT_MISSES": str(fast_settings.heartbeat_misses),
            "LATTICE_STATE_DIR": str(tmp_path / "state"),
            "LATTICE_JSON_LOGS": "true",
        }
        log = (tmp_path / f"{name}.log").open("wb")
        proc = spawn(
            [sys.executable, "-m", "lattice", "host", "--label", f"name={name}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
async def cp_factory(fast_settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[ControlPlane, asyncio.Task[None]]] = []

    async def start(listen: str | None = None) -> tuple[ControlPlane, httpx.AsyncClient]:
        cp = ControlPlane(fast_settings, listen=listen or f"127.0.0.1:{free_port()}")
        await cp.__aenter__()
        task = asyncio.create_task(cp.serve())
        running.append((cp, task))
        await wait_for(lambda: cp.server is not None and cp.server.started)
        return cp, httpx.AsyncClient(base_url=f"http://{cp.listen}", timeout=10)

    async def stop(cp: ControlPlane) -> None:
        for entry in [e for e in running if e[0] is cp]:
            running.remove(entry)
            cp.stop()
            await asyncio.wait_for(entry[1], 5)
            await cp.__aexit__(None, None, None)

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    for cp, _ in list(running):
        await stop(cp)


def _host_of_http(cp: ControlPlane) -> str:
    for host in cp.hosts():
        if any(p["contract_id"] == "wasmcloud:httpserver" for p in host["providers"]):
            return str(host["labels"]["name"])
    return ""


async def _status(client: httpx.AsyncClient) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get("/v1/applications/kvcounter")).json()["status"]
    return result


async def test_killed_host_is_replaced_and_http_answers_again(host_processes: Any, cp_factory: Any) -> None:
    procs = {name: host_processes(name) for name in ("h1", "h2", "h3")}
    cp, client = await cp_factory()
    await wait_for(lambda: len(cp.hosts()) == 3, timeout=20)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=3)
    url = f"http://127.0.0.1:{port}/heal"
    await wait_for(lambda: http_ok(url), timeout=20)
    await wait_for(lambda: _deployed(client))
    victim = _host_of_http(cp)  # the worst case: the host holding the HTTP listener
    before = (await httpx.AsyncClient().get(url)).json()["count"]

    procs[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await wait_for(lambda: http_ok(url), timeout=30)
    print(f"\nHTTP answered again {time.monotonic() - killed_at:.2f} s after kill -9 of the HTTP host")
    await wait_for(lambda: _deployed(client), timeout=30)
    status = await _status(client)
    actor = next(c for c in status["components"] if c["name"] == "kvcounter")
    assert actor["running"] == 3 and len(actor["placements"]) == 2
    after = (await httpx.AsyncClient().get(url)).json()["count"]
    assert after > before  # acknowledged increments survived (they live in JetStream, not in the host)


async def _deployed(client: httpx.AsyncClient) -> bool:
    return bool((await _status(client))["type"] == "deployed")


async def test_graceful_stop_drains_before_leaving(host_processes: Any, cp_factory: Any, tmp_path: Path) -> None:
    procs = {name: host_processes(name) for name in ("h1", "h2")}
    cp, client = await cp_factory()
    await wait_for(lambda: len(cp.hosts()) == 2, timeout=20)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=2)
    url = f"http://127.0.0.1:{port}/drain"
    await wait_for(lambda: http_ok(url), timeout=20)
    await wait_for(lambda: _deployed(client))
    leaving = "h1" if _host_of_http(cp) != "h1" else "h2"
    procs[leaving].send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(procs[leaving].wait, 30) == 0
    assert '"left": 0' in (tmp_path / f"{leaving}.log").read_text()  # drained, not timed out
    # It left only once the control plane had scaled it to zero, re-placing its replica in the same plan.
    assert [h["labels"]["name"] for h in cp.hosts()] == ["h1" if leaving == "h2" else "h2"]
    assert await http_ok(url)
    await wait_for(lambda: sum(a["count"] for a in cp.hosts()[0]["actors"]) == 2)


async def test_restarted_control_plane_resumes_without_redeploying(host_processes: Any, cp_factory: Any) -> None:
    for name in ("h1", "h2"):
        host_processes(name)
    cp, client = await cp_factory()
    await wait_for(lambda: len(cp.hosts()) == 2, timeout=20)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=2)
    await cp_factory.stop(cp)  # mid-reconcile: right after the PUT
    _cp2, client2 = await cp_factory()
    url = f"http://127.0.0.1:{port}/resume"
    await wait_for(lambda: http_ok(url), timeout=30)
    await wait_for(lambda: _deployed(client2), timeout=20)
    actor = next(c for c in (await _status(client2))["components"] if c["name"] == "kvcounter")
    assert actor["running"] == 2  # exactly the desired count, nothing doubled


async def test_second_control_plane_takes_over_when_the_leader_dies(cp_factory: Any) -> None:
    cp1, _ = await cp_factory()
    await wait_for(lambda: cp1.is_leader(), timeout=30)
    cp2, _ = await cp_factory()
    await asyncio.sleep(1.5)  # cp2 has checked the lease about once a second meanwhile: it must not take it
    assert not cp2.is_leader()
    await wait_for(lambda: cp1.is_leader(), timeout=30)
    cp1._tasks[0].cancel()  # the leader's lease renewal dies with it (no graceful release)
    await wait_for(lambda: cp2.is_leader(), timeout=30)
