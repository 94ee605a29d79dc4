"""The provider SDK: hooks, link bookkeeping, and the standalone runner's NATS plumbing (SPEC §4)."""

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

from lattice import claims, events, keys, seal, subjects
from lattice.capability import builtin_provider_id
from lattice.connection import key_value, settle
from lattice.errors import ConfigError, InvocationError, NoResponders, ProviderError, RemoteError, Unreachable
from lattice.links import sealed_entry
from lattice.messages import Entity, Invocation, InvocationResponse, LinkDefinition, pack, unpack
from lattice.providers.keyvalue import KeyValueProvider
from lattice.providers.sdk import Provider, operation
from lattice.providers.sdk.runner import NatsProviderContext, ProviderRunner, run_standalone
from lattice.rpc import Rpc
from lattice.settings import Settings
from tests.conftest import answer_sealed, sealer, wait_for
from tests.providers.conftest import actor_id

CONTRACT = "lattice:test:probe"


class Probe(Provider):
    name = "probe"
    contract_id = CONTRACT

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.healthy = True
        self.hook_calls: list[tuple[str, str]] = []

    @operation("Probe.Echo")
    async def echo(self, actor_id: str, args: Any) -> Any:
        return {"actor": actor_id, "args": args}

    @operation("Probe.Slow")
    async def slow(self, actor_id: str, args: Any) -> str:
        self.entered.set()
        await self.gate.wait()
        return "done"

    @operation("Probe.Crash")
    async def crash(self, actor_id: str, args: Any) -> None:
        raise RuntimeError("boom")

    async def on_link_put(self, link: LinkDefinition) -> None:
        if link.values.get("refuse"):
            raise ProviderError(f"probe refuses link from {link.actor_id}: {link.values['refuse']}")
        self.hook_calls.append(("put", link.values.get("v", "")))

    async def on_link_del(self, link: LinkDefinition) -> None:
        self.hook_calls.append(("del", link.values.get("v", "")))

    async def health(self) -> tuple[bool, str]:
        return self.healthy, "probe ok" if self.healthy else "probe sick"


def probe_link(
    actor: str, *, provider_id: str | None = None, link_name: str = "default", **values: str
) -> LinkDefinition:
    return LinkDefinition(actor, provider_id or Probe.builtin_id(), CONTRACT, link_name, values)


class Events:
    """Collects the lattice's CloudEvents."""

    def __init__(self) -> None:
        self.seen: list[events.CloudEvent] = []

    async def cb(self, msg: Msg) -> None:
        event = events.parse(msg.data)
        if event is not None:
            self.seen.append(event)

    def named(self, name: str) -> list[events.CloudEvent]:
        return [e for e in self.seen if e.name == name]


@pytest.fixture
async def lattice_events(nc: NATS, settings: Settings) -> AsyncIterator[Events]:
    collected = Events()
    sub = await nc.subscribe(subjects.events(settings.lattice), cb=collected.cb)
    await settle(nc)
    yield collected
    await sub.unsubscribe()


def signed(
    settings: Settings, actor: str, operation: str, msg: bytes, *, cluster: keys.KeyPair | None = None
) -> Invocation:
    cluster = cluster or keys.from_seed(settings.cluster_seed or "")
    pid = Probe.builtin_id()
    encoded = claims.sign_invocation(
        cluster,
        origin_url=claims.actor_url(actor),
        target_url=claims.provider_url(CONTRACT, "default", pid),
        operation=operation,
        msg=msg,
        host_id="NTEST",
    )
    return Invocation(Entity(actor), Entity(pid, CONTRACT, "default"), operation, msg, encoded_claims=encoded)


async def rpc(nc: NATS, settings: Settings, data: bytes) -> InvocationResponse:
    subject = subjects.provider_rpc(settings.lattice, Probe.builtin_id(), "default")
    return InvocationResponse.from_msgpack((await nc.request(subject, data, timeout=10)).data)


# --- the base class ---------------------------------------------------------------------------------


def test_builtin_provider_ids_are_stable_service_keys() -> None:
    pid = builtin_provider_id("httpserver")
    assert (
        pid
        == builtin_provider_id("httpserver")
        == keys.deterministic_keypair("service", "builtin:httpserver").public_key
    )
    assert keys.is_public_key(pid, "V")
    assert pid != builtin_provider_id("keyvalue") == KeyValueProvider.builtin_id()


