"""Application versions are immutable and what runs is what was stored (issue 13, items 2 and 3)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import wait_for
from tests.control.test_api import _is, manifest, status, upload
from tests.host import guests


async def test_delete_then_reapply_of_the_same_version_deploys_the_new_content(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = await upload(client, guests.ECHO)
    actor = art["actor_id"]

    def running() -> int:
        return host.actors[actor].count if actor in host.actors else 0

    assert (await client.put("/v1/applications/echo", content=manifest("echo", art["digest"], 1))).status_code == 200
    await wait_for(lambda: running() == 1)
    assert (await client.delete("/v1/applications/echo")).status_code == 200
    await wait_for(lambda: running() == 0)
    again = await client.put("/v1/applications/echo", content=manifest("echo", art["digest"], 3))
    assert again.status_code == 200, again.text
    await wait_for(lambda: running() == 3)
    await wait_for(lambda: _is(client, "echo", "deployed"))
    component = (await status(client, "echo"))["status"]["components"][0]
    assert (component["desired"], component["running"]) == (3, 3)


async def test_ten_concurrent_puts_of_one_version_store_exactly_one_content(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    art = await upload(client, guests.ECHO)
    bodies = [manifest("race", art["digest"], replicas) for replicas in range(1, 11)]
    responses = await asyncio.gather(*(client.put("/v1/applications/race", content=b) for b in bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 9, [r.text[:200] for r in responses]
    winner = next(b for b, r in zip(bodies, responses, strict=True) if r.status_code == 200)
    stored = await status(client, "race")
    assert stored["manifest"] == winner
    loser = next(r for r in responses if r.status_code == 409).json()["detail"]
    assert loser["field"] == "metadata.annotations.version"
    assert loser["error"].count("metadata.annotations.version") == 1, loser["error"]  # said once (item 7)
    # the same content again is no conflict: a retry of the winner is a 200
    assert (await client.put("/v1/applications/race", content=winner)).status_code == 200
