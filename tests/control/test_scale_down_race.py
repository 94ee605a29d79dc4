"""No call lost during scale-down (SPEC §5): a call that reaches a host just as the actor's last instance there
stops is answered ``no_responders`` (nothing ran), and the caller tries again — another instance, or one the
control plane starts (held while it does). Deterministic halves on real NATS and a real pool, and the whole
on a real host and control plane."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import nats
import pytest

from lattice import keys, subjects
from lattice.connection import settle
from lattice.errors import NoResponders
from lattice.host.pool import ActorPool
from lattice.host.runtime import Runtime
from lattice.messages import Entity
from lattice.rpc import Rpc
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host import guests

ACTOR = "M" + "A" * 55
ORIGIN = Entity("V" + "B" * 55, "wasmcloud:httpserver", "default")


def test_a_closed_pool_answers_no_responders_without_running_the_call(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO))
    pool.close()
    with pytest.raises(NoResponders) as caught:
        pool.call("Echo", b"x")
    assert caught.value.kind == "no_responders" and "stopped" in str(caught.value)


async def test_a_call_answered_no_responders_by_a_stopping_instance_is_retried(settings: Settings) -> None:
    cluster = keys.from_seed(settings.cluster_seed or "")
    nc_callee, nc_caller = await nats.connect(settings.nats_url), await nats.connect(settings.nats_url)
    try:
        callee = Rpc(nc_callee, lattice=settings.lattice, cluster_key=cluster, sender_id="NCALLEE")
        caller = Rpc(nc_caller, lattice=settings.lattice, cluster_key=cluster, sender_id="NCALLER")
        target = Entity(ACTOR)
        answers: list[bytes | Exception] = [NoResponders("actor stopped on host N as the call came"), b"served"]

        async def serve(msg: nats.aio.msg.Msg) -> None:
            inv = await callee.receive(msg.data, target=target)
            answer = answers.pop(0) if answers else NoResponders("gone")
            await callee.answer(msg.reply, inv.id, answer, responder=target)

        await nc_callee.subscribe(subjects.actor_rpc(settings.lattice, ACTOR), cb=serve)
        await settle(nc_callee)
        assert await caller.invoke(ORIGIN, target, "Op.Do", b"") == b"served"
        # nobody serves it at all (and no control plane knows it as elastic): it fails, it does not hang
        with pytest.raises(NoResponders):
            await caller.invoke(ORIGIN, target, "Op.Do", b"")
    finally:
        await asyncio.gather(nc_callee.close(), nc_caller.close())


def manifest(digest: str) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: racy, annotations: {{version: v1}}}}
spec:
  components:
    - name: echo
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: spreadscaler
          properties: {{min_replicas: 0, max_replicas: 2, idle_timeout_s: 600}}
"""


async def test_calls_racing_the_stop_of_the_last_instance_are_all_answered(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    uploaded = (await client.post("/v1/artifacts", content=guests.ECHO)).json()
    actor_id = uploaded["actor_id"]
    assert (await client.put("/v1/applications/racy", content=manifest(uploaded["digest"]))).status_code == 200
    await wait_for(lambda: actor_id in host.actors, timeout=30)
    body = {"operation": "Echo.Call", "payload_b64": base64.b64encode(b"ping").decode()}

    async def call() -> tuple[int, str]:
        response = await client.post(f"/v1/actors/{actor_id}/invoke", json=body, timeout=30)
        return response.status_code, "" if response.status_code == 200 else response.text

    async def stop_midway() -> None:
        await asyncio.sleep(0.05)
        await host.stop_actor(actor_id, None, 0)  # the last instance stops while calls keep coming

    for _ in range(3):  # three rounds: the stop lands among calls queued, in flight, and on their way
        await wait_for(lambda: actor_id in host.actors, timeout=30)
        answers = await asyncio.gather(*(call() for _ in range(60)), stop_midway())
        failed = [answer for answer in answers[:-1] if answer and answer[0] != 200]
        assert failed == []