async def test_hooks_default_to_nothing_and_unknown_operations_are_errors() -> None:
    base = Provider()
    assert await base.health() == (True, "healthy")
    link = LinkDefinition(actor_id(), "V", "x:y")
    assert await base.put_link(link) is True
    assert base.links == {link.actor_id: link}
    assert await base.del_link(link) is True and base.links == {}
    await base.shutdown()
    with pytest.raises(InvocationError, match=r"has no operation 'Nope.Nope'"):
        await base.handle("M", "Nope.Nope", b"")
    with pytest.raises(ProviderError, match="before init"):
        base.ctx  # noqa: B018


async def test_link_bookkeeping_is_idempotent_and_replaces_changed_values() -> None:
    probe = Probe()
    a = actor_id()
    assert await probe.put_link(probe_link(a, v="1")) is True
    assert await probe.put_link(probe_link(a, v="1")) is False
    assert await probe.put_link(probe_link(a, v="2")) is True
    assert probe.links[a].values == {"v": "2"}
    assert probe.hook_calls == [("put", "1"), ("del", "1"), ("put", "2")]
    with pytest.raises(ProviderError, match=f"probe refuses link from {a}"):
        await probe.put_link(probe_link(a, refuse="no"))
    assert a not in probe.links
    assert await probe.del_link(probe_link(a)) is False


async def test_handler_errors_name_contract_and_operation() -> None:
    probe = Probe()
    assert unpack(await probe.handle("MA", "Probe.Echo", pack([1, "x"]))) == {"actor": "MA", "args": [1, "x"]}
    assert unpack(await probe.handle("MA", "Probe.Echo", b"")) == {"actor": "MA", "args": None}
    with pytest.raises(ProviderError, match=r"lattice:test:probe Probe.Crash failed: RuntimeError: boom"):
        await probe.handle("MA", "Probe.Crash", b"")


# --- the runner -------------------------------------------------------------------------------------


async def test_runner_loads_existing_links_then_follows_latticedata(settings: Settings, nc: NATS) -> None:
    kv = await key_value(nc.jetstream(), subjects.latticedata_bucket(settings.lattice))
    early, late = actor_id(), actor_id()

    async def put(link: LinkDefinition) -> None:
        await kv.put(link.key, sealed_entry(sealer(settings), link.key, link.to_dict()))

    await put(probe_link(early))
    await put(probe_link(actor_id(), provider_id=builtin_provider_id("other")))
    await put(probe_link(actor_id(), link_name="other"))
    await kv.put("CLAIMS_MXYZ", sealed_entry(sealer(settings), "CLAIMS_MXYZ", {}))
    probe = Probe()
    async with ProviderRunner(probe, settings):
        assert set(probe.links) == {early}
        await put(probe_link(late, v="1"))
        await wait_for(lambda: probe.links.get(late) == probe_link(late, v="1"))
        await put(probe_link(late, v="2"))
        await wait_for(lambda: probe.links.get(late) == probe_link(late, v="2"))
        await kv.delete(probe_link(late).key)
        await wait_for(lambda: late not in probe.links)
        await put(probe_link(early, provider_id=builtin_provider_id("other")))  # moved to another provider
        await wait_for(lambda: early not in probe.links)
    assert probe.hook_calls[-1] == ("del", "")


async def test_linkdef_subjects_put_del_and_refusals_become_events(
    settings: Settings, nc: NATS, lattice_events: Events
) -> None:
    probe = Probe()
    a, b = actor_id(), actor_id()

    async def linkdef(action: str, link: LinkDefinition) -> Any:
        subject = subjects.provider_linkdefs(settings.lattice, Probe.builtin_id(), "default", action)
        return unpack((await seal.request(nc, sealer(settings), subject, pack(link.to_dict()), timeout=10)).data)

    async with ProviderRunner(probe, settings):
        assert await linkdef("put", probe_link(a)) == {"accepted": True, "error": ""}
        assert a in probe.links
        refused = await linkdef("put", probe_link(b, refuse="bad port"))
        assert refused["accepted"] is False and "probe refuses link" in refused["error"]
        assert b not in probe.links
        await wait_for(lambda: lattice_events.named(events.LINKDEF_SET_FAILED))
        failed = lattice_events.named(events.LINKDEF_SET_FAILED)[0]
        assert failed.data["actor_id"] == b and "bad port" in failed.data["error"]
        assert await linkdef("del", probe_link(a)) == {"accepted": True, "error": ""}
        assert probe.links == {}
        # still serving after the refusal
        resp = await rpc(nc, settings, signed(settings, a, "Probe.Echo", pack("hi")).to_msgpack())
        assert unpack(resp.msg) == {"actor": a, "args": "hi"}


