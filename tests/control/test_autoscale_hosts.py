"""Autoscaling on load with real hosts (SPEC §5): two `lattice host` processes, a real nats-server and the
control plane; an actor whose calls spin tens of milliseconds is called by several clients at once until its replicas
reach `max_replicas`, then the load stops and, after the scale-down cooldown (2 s here, through
`scale_down_cooldown_s` / LATTICE_SCALE_DOWN_COOLDOWN_S), they come back to `min_replicas`. Only conditions
are waited for, with generous bounds; how long it took is not asserted (that is `python -m bench`'s)."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host import guests

pytestmark = pytest.mark.timeout(300)

# Spins tens of milliseconds, then echoes: the time calls spend in the host is what the hosts report, and it
# must outweigh the API and NATS round trip of each call (or the actor is not where the time goes).
SPINS = guests.guest(
    """(local.set $op_len (i32.const 40000000))
    (loop $spin
      (local.set $op_len (i32.sub (local.get $op_len) (i32.const 1)))
      (br_if $spin (local.get $op_len)))
    (call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)"""
)


@pytest.fixture
def host_processes(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "LATTICE_NATS_URL": settings.nats_url,
        "LATTICE_NAME": settings.lattice,
        "LATTICE_CLUSTER_SEED": settings.cluster_seed or "",
        "LATTICE_ALLOW_UNSIGNED": "1",
        "LATTICE_ALLOW_ANY_ISSUER": "1",
        "LATTICE_HEARTBEAT": "0.5",
        "COLUMNS": "300",
    }
    procs = []
    for i in range(2):
        log = (tmp_path / f"host{i}.log").open("wb")
        host_env = {**env, "LATTICE_STATE_DIR": str(tmp_path / f"host{i}")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "lattice", "host"], env=host_env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        log.close()
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def manifest(digest: str) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: elastic, annotations: {{version: v1}}}}
spec:
  components:
    - name: spin
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: spreadscaler
          properties: {{min_replicas: 1, max_replicas: 4, target_in_flight: 1, idle_timeout_s: 600}}
"""


async def replicas(client: httpx.AsyncClient) -> tuple[int, int]:
    status = (await client.get("/v1/applications/elastic")).json()["status"]
    spin = next(c for c in status["components"] if c["name"] == "spin")
    return spin["desired"], spin["running"]


async def test_load_pushes_replicas_up_to_max_and_they_come_back_down_after_the_cooldown(
    host_processes: list[subprocess.Popen[bytes]], control_plane_factory: Any
) -> None:
    cp, client = await control_plane_factory(scale_down_cooldown_s=2.0, rpc_timeout_s=30.0)
    await wait_for(lambda: len(cp.hosts()) == 2, timeout=60)
    uploaded = (await client.post("/v1/artifacts", content=SPINS)).json()
    assert (await client.put("/v1/applications/elastic", content=manifest(uploaded["digest"]))).status_code == 200
    await wait_for(lambda: _is(client, (1, 1)), timeout=60)

    stop, answered, failed = asyncio.Event(), [0], []
    body = {"operation": "Spin.Call", "payload_b64": base64.b64encode(b"ping").decode()}

    async def caller() -> None:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
            while not stop.is_set():
                response = await http.post(f"/v1/actors/{uploaded['actor_id']}/invoke", json=body)
                if response.status_code == 200:
                    answered[0] += 1
                else:
                    failed.append(response.status_code)

    callers = [asyncio.create_task(caller()) for _ in range(12)]
    try:
        await wait_for(lambda: _is(client, (4, 4)), timeout=120, interval=0.2)  # up: replicas meet max
    finally:
        stop.set()
        await asyncio.gather(*callers)
    assert failed == [] and answered[0] > 0
    placements = (await client.get("/v1/applications/elastic")).json()["status"]["components"][0]["placements"]
    assert sum(p["count"] for p in placements) == 4
    await wait_for(lambda: _is(client, (1, 1)), timeout=120, interval=0.2)  # down: back to min after the cooldown
    assert all(proc.poll() is None for proc in host_processes)


async def _is(client: httpx.AsyncClient, wanted: tuple[int, int]) -> bool:
    return await replicas(client) == wanted
