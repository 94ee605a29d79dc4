"""Event-driven actors beside raw NATS, in one process on one fresh nats-server (JetStream on).

messaging_msgs_per_s     messages published on a subject and handled by a 100-byte waPC echo actor through
                         the messaging provider in the same host process (``MessageSubscriber.HandleMessage``
                         per message, core NATS, at most once): published → all handled
raw_nats_msgs_per_s      the same messages to a plain nats-py subscription in the same process
blob_put_get_mb_per_s    a 16 MiB object through the blobstore provider (``PutObject`` + ``PutChunk`` of
                         256 KiB, then ``GetObject`` + ``ReceiveChunk``s to a stand-in actor), MB/s each way
                         averaged
raw_object_store_mb_per_s  the same bytes put and got with nats-py's object store directly
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from lattice import keys
from lattice.capability import builtin_provider_id
from lattice.cli.natsserver import NatsServer
from lattice.connection import settle
from lattice.host.host import Host
from lattice.messages import LinkDefinition, pack, unpack
from lattice.providers.blobstore import BlobstoreProvider
from lattice.settings import Settings
from tests.host import guests

MESSAGES = {"full": 20_000, "quick": 5_000, "tiny": 500}
BLOB_MB = {"full": 16, "quick": 8, "tiny": 1}
CHUNK = 256 * 1024


def run(profile: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lattice-bench-events-") as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        try:
            return asyncio.run(_all(server.url, Path(tmp), profile))
        finally:
            server.stop()


async def _all(url: str, tmp: Path, profile: str) -> dict[str, float]:
    out = await _messaging(url, tmp, MESSAGES[profile])
    out |= await _raw_messaging(url, MESSAGES[profile])
    out |= await _blobs(url, BLOB_MB[profile])
    return out


async def _messaging(url: str, tmp: Path, count: int) -> dict[str, float]:
    echo = tmp / "echo.wasm"
    echo.write_bytes(guests.ECHO)
    settings = Settings(
        nats_url=url,
        lattice="bench",
        allow_unsigned=True,
        state_dir=tmp / "state",
        cluster_seed=keys.generate("cluster").seed,
        files_root=tmp,
    )
    async with Host(settings) as host:
        running = await host.scale_actor(f"file://{echo}", 1, {}, {})
        assert running is not None
        await host.start_provider("builtin:messaging", "default", {}, {})
        link = LinkDefinition(
            running.actor_id,
            builtin_provider_id("messaging"),
            "wasmcloud:messaging",
            "default",
            {"SUBSCRIPTION": "bench.in"},
        )
        await host.data.put_link(link)
        pool = running.pool
        client = await nats.connect(url)
        try:
            await _until(lambda: _subscribed(host), 10)
            before = pool.calls
            elapsed = await _publish_all(client, "bench.in", count, lambda: pool.calls - before >= count)
        finally:
            await client.close()
    return {"messaging_msgs_per_s": count / elapsed}


def _subscribed(host: Host) -> bool:
    local = host.providers.get((builtin_provider_id("messaging"), "default"))
    provider: Any = local.provider if local is not None else None
    return provider is not None and bool(getattr(provider, "links", {}))


async def _raw_messaging(url: str, count: int) -> dict[str, float]:
    sub_nc, pub_nc = await nats.connect(url), await nats.connect(url)
    got = 0

    async def cb(msg: Any) -> None:
        nonlocal got
        got += 1

    try:
        await sub_nc.subscribe("bench.raw", cb=cb)
        await settle(sub_nc)
        elapsed = await _publish_all(pub_nc, "bench.raw", count, lambda: got >= count)
    finally:
        await sub_nc.close()
        await pub_nc.close()
    return {"raw_nats_msgs_per_s": count / elapsed}


class _Ctx:
    """Enough of a provider context for the blobstore: its NATS, and an actor that takes the chunks."""

    def __init__(self, nc: Any) -> None:
        self.nc, self.js = nc, nc.jetstream()
        self.settings = Settings(nats_url="", lattice="bench")
        self.provider_id, self.link_name, self.host_id = builtin_provider_id("blobstore"), "default", "NBENCH"
        self.chunks: list[bytes] = []
        self.done = asyncio.Event()

    async def invoke_actor(self, actor_id: str, operation: str, payload: bytes, **_: Any) -> bytes:
        chunk = unpack(payload)
        self.chunks.append(chunk["bytes"])
        if chunk["isLast"]:
            self.done.set()
        return pack({})

    def log(self, event: str, **fields: Any) -> None:
        pass


async def _blobs(url: str, megabytes: int) -> dict[str, float]:
    data = os.urandom(megabytes * 1024 * 1024)
    nc = await nats.connect(url)
    try:
        ctx = _Ctx(nc)
        provider = BlobstoreProvider()
        await provider.init(ctx)  # type: ignore[arg-type]
        actor = "MBENCH"
        await provider.handle(actor, "Blobstore.CreateContainer", pack("bench"))
        start = time.perf_counter()
        pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        first = {"containerId": "bench", "objectId": "blob", "bytes": pieces[0], "offset": 0, "isLast": False}
        stream = unpack(await provider.handle(actor, "Blobstore.PutObject", pack({"chunk": first})))["streamId"]
        for i, piece in enumerate(pieces[1:], start=1):
            chunk = {"containerId": "bench", "objectId": "blob", "bytes": piece, "offset": i * CHUNK}
            chunk["isLast"] = i == len(pieces) - 1
            await provider.handle(actor, "Blobstore.PutChunk", pack({"chunk": chunk, "streamId": stream}))
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        got = unpack(
            await provider.handle(actor, "Blobstore.GetObject", pack({"containerId": "bench", "objectId": "blob"}))
        )
        await asyncio.wait_for(ctx.done.wait(), 120)
        get_s = time.perf_counter() - start
        assert len(got["initialChunk"]["bytes"]) + sum(map(len, ctx.chunks)) == len(data)
        await provider.shutdown()
        raw = await nc.jetstream().create_object_store("RAW_BENCH")
        start = time.perf_counter()
        await raw.put("blob", data)
        raw_put_s = time.perf_counter() - start
        start = time.perf_counter()
        assert len((await raw.get("blob")).data or b"") == len(data)
        raw_get_s = time.perf_counter() - start
    finally:
        await nc.close()
    mb = len(data) / 1e6
    return {
        "blob_put_get_mb_per_s": 2 * mb / (put_s + get_s),
        "raw_object_store_mb_per_s": 2 * mb / (raw_put_s + raw_get_s),
    }


async def _publish_all(nc: Any, subject: str, count: int, handled: Any) -> float:
    """Publish ``count`` 100-byte messages; seconds until ``handled()`` says every one was."""
    start = time.perf_counter()
    for i in range(count):
        await nc.publish(subject, b"x" * 100)
        if i % 500 == 0:
            await asyncio.sleep(0)  # let the subscribers run
    await settle(nc)
    await _until(handled, 120)
    return time.perf_counter() - start


async def _until(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout_s:g} s")
        await asyncio.sleep(0.005)