async def test_health_requests_and_periodic_health_events(settings: Settings, nc: NATS, lattice_events: Events) -> None:
    probe = Probe()
    subject = subjects.provider_health(settings.lattice, Probe.builtin_id(), "default")
    async with ProviderRunner(probe, settings, health_interval_s=0.05):
        reply = unpack((await nc.request(subject, pack({"placeholder": True}), timeout=10)).data)
        assert reply == {"healthy": True, "message": "probe ok"}
        await wait_for(lambda: lattice_events.named(events.HEALTH_CHECK_PASSED))
        probe.healthy = False
        reply = unpack((await nc.request(subject, pack({"placeholder": True}), timeout=10)).data)
        assert reply == {"healthy": False, "message": "probe sick"}
        await wait_for(lambda: lattice_events.named(events.HEALTH_CHECK_FAILED))
    passed = lattice_events.named(events.HEALTH_CHECK_PASSED)[0]
    assert passed.source == Probe.builtin_id()
    assert passed.data["public_key"] == Probe.builtin_id() and passed.data["contract_id"] == CONTRACT


async def test_started_stopped_events_and_shutdown_request(
    settings: Settings, nc: NATS, lattice_events: Events
) -> None:
    task = asyncio.create_task(run_standalone(Probe(), settings))
    try:
        await wait_for(lambda: lattice_events.named(events.PROVIDER_STARTED))
        subject = subjects.provider_shutdown(settings.lattice, Probe.builtin_id(), "default")
        await seal.request(nc, sealer(settings), subject, pack({"host_id": "N"}), timeout=10)
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
    await wait_for(lambda: lattice_events.named(events.PROVIDER_STOPPED))
    started = lattice_events.named(events.PROVIDER_STARTED)[0]
    assert started.data == {
        "public_key": Probe.builtin_id(),
        "link_name": "default",
        "contract_id": CONTRACT,
        "name": "probe",
    }


async def test_every_invocation_gets_an_answer(settings: Settings, nc: NATS) -> None:
    a = actor_id()
    async with ProviderRunner(Probe(), settings):
        resp = await rpc(nc, settings, b"\xc1 not msgpack")
        assert resp.error and "malformed" in resp.error
        resp = await rpc(nc, settings, signed(settings, a, "Probe.Crash", b"").to_msgpack())
        assert resp.error == "lattice:test:probe Probe.Crash failed: RuntimeError: boom"
        resp = await rpc(nc, settings, signed(settings, a, "Probe.Missing", b"").to_msgpack())
        assert resp.error and "has no operation 'Probe.Missing'" in resp.error
        results = await asyncio.gather(
            *(rpc(nc, settings, signed(settings, a, "Probe.Echo", pack(i)).to_msgpack()) for i in range(50))
        )
        assert [unpack(r.msg)["args"] for r in results] == list(range(50))


async def test_forged_invocations_are_refused(settings: Settings, nc: NATS) -> None:
    a = actor_id()
    async with ProviderRunner(Probe(), settings):
        unsigned = Invocation(Entity(a), Entity(Probe.builtin_id(), CONTRACT, "default"), "Probe.Echo", b"")
        assert "no encoded_claims" in str((await rpc(nc, settings, unsigned.to_msgpack())).error)
        foreign = signed(settings, a, "Probe.Echo", b"", cluster=keys.generate("cluster"))
        assert "not a cluster issuer" in str((await rpc(nc, settings, foreign.to_msgpack())).error)
        good = signed(settings, a, "Probe.Echo", pack(1))
        tampered = Invocation(good.origin, good.target, good.operation, pack(2), encoded_claims=good.encoded_claims)
        assert "hash mismatch" in str((await rpc(nc, settings, tampered.to_msgpack())).error)


async def test_stopping_lets_in_flight_calls_finish(settings: Settings, nc: NATS) -> None:
    probe = Probe()
    runner = ProviderRunner(probe, settings)
    await runner.__aenter__()
    call = asyncio.create_task(rpc(nc, settings, signed(settings, actor_id(), "Probe.Slow", b"").to_msgpack()))
    await asyncio.wait_for(probe.entered.wait(), 10)
    closing = asyncio.create_task(runner.__aexit__(None, None, None))
    await asyncio.sleep(0)
    probe.gate.set()
    assert unpack((await asyncio.wait_for(call, 10)).msg) == "done"
    await asyncio.wait_for(closing, 10)


