"""Shared fixtures: a real nats-server per test (free loopback port, JetStream, temp dir)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lattice.natsserver import NatsServer
from lattice.settings import Settings


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(nats_server: NatsServer, tmp_path: Path) -> Settings:
    """Settings for participants of a test lattice (unsigned actors allowed, short heartbeat)."""
    return Settings(
        nats_url=nats_server.url,
        lattice="test",
        allow_unsigned=True,
        state_dir=tmp_path / "state",
        heartbeat_s=0.5,
        rpc_timeout_s=2.0,
        cluster_seed=_CLUSTER_SEED,
    )


def _cluster_seed() -> str:
    from lattice import keys

    return keys.generate("cluster").seed


_CLUSTER_SEED = _cluster_seed()


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail the test after ``timeout`` seconds."""
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
async def host_factory(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """Start hosts in this test's event loop; all are shut down at the end."""
    from host.host import Host

    started: list[Host] = []

    async def start(**overrides: Any) -> Host:
        host = Host(settings.with_overrides(**overrides))
        await host.__aenter__()
        started.append(host)
        return host

    yield start
    for host in started:
        await host.shutdown()
