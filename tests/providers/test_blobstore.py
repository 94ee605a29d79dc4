"""wasmcloud:blobstore on the JetStream object store, in process and over NATS: containers, objects, chunked
uploads and downloads far larger than the NATS max payload, ranges, and the lattice's buckets out of reach."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from lattice.errors import LatticeError, ProviderError
from lattice.messages import pack, unpack
from lattice.providers.blobstore import RECEIVE_CHUNK, BlobstoreProvider
from tests.conftest import wait_for
from tests.providers.conftest import Harness, HarnessFactory

CHUNK = 256 * 1024


@pytest.fixture
async def blobs(start_provider: HarnessFactory) -> Harness:
    return await start_provider(BlobstoreProvider())


def chunk(
    data: bytes, offset: int, last: bool, container: str = "photos", object_id: str = "cat.jpg"
) -> dict[str, Any]:
    return {"containerId": container, "objectId": object_id, "bytes": data, "offset": offset, "isLast": last}


async def upload(blobs: Harness, actor: str, data: bytes, object_id: str = "cat.jpg") -> None:
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    first = await blobs.call(
        actor,
        "Blobstore.PutObject",
        {"chunk": chunk(pieces[0], 0, len(pieces) == 1, object_id=object_id), "contentType": "image/jpeg"},
    )
    offset = len(pieces[0])
    for i, piece in enumerate(pieces[1:], start=2):
        request = {"chunk": chunk(piece, offset, i == len(pieces), object_id=object_id), "streamId": first["streamId"]}
        await blobs.call(actor, "Blobstore.PutChunk", request)
        offset += len(piece)


async def test_containers_are_created_listed_and_removed(blobs: Harness) -> None:
    actor = await blobs.link()
    assert await blobs.call(actor, "Blobstore.ContainerExists", "photos") is False
    assert await blobs.call(actor, "Blobstore.CreateContainer", "photos") is None
    assert await blobs.call(actor, "Blobstore.CreateContainer", "photos") is None  # idempotent
    assert await blobs.call(actor, "Blobstore.ContainerExists", "photos") is True
    assert (await blobs.call(actor, "Blobstore.GetContainerInfo", "photos"))["containerId"] == "photos"
    assert [c["containerId"] for c in await blobs.call(actor, "Blobstore.ListContainers")] == ["photos"]
    failures = await blobs.call(actor, "Blobstore.RemoveContainers", ["photos", "never-made"])
    assert [f["key"] for f in failures] == ["never-made"]
    assert await blobs.call(actor, "Blobstore.ContainerExists", "photos") is False


async def test_an_object_far_over_the_max_payload_streams_both_ways(blobs: Harness, nc: NATS) -> None:
    actor = await blobs.link()
    await blobs.call(actor, "Blobstore.CreateContainer", "photos")
    data = os.urandom(3 * nc.max_payload + 12345)  # ~3 MiB: no single NATS message could carry it
    await upload(blobs, actor, data)
    info = await blobs.call(actor, "Blobstore.GetObjectInfo", {"containerId": "photos", "objectId": "cat.jpg"})
    assert info["size"] == len(data) and "lastModified" in info
    received: list[dict[str, Any]] = []

    async def receiver(operation: str, payload: bytes) -> bytes:
        assert operation == RECEIVE_CHUNK
        received.append(unpack(payload))
        return pack({})

    await blobs.serve_actor(actor, receiver)
    got = await blobs.call(actor, "Blobstore.GetObject", {"containerId": "photos", "objectId": "cat.jpg"})
    assert got["success"] and got["contentLength"] == len(data) and got["contentType"] == "image/jpeg"
    await wait_for(lambda: received and received[-1]["isLast"], timeout=30)
    whole = got["initialChunk"]["bytes"] + b"".join(c["bytes"] for c in received)
    assert hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()
    assert [c["offset"] for c in received] == sorted(c["offset"] for c in received)


async def test_ranges_listing_existence_and_removal(blobs: Harness) -> None:
    actor = await blobs.link()
    await blobs.call(actor, "Blobstore.CreateContainer", "photos")
    for name in ("a.txt", "b.txt", "c.txt"):
        await upload(blobs, actor, name.encode() * 10, object_id=name)
    ranged = await blobs.call(
        actor, "Blobstore.GetObject", {"containerId": "photos", "objectId": "b.txt", "rangeStart": 5, "rangeEnd": 9}
    )
    assert ranged["contentLength"] == 5 and ranged["initialChunk"]["bytes"] == (b"b.txt" * 10)[5:10]
    listed = await blobs.call(actor, "Blobstore.ListObjects", {"containerId": "photos", "maxItems": 2})
    assert [o["objectId"] for o in listed["objects"]] == ["a.txt", "b.txt"] and not listed["isLast"]
    rest = await blobs.call(
        actor, "Blobstore.ListObjects", {"containerId": "photos", "continuation": listed["continuation"]}
    )
    assert [o["objectId"] for o in rest["objects"]] == ["c.txt"] and rest["isLast"]
    assert await blobs.call(actor, "Blobstore.ObjectExists", {"containerId": "photos", "objectId": "a.txt"})
    assert await blobs.call(actor, "Blobstore.RemoveObjects", {"containerId": "photos", "objects": ["a.txt"]}) == []
    assert not await blobs.call(actor, "Blobstore.ObjectExists", {"containerId": "photos", "objectId": "a.txt"})
    missing = await blobs.call(actor, "Blobstore.GetObject", {"containerId": "photos", "objectId": "a.txt"})
    assert missing["success"] is False and "a.txt" in missing["error"]


async def test_cancelled_upload_leaves_nothing(blobs: Harness) -> None:
    actor = await blobs.link()
    await blobs.call(actor, "Blobstore.CreateContainer", "photos")
    first = await blobs.call(actor, "Blobstore.PutObject", {"chunk": chunk(b"part", 0, False)})
    await blobs.call(
        actor,
        "Blobstore.PutChunk",
        {"chunk": chunk(b"", 4, True), "streamId": first["streamId"], "cancelAndRemove": True},
    )
    assert not await blobs.call(actor, "Blobstore.ObjectExists", {"containerId": "photos", "objectId": "cat.jpg"})
    with pytest.raises(LatticeError, match="no upload in progress"):
        await blobs.call(actor, "Blobstore.PutChunk", {"chunk": chunk(b"x", 4, True), "streamId": first["streamId"]})


async def test_the_lattices_own_buckets_are_out_of_reach(blobs: Harness) -> None:
    actor = await blobs.link()
    for bad in ("../LATTICEDATA_test", "a.b", ""):
        with pytest.raises(LatticeError, match="container id"):
            await blobs.call(actor, "Blobstore.ContainerExists", bad)
    for prefix in ("LATTICE", "L", "LATTICE_PAYLOADS_"):
        with pytest.raises(ProviderError, match="BUCKET_PREFIX"):
            await blobs.link(BUCKET_PREFIX=prefix)


async def test_an_object_id_too_long_for_a_subject_is_refused_and_the_connection_survives(blobs: Harness) -> None:
    """Issue 13: an object id goes (base64) into a NATS subject; 4 KB of it made nats-server close the
    connection for good."""
    actor = await blobs.link()
    await blobs.call(actor, "Blobstore.CreateContainer", "photos")
    long_id = "x" * 4000
    with pytest.raises(LatticeError, match="objectId is 4000 bytes long; at most 1024"):
        await blobs.call(actor, "Blobstore.ObjectExists", {"containerId": "photos", "objectId": long_id})
    failures = await blobs.call(actor, "Blobstore.RemoveObjects", {"containerId": "photos", "objects": [long_id]})
    assert failures[0]["success"] is False and "at most 1024" in failures[0]["error"]
    await upload(blobs, actor, b"still here", object_id="y" * 1024)
    assert await blobs.call(actor, "Blobstore.ObjectExists", {"containerId": "photos", "objectId": "y" * 1024})