async def test_nats_context_invokes_actors_and_reports_failures(settings: Settings, nc: NATS) -> None:
    cluster = keys.from_seed(settings.cluster_seed or "")
    ctx = NatsProviderContext(
        settings, nc, provider_id=Probe.builtin_id(), contract_id=CONTRACT, link_name="default", cluster_key=cluster
    )
    ok, failing, silent = actor_id(), actor_id(), actor_id()
    seen: list[Invocation] = []

    async def answer_ok(msg: Msg) -> None:
        inv = Invocation.from_msgpack(msg.data)
        seen.append(inv)
        await answer_sealed(nc, msg, settings.cluster_seed or "", Entity(ok), InvocationResponse(inv.id, msg=b"pong"))

    async def answer_error(msg: Msg) -> None:
        response = InvocationResponse(Invocation.from_msgpack(msg.data).id, error="actor broke")
        await answer_sealed(nc, msg, settings.cluster_seed or "", Entity(failing), response)

    async def never(msg: Msg) -> None:
        pass

    for actor, cb in ((ok, answer_ok), (failing, answer_error), (silent, never)):
        await nc.subscribe(subjects.actor_rpc(settings.lattice, actor), queue=actor, cb=cb)
    await settle(nc)

    assert await ctx.invoke_actor(ok, "Ping.Ping", b"ping", trace_context={"traceparent": "00-ab-cd-01"}) == b"pong"
    inv = seen[0]
    assert inv.origin == Entity(Probe.builtin_id(), CONTRACT, "default") and inv.target == Entity(ok)
    assert inv.trace_context == {"traceparent": "00-ab-cd-01"}
    claims.verify_invocation(
        inv.encoded_claims,
        cluster_issuers={cluster.public_key},
        origin_url=claims.provider_url(CONTRACT, "default", Probe.builtin_id()),
        target_url=claims.actor_url(ok),
        operation="Ping.Ping",
        msg=b"ping",
    )
    with pytest.raises(RemoteError, match="actor broke"):
        await ctx.invoke_actor(failing, "Ping.Ping", b"")
    with pytest.raises(Unreachable, match=f"actor {silent} did not answer Ping.Ping") as timed_out:
        await ctx.invoke_actor(silent, "Ping.Ping", b"", timeout_s=0.2)
    assert not isinstance(timed_out.value, NoResponders)
    nobody = actor_id()
    with pytest.raises(NoResponders, match=f"nobody serves actor {nobody}"):
        await ctx.invoke_actor(nobody, "Ping.Ping", b"")


async def test_a_standalone_provider_without_the_cluster_seed_fails_fast(settings: Settings) -> None:
    unsigned = settings.with_overrides(cluster_seed="")
    with pytest.raises(ConfigError, match="--cluster-seed or set LATTICE_CLUSTER_SEED"):
        async with ProviderRunner(Probe(), unsigned):
            pass


async def test_invocations_signed_for_another_target_are_refused(settings: Settings, nc: NATS) -> None:
    a = actor_id()
    async with ProviderRunner(Probe(), settings):
        cluster = keys.from_seed(settings.cluster_seed or "")
        other = Entity(builtin_provider_id("other"), CONTRACT, "default")
        encoded = claims.sign_invocation(
            cluster,
            origin_url=claims.actor_url(a),
            target_url=claims.provider_url(CONTRACT, "default", other.public_key),
            operation="Probe.Echo",
            msg=b"",
            host_id="NTEST",
        )
        replayed = Invocation(Entity(a), other, "Probe.Echo", b"", encoded_claims=encoded)
        assert "target mismatch" in str((await rpc(nc, settings, replayed.to_msgpack())).error)


async def test_cli_runs_a_bundled_provider_until_sigterm(settings: Settings, nc: NATS, lattice_events: Events) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lattice",
        "provider",
        "numbergen",
        "--nats-url",
        settings.nats_url,
        "--lattice",
        settings.lattice,
        "--cluster-seed",
        settings.cluster_seed or "",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for(lambda: lattice_events.named(events.PROVIDER_STARTED), timeout=30)
        pid = builtin_provider_id("numbergen")
        inv = Rpc(
            nc, lattice=settings.lattice, cluster_key=keys.from_seed(settings.cluster_seed or ""), sender_id="NTEST"
        ).sign(
            Invocation(
                Entity(actor_id()), Entity(pid, "wasmcloud:builtin:numbergen", "default"), "NumberGen.Random32", b""
            )
        )
        subject = subjects.provider_rpc(settings.lattice, pid, "default")
        resp = InvocationResponse.from_msgpack((await nc.request(subject, inv.to_msgpack(), timeout=10)).data)
        assert resp.error is None and 0 <= unpack(resp.msg) < 2**32
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await wait_for(lambda: lattice_events.named(events.PROVIDER_STOPPED))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
