"""A control plane on a real socket, beside real hosts, on the test's nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from lattice.control.service import ControlPlane
from lattice.natsserver import free_port
from lattice.settings import Settings
from tests.conftest import wait_for


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
