"""Over NATS: raw nats-py request/reply against an actor invoked in another host process.

raw_nats_us             nats-py request/reply, 100 B, one request at a time, on the lattice's own
                        nats-server, answered by a nats-py responder in another process (on uvloop,
                        as hosts run): the same hops as an actor call, without lattice
raw_nats_inproc_us      the same with the responder in this process (one event loop does both ends)
nats_actor_call_us      ``Rpc.invoke`` from this process (signed ``Invocation``, msgpack) of a
                        100-byte waPC echo actor running in a host process: anti-forgery signing
                        here, verification and the pool call there, the answer back
response_seal_us        what the sealed answer adds to ``nats_actor_call_us``: sealing a 100-byte
                        ``InvocationResponse`` there plus checking its seal here, as members that share
                        the cluster seed do (``m1``: keyed BLAKE2b, docs/security.md), in this process
response_seal_ed25519_us  the same with the ``v1`` (PyNaCl Ed25519) seal a caller without a valid
                        ``claims_mac`` gets (0.x peers, members of another trusted cluster)
claims_check_us         the receiver's check of a 100-byte invocation's claims (``Rpc.verify``): as a member
                        sends it (``claims_mac``), and ``claims_check_ed25519_us`` without the code
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import replace

import nats

from bench.cluster import LATTICE, Cluster, hello_app
from bench.stats import summarize
from lattice import keys
from lattice.cli.natsserver import spawn
from lattice.connection import settle
from lattice.messages import Entity, Invocation, InvocationResponse
from lattice.rpc import Rpc, response_context
from lattice.seal import Sealer

PAYLOAD = b"x" * 100


RESPONDER = """
import asyncio, sys, nats, uvloop
from lattice.connection import settle
async def main():
    nc = await nats.connect(sys.argv[1])
    async def reply(msg):
        await msg.respond(msg.data)
    await nc.subscribe("bench.echo", cb=reply)
    await settle(nc)
    print("ready", flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
"""


async def _raw_other_process(url: str, samples: int) -> list[float]:
    proc = spawn([sys.executable, "-c", RESPONDER, url], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the raw NATS responder did not start")
        return await _raw(url, samples, responder=False)
    finally:
        proc.kill()
        proc.wait()


async def _raw(url: str, samples: int, *, responder: bool = True) -> list[float]:
    server = await nats.connect(url)
    client = await nats.connect(url)
    try:

        async def reply(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        if responder:
            await server.subscribe("bench.echo", cb=reply)
        await settle(server)
        await settle(client)
        out = []
        for i in range(samples + 50):
            start = time.perf_counter_ns()
            answer = await client.request("bench.echo", PAYLOAD, timeout=5)
            if i >= 50:
                out.append((time.perf_counter_ns() - start) / 1000)
            assert answer.data == PAYLOAD
        return out
    finally:
        await client.close()
        await server.close()


async def _actor(url: str, cluster_seed: str, actor_id: str, samples: int) -> list[float]:
    nc = await nats.connect(url)
    try:
        me = keys.generate("server").public_key
        rpc = Rpc(nc, lattice=LATTICE, cluster_key=keys.from_seed(cluster_seed), sender_id=me, timeout_s=5)
        origin, target = Entity(me), Entity(actor_id)
        out = []
        for i in range(samples + 50):
            start = time.perf_counter_ns()
            answer = await rpc.invoke(origin, target, "Echo.Echo", PAYLOAD)
            if i >= 50:
                out.append((time.perf_counter_ns() - start) / 1000)
            assert answer == PAYLOAD
        return out
    finally:
        await nc.close()


def _seal_cost(samples: int, *, mac: bool) -> list[float]:
    sealer = Sealer(keys.generate("cluster"))
    responder = Entity(keys.generate("module").public_key)
    out = []
    for i in range(samples + 50):
        body = InvocationResponse(f"inv-{i}", msg=PAYLOAD).to_msgpack()
        start = time.perf_counter_ns()
        context = response_context(f"inv-{i}", responder)
        headers = sealer.headers(context, body, mac=mac)
        sealer.check_headers(headers, context, body, what="bench")
        if i >= 50:
            out.append((time.perf_counter_ns() - start) / 1000)
    return out


def _claims_cost(samples: int, *, mac: bool) -> list[float]:
    me = keys.generate("server").public_key
    rpc = Rpc(None, lattice=LATTICE, cluster_key=keys.generate("cluster"), sender_id=me)  # type: ignore[arg-type]
    inv = rpc.sign(Invocation(Entity(me), Entity(keys.generate("module").public_key), "Echo.Echo", PAYLOAD))
    if not mac:
        inv = replace(inv, claims_mac=b"")
    out = []
    for i in range(samples + 50):
        start = time.perf_counter_ns()
        rpc.verify(inv)
        if i >= 50:
            out.append((time.perf_counter_ns() - start) / 1000)
    return out


def run(lattice: Cluster, samples: int) -> dict[str, float]:
    """Deploys the echo actor as application ``echo`` on ``lattice`` (and leaves it there)."""
    from tests.host.guests import ECHO

    art = lattice.upload(ECHO)
    lattice.put_app("echo", hello_app("echo", art["digest"], port=None))
    lattice.wait_deployed("echo")
    results = summarize(asyncio.run(_raw_other_process(lattice.nats.url, samples)), "raw_nats", "us")
    results |= summarize(asyncio.run(_raw(lattice.nats.url, samples)), "raw_nats_inproc", "us")
    results |= summarize(
        asyncio.run(_actor(lattice.nats.url, lattice.cluster_seed, art["actor_id"], samples)), "nats_actor_call", "us"
    )
    results |= summarize(_seal_cost(samples, mac=True), "response_seal", "us")
    results |= summarize(_seal_cost(samples, mac=False), "response_seal_ed25519", "us")
    results |= summarize(_claims_cost(samples, mac=True), "claims_check", "us")
    results |= summarize(_claims_cost(samples, mac=False), "claims_check_ed25519", "us")
    return results
