"""While the control plane cannot reach NATS: /healthz is 503 and the CLI says the lattice is
unreachable, instead of an empty table (issue 13, item 5)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

from lattice.cli.natsserver import NatsServer
from tests.conftest import wait_for


async def test_healthz_is_503_and_the_cli_says_unreachable_while_nats_is_down(
    nats_server: NatsServer, control_plane_factory: Any
) -> None:
    cp, client = await control_plane_factory()
    assert (await client.get("/healthz")).status_code == 200
    nats_server.stop()
    await wait_for(lambda: not cp.nc.is_connected)
    health = await client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable" and health.json()["nats"] is False
    hosts = await client.get("/v1/hosts")
    assert hosts.status_code == 503 and "the lattice is unreachable" in hosts.json()["detail"]
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "lattice", "get", "hosts", "--api-url", f"http://{cp.listen}"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "300", "PATH": ""},
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "the lattice is unreachable" in cli.stdout + cli.stderr
    await asyncio.to_thread(nats_server.start)  # same port, same store; the fixture stops it
    await wait_for(lambda: cp.nc.is_connected, timeout=30)
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/v1/hosts")).status_code == 200
