"""Event-driven actors on three hosts (issue: NATS messaging, blobs, scheduled triggers), deployed by their
manifests through the control plane: the Python ``pyevents`` component consumes a subject with a queue group
spread over every host (each message handled once), transforms blobs, and runs on a schedule once per tick
lattice-wide. Real nats-server, real hosts, real wasmtime."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml

from lattice.actors import build
from lattice.settings import Settings
from tests.conftest import wait_for

PYEVENTS = Path(build.ACTORS_DIR) / "pyevents"


@pytest.fixture(scope="module")
def pyevents() -> bytes:
    return build.component_wasm("pyevents").read_bytes()


async def deploy(client: httpx.AsyncClient, wasm: bytes, manifest: str, **link_values: str) -> str:
    """Upload the actor, apply ``manifest`` with its image pointing at the upload; the actor id once deployed."""
    uploaded = await client.post("/v1/artifacts", content=wasm, headers={"content-type": "application/wasm"})
    assert uploaded.status_code == 201, uploaded.text
    doc = yaml.safe_load((PYEVENTS / manifest).read_text())
    actor = doc["spec"]["components"][0]
    actor["properties"]["image"] = uploaded.json()["digest"]
    actor["traits"][1]["properties"]["values"].update(link_values)
    name = doc["metadata"]["name"]
    assert (await client.put(f"/v1/applications/{name}", content=yaml.safe_dump(doc))).status_code == 200

    async def deployed() -> bool:
        return bool((await client.get(f"/v1/applications/{name}")).json()["status"]["type"] == "deployed")

    await wait_for(deployed, timeout=90)
    return str(uploaded.json()["actor_id"])


async def counter(client: httpx.AsyncClient, actor_id: str, key: str) -> int:
    body = {"operation": "Events.Count", "payload_b64": base64.b64encode(key.encode()).decode()}
    answer = await client.post(f"/v1/actors/{actor_id}/invoke", json=body)
    assert answer.status_code == 200, answer.text
    return int(base64.b64decode(answer.json()["payload_b64"]))


@pytest.fixture
async def lattice(host_factory: Any, control_plane_factory: Any) -> tuple[list[Any], httpx.AsyncClient]:
    hosts = [await host_factory() for _ in range(3)]
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 3)
    client.timeout = httpx.Timeout(120)
    return hosts, client


async def test_queue_group_over_three_hosts_handles_each_message_once(
    lattice: tuple[list[Any], httpx.AsyncClient], pyevents: bytes, settings: Settings
) -> None:
    hosts, client = lattice
    actor_id = await deploy(client, pyevents, "queue.yaml")
    nc = await nats.connect(settings.nats_url)
    try:
        replies = await asyncio.gather(
            *(nc.request(f"orders.{i % 3}", f"o{i}".encode(), timeout=30) for i in range(30))
        )
    finally:
        await nc.close()
    assert sorted(r.data for r in replies) == sorted(f"handled o{i}".encode() for i in range(30))
    counts = [await counter(client, actor_id, f"orders:o{i}") for i in range(30)]
    assert counts == [1] * 30  # once each, although every host subscribed
    busy = [h for h in hosts if actor_id in h.actors and h.actors[actor_id].pool.calls > 0]
    assert len(busy) >= 2  # NATS spread the queue group over the hosts


async def test_blobs_are_transformed_by_a_message(
    lattice: tuple[list[Any], httpx.AsyncClient], pyevents: bytes, settings: Settings
) -> None:
    _, client = lattice
    await deploy(client, pyevents, "blobs.yaml")
    nc = await nats.connect(settings.nats_url)
    try:
        inbox = await nc.jetstream().create_object_store("BLOB_inbox")  # the inbox container (BUCKET_PREFIX BLOB_)
        await inbox.put("note.txt", b"quiet words")
        answer = await nc.request("blobs.transform", b"note.txt", timeout=30)
        assert answer.data == b"handled note.txt"
        outbox = await nc.jetstream().object_store("BLOB_outbox")
        assert (await outbox.get("note.txt")).data == b"QUIET WORDS"
    finally:
        await nc.close()


async def test_cron_fires_once_per_tick_across_three_hosts(
    lattice: tuple[list[Any], httpx.AsyncClient], pyevents: bytes
) -> None:
    _, client = lattice
    actor_id = await deploy(client, pyevents, "cron.yaml", SCHEDULE="* * * * * *")  # every second
    start = time.monotonic()
    await wait_for(lambda: counter(client, actor_id, "ticks"), timeout=30)
    await asyncio.sleep(3)  # three seconds' worth of ticks: a tick fired by each host would show now

    async def ticked_thrice() -> bool:  # a loaded machine may fire late, never more often
        return await counter(client, actor_id, "ticks") >= 3

    await wait_for(ticked_thrice, timeout=60)
    ticks = await counter(client, actor_id, "ticks")
    elapsed = time.monotonic() - start
    assert ticks <= elapsed + 2  # a cron provider on each of the 3 hosts, yet one call per second
