"""Provider lifecycle events have one shape (SPEC §4: ``public_key``, ``contract_id``, ``link_name``), whether the
provider runs in a host, as a host's child process that crashed, or standalone and killed with ``kill -9``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice import events, subjects
from lattice.capability import builtin_provider_id
from lattice.connection import settle
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host.test_host import command

NUMBERGEN = builtin_provider_id("numbergen")
SHAPE = {"public_key": NUMBERGEN, "contract_id": "wasmcloud:builtin:numbergen", "link_name": "default"}


@pytest.fixture
async def seen(settings: Settings) -> AsyncIterator[list[events.CloudEvent]]:
    nc = NATS()
    await nc.connect(settings.nats_url)
    out: list[events.CloudEvent] = []

    async def collect(msg: Msg) -> None:
        if (event := events.parse(msg.data)) is not None:
            out.append(event)

    await nc.subscribe(subjects.events(settings.lattice), cb=collect)
    await settle(nc)
    yield out
    await nc.close()


def stopped(seen: list[events.CloudEvent]) -> list[dict[str, Any]]:
    return [e.data for e in seen if e.name == events.PROVIDER_STOPPED and e.data.get("public_key") == NUMBERGEN]


async def test_provider_stopped_of_a_crashed_child_has_the_spec_shape(
    host_factory: Any, seen: list[events.CloudEvent]
) -> None:
    host = await host_factory(provider_processes=True)
    await command(host, "lp", {"provider_ref": "builtin:numbergen", "link_name": "default"})
    await wait_for(lambda: any(e.name == events.HEALTH_CHECK_PASSED for e in seen), timeout=30)
    child = host.providers[(NUMBERGEN, "default")].process
    assert child is not None and child.proc is not None
    os.kill(child.proc.pid, signal.SIGKILL)
    [data] = await wait_for(lambda: stopped(seen), timeout=30)
    assert {k: data[k] for k in SHAPE} == SHAPE
    assert data["code"] == -signal.SIGKILL


async def test_standalone_provider_killed_with_sigkill_gets_a_provider_stopped_event(
    settings: Settings, control_plane_factory: Any, seen: list[events.CloudEvent]
) -> None:
    await control_plane_factory()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env["LATTICE_HEARTBEAT"] = str(settings.heartbeat_s)  # health events at this cadence: a loss is seen fast
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lattice", "provider", "numbergen", "--nats-url", settings.nats_url),
        *("--lattice", settings.lattice, "--cluster-seed", settings.cluster_seed or ""),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for(lambda: any(e.name == events.HEALTH_CHECK_PASSED for e in seen), timeout=30)
        assert not stopped(seen)
        proc.kill()  # no chance to say goodbye
        await proc.wait()
        [data] = await wait_for(lambda: stopped(seen), timeout=20)
        assert {k: data[k] for k in SHAPE} == SHAPE
        assert "health checks stopped" in data["reason"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
