"""Shared fixtures: a real nats-server per test (free loopback port, JetStream, temp dir)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from lattice.cli.natsserver import NatsServer, free_port
from lattice.controlplane.service import ControlPlane
from lattice.host.runtime import Runtime
from lattice.settings import Settings

# CI runs the suite once on a loaded 2-core box: no example may fail for taking long (no deadline), and
# slow generation is not a failure either. Per-test ``@settings`` inherit this profile; one that names its own
# ``suppress_health_check`` replaces the list, so it names ``too_slow`` again.
hypothesis_settings.register_profile("lattice", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("lattice")


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """One wasmtime runtime (engine, module cache, epoch ticker) per test module."""
    rt = Runtime()
    yield rt
    rt.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(nats_server: NatsServer, tmp_path: Path) -> Settings:
    """Settings for participants of a test lattice (unsigned actors and any issuer allowed, short heartbeat)."""
    return Settings(
        nats_url=nats_server.url,
        lattice="test",
        allow_unsigned=True,
        allow_any_issuer=True,
        state_dir=tmp_path / "state",
        heartbeat_s=0.5,
        heartbeat_misses=6,  # lost after 3 s of silence: a loaded box can hold a host's event loop past 1.5 s
        # an answer that comes is waited for: 2 s (the default) was a hidden wall-clock threshold for every
        # call in the suite on a loaded 2-core box; tests about timeouts set their own short ones
        rpc_timeout_s=10.0,
        cluster_seed=_CLUSTER_SEED,
    )


def _cluster_seed() -> str:
    from lattice import keys

    return keys.generate("cluster").seed


_CLUSTER_SEED = _cluster_seed()


def from_threads(call: Callable[[bytes], bytes], threads: int, per_thread: int, prefix: str = "") -> list[bytes]:
    """``call(b"<prefix><i>-<j>")`` from ``threads`` threads, ``per_thread`` times each; every answer."""
    results: list[bytes] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(per_thread):
            out = call(f"{prefix}{i}-{j}".encode())
            with lock:
                results.append(out)

    running = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return results


async def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail the test after ``timeout`` seconds (generous:
    a bound costs nothing when things go well, and CI runs on a loaded 2-core box)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
async def host_factory(settings: Settings, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start hosts in this test's event loop (reading ``file://`` images under ``tmp_path``); all are
    shut down at the end."""
    from lattice.host.host import Host

    started: list[Host] = []

    async def start(**overrides: Any) -> Host:
        host = Host(settings.with_overrides(**{"files_root": tmp_path, **overrides}))
        await host.__aenter__()
        started.append(host)
        return host

    yield start
    for host in started:
        await host.shutdown()


@pytest.fixture
async def control_plane_factory(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[ControlPlane, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> tuple[ControlPlane, httpx.AsyncClient]:
        cp = ControlPlane(settings.with_overrides(**overrides), listen=f"127.0.0.1:{free_port()}")
        await cp.__aenter__()
        task = asyncio.create_task(cp.serve())
        started.append((cp, task))
        client = httpx.AsyncClient(base_url=f"http://{cp.listen}", timeout=10)
        await wait_for(lambda: cp.server is not None and cp.server.started)
        return cp, client

    yield start
    for cp, task in started:
        cp.stop()
        await asyncio.wait_for(task, 5)
        await cp.__aexit__(None, None, None)


async def answer_sealed(nc: Any, msg: Any, cluster_seed: str, responder: Any, response: Any) -> None:
    """Answer an invocation as ``responder`` would: the ``InvocationResponse`` sealed with the cluster key."""
    from lattice import keys, rpc, seal

    body = response.to_msgpack()
    sealer = seal.Sealer(keys.from_seed(cluster_seed))
    await nc.publish(
        msg.reply, body, headers=sealer.headers(rpc.response_context(response.invocation_id, responder), body)
    )


def sealer(settings: Settings) -> Any:
    """The ``Sealer`` of a participant of the test lattice (``settings.cluster_seed``)."""
    from lattice import keys, seal

    return seal.Sealer(keys.from_seed(settings.cluster_seed or ""))
