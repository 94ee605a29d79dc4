"""Issue 17, findings 1–4: a client with NATS access but without the cluster seed, against real hosts.

Each test is one attack, played by a plain nats.py client on the test's nats-server; the host and its
actors are real. What must hold: the attacker changes nothing, and a member's own traffic still works.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from lattice import claims, keys, seal, subjects
from lattice.connection import key_value, object_store, settle
from lattice.errors import ClaimsError
from lattice.messages import Entity, Invocation, InvocationResponse, LinkDefinition
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host import guests
from tests.host.test_host import command, write


@pytest.fixture
async def attacker(settings: Settings) -> Any:
    """A NATS client with full NATS access and no cluster seed."""
    nc = await nats.connect(settings.nats_url)
    yield nc
    await nc.close()


async def raw_command(nc: NATS, host: Any, cmd: str, body: dict[str, Any]) -> dict[str, Any]:
    subject = subjects.ctl_cmd(host.settings.lattice, host.id, cmd)
    reply: dict[str, Any] = json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=10)).data)
    return reply


# --- 1. the control interface -------------------------------------------------------------------


async def test_unsealed_launch_with_file_image_and_root_grant_is_refused(
    host_factory: Any, attacker: NATS, tmp_path: Path
) -> None:
    host = await host_factory()
    image = write(tmp_path, "echo.wasm", guests.ECHO)
    body = {"actor_ref": image, "count": 1, "properties": {"wasi": {"dirs": {"/": "/"}}}}
    for cmd in ("la", "scale"):
        reply = await raw_command(attacker, host, cmd, body)
        assert not reply["accepted"] and "not sealed" in reply["error"], reply
    assert host.actors == {}


async def test_unsealed_stop_commands_neither_stop_actors_nor_the_host(
    host_factory: Any, attacker: NATS, tmp_path: Path
) -> None:
    host = await host_factory()
    actor_id = (await command(host, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]
    assert not (await raw_command(attacker, host, "sa", {"actor_id": actor_id}))["accepted"]
    assert not (await raw_command(attacker, host, "scale", {"actor_id": actor_id, "count": 0}))["accepted"]
    assert not (await raw_command(attacker, host, "stop", {}))["accepted"]
    assert not (await raw_command(attacker, host, "lp", {"provider_ref": "builtin:httpserver"}))["accepted"]
    assert actor_id in host.actors and host.providers == {}
    assert await host.invoke(actor_id, "Echo.Echo", b"still here") == b"still here"


async def test_replayed_sealed_command_is_refused(host_factory: Any, attacker: NATS, tmp_path: Path) -> None:
    host = await host_factory()
    subject = subjects.ctl_cmd(host.settings.lattice, host.id, "la")
    body = json.dumps({"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}).encode()
    headers = host.rpc.sealer.headers(subject, body)  # a member's command, captured on the wire
    first = json.loads((await attacker.request(subject, body, timeout=10, headers=headers)).data)
    again = json.loads((await attacker.request(subject, body, timeout=10, headers=headers)).data)
    assert first["accepted"], first
    assert not again["accepted"] and "replay" in again["error"]
    assert sum(a.count for a in host.actors.values()) == 1
    other = subjects.ctl_cmd(host.settings.lattice, host.id, "stop")  # the seal is bound to its subject
    moved = json.loads((await attacker.request(other, body, timeout=10, headers=headers)).data)
    assert not moved["accepted"] and "does not verify" in moved["error"]


async def test_sealed_command_cannot_make_a_host_read_files_outside_its_files_root(
    host_factory: Any, tmp_path: Path
) -> None:
    closed = await host_factory(files_root=None)
    reply = await command(closed, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1})
    assert not reply["accepted"] and "reads no file:// images" in reply["error"]
    rooted = await host_factory(files_root=tmp_path / "images")
    reply = await command(rooted, "scale", {"actor_ref": "file:///etc/hostname", "count": 1})
    assert not reply["accepted"] and "outside this host's files root" in reply["error"]
    assert closed.actors == {} and rooted.actors == {}


async def test_sealed_command_cannot_grant_directories_outside_allow_dir(host_factory: Any, tmp_path: Path) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    host = await host_factory(allow_dirs=(allowed,))
    image = write(tmp_path, "e.wasm", guests.ECHO)
    for grant in ("/", "/etc", str(allowed / ".." / "..")):
        properties = {"wasi": {"dirs": {"/": grant}}}
        reply = await command(host, "scale", {"actor_ref": image, "count": 1, "properties": properties})
        assert not reply["accepted"] and "not under a directory this host allows" in reply["error"], grant
    granted = {"wasi": {"dirs": {"/data": str(allowed)}}}
    assert (await command(host, "scale", {"actor_ref": image, "count": 1, "properties": granted}))["accepted"]


async def test_actor_signed_by_a_fresh_account_is_refused_without_trusted_issuers(
    host_factory: Any, tmp_path: Path
) -> None:
    host = await host_factory(allow_unsigned=False, allow_any_issuer=False)
    wasm = claims.sign_actor(guests.ECHO, keys.generate("account"), name="intruder", caps=[])
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "s.wasm", wasm), "count": 1})
    assert not reply["accepted"] and "trusts no issuer" in reply["error"] and "--trusted-issuers" in reply["error"]


async def test_link_written_straight_into_latticedata_is_ignored(
    host_factory: Any, attacker: NATS, settings: Settings
) -> None:
    host = await host_factory()
    kv = await key_value(attacker.jetstream(), subjects.latticedata_bucket(settings.lattice))
    actor = "M" + "A" * 55
    forged = LinkDefinition(actor, "V" + "B" * 55, "wasmcloud:httpserver", values={"port": "1"})
    await kv.put(forged.key, json.dumps(forged.to_dict()).encode())
    await kv.put("CLAIMS_" + actor, json.dumps({"call_alias": "bank/ledger"}).encode())
    genuine = LinkDefinition(actor, "V" + "C" * 55, "wasmcloud:keyvalue")
    await host.data.put_link(genuine)  # entries arrive in order: once this is seen, the forgeries were too
    await wait_for(lambda: host.data.link_for(actor, "wasmcloud:keyvalue", "default"))
    assert host.data.link_for(actor, "wasmcloud:httpserver", "default") is None
    assert host.data.resolve_actor("bank/ledger") is None


def test_link_keys_are_unambiguous() -> None:
    actor, provider = "M" + "A" * 55, "V" + "B" * 55
    one = LinkDefinition(actor, provider, "a:b_c", link_name="x")
    other = LinkDefinition(actor, provider, "a_b:c", link_name="x")
    split = LinkDefinition(actor, provider, "a:b", link_name="c_x")
    assert len({one.key, other.key, split.key}) == 3


# --- 2. responses ---------------------------------------------------------------------------------


async def test_client_in_an_actors_queue_group_cannot_answer_for_it(
    host_factory: Any, attacker: NATS, tmp_path: Path
) -> None:
    serving, calling = await host_factory(), await host_factory()
    actor_id = (await command(serving, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]

    async def forge(msg: Any) -> None:
        inv = Invocation.from_msgpack(msg.data)
        await msg.respond(InvocationResponse(inv.id, msg=b"forged").to_msgpack())

    await attacker.subscribe(subjects.actor_rpc(serving.settings.lattice, actor_id), queue=actor_id, cb=forge)
    await settle(attacker)
    answers: list[bytes] = []
    refused = 0
    for i in range(20):
        try:
            answers.append(await calling.invoke(actor_id, "Echo.Echo", f"call {i}".encode()))
        except ClaimsError:
            refused += 1
    assert b"forged" not in answers
    assert refused > 0  # the attacker did get some calls; their answers were dropped
    assert all(a.startswith(b"call ") for a in answers)


# --- 3. replay ------------------------------------------------------------------------------------


async def test_replayed_invocation_is_applied_once(host_factory: Any, attacker: NATS, tmp_path: Path) -> None:
    host = await host_factory()
    actor_id = (await command(host, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]
    captured = host.rpc.sign(Invocation(Entity(host.id), Entity(actor_id), "Echo.Echo", b"pay 100")).to_msgpack()
    subject = subjects.actor_rpc(host.settings.lattice, actor_id)
    replies = [
        InvocationResponse.from_msgpack((await attacker.request(subject, captured, timeout=5)).data) for _ in range(5)
    ]
    assert [r.msg for r in replies if not r.error] == [b"pay 100"]
    assert all("replay refused" in r.error for r in replies[1:]), replies
    assert host.actors[actor_id].pool.calls == 1


async def test_stale_invocation_is_refused(host_factory: Any, attacker: NATS, tmp_path: Path) -> None:
    host = await host_factory()
    actor_id = (await command(host, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]
    origin_url, target_url = claims.actor_url(host.id), claims.actor_url(actor_id)
    old = {
        "jti": uuid.uuid4().hex,
        "iat": int(time.time()) - 3600,
        "iss": host.cluster_key.public_key,
        "sub": host.id,
        "wascap": {
            "target_url": f"{target_url}/Echo.Echo",
            "origin_url": origin_url,
            "hash": claims.invocation_hash(origin_url, target_url, "Echo.Echo", b"x"),
        },
    }
    token = claims._encode_jwt(old, host.cluster_key)
    inv = Invocation(Entity(host.id), Entity(actor_id), "Echo.Echo", b"x", encoded_claims=token)
    reply = InvocationResponse.from_msgpack(
        (await attacker.request(subjects.actor_rpc("test", actor_id), inv.to_msgpack(), timeout=5)).data
    )
    assert "expired" in reply.error and host.actors[actor_id].pool.calls == 0


# --- 4. work before verification ------------------------------------------------------------------


async def test_unsigned_invocation_with_large_content_length_fetches_nothing(
    host_factory: Any, attacker: NATS, tmp_path: Path, settings: Settings
) -> None:
    host = await host_factory()
    actor_id = (await command(host, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]
    store = await object_store(attacker.jetstream(), subjects.payloads_bucket(settings.lattice))
    size = 2 * 1024 * 1024
    subject = subjects.actor_rpc(settings.lattice, actor_id)
    # unsigned, then signed but larger than the actor's payload limit: neither may touch the store
    unsigned = Invocation(Entity("M" + "Z" * 55), Entity(actor_id), "Echo.Echo", b"", id="bait-1", content_length=size)
    oversized = host.rpc.sign(Invocation(Entity(host.id), Entity(actor_id), "Echo.Echo", b"", id="bait-2"))
    limit = host.actors[actor_id].pool.limits.max_payload_bytes
    oversized = Invocation(
        oversized.origin,
        oversized.target,
        oversized.operation,
        b"",
        id="bait-2",
        encoded_claims=oversized.encoded_claims,
        content_length=limit + 1,
    )
    for inv in (unsigned, oversized):
        await store.put(inv.id, b"\0" * size)
        reply = InvocationResponse.from_msgpack((await attacker.request(subject, inv.to_msgpack(), timeout=10)).data)
        assert reply.error, reply
        info = await store.get_info(inv.id)  # still there: the host neither fetched nor deleted it
        assert info.size == size
    assert "over the limit" in reply.error


async def test_unsealed_provider_linkdefs_and_shutdown_are_refused(settings: Settings, attacker: NATS) -> None:
    from lattice.messages import pack, unpack
    from lattice.providers.sdk.runner import ProviderRunner
    from tests.providers.test_provider_sdk import Probe, actor_id, probe_link

    async with ProviderRunner(Probe(), settings) as runner:
        link = probe_link(actor_id())
        put = subjects.provider_linkdefs(settings.lattice, Probe.builtin_id(), "default", "put")
        reply = unpack((await attacker.request(put, pack(link.to_dict()), timeout=5)).data)
        assert not reply["accepted"] and "not sealed" in reply["error"]
        shutdown = subjects.provider_shutdown(settings.lattice, Probe.builtin_id(), "default")
        reply = unpack((await attacker.request(shutdown, pack({}), timeout=5)).data)
        assert not reply["accepted"]
        assert runner.provider.links == {} and not runner.stopping.is_set()
        sealer = seal.Sealer(keys.from_seed(settings.cluster_seed or ""))
        assert unpack((await seal.request(attacker, sealer, put, pack(link.to_dict()), timeout=5)).data)["accepted"]
