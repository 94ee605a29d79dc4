"""Blobs for actors: the ``wasmcloud:blobstore`` contract (wasmCloud 0.x shapes) as functions.

Small objects in one call each; ``put`` splits large ones into chunks itself. ``get`` returns the first
chunk only (up to half the NATS max payload): larger objects arrive as ``ChunkReceiver.ReceiveChunk`` calls.
"""

from __future__ import annotations

from typing import Any

from lattice_actor.host import call_value

CONTRACT = "wasmcloud:blobstore"
CHUNK = 256 * 1024


def _blob(operation: str, value: Any, link: str) -> Any:
    return call_value(CONTRACT, f"Blobstore.{operation}", value, link)


def create_container(container: str, link: str = "") -> None:
    _blob("CreateContainer", container, link)


def exists(container: str, object_id: str, link: str = "") -> bool:
    return bool(_blob("ObjectExists", {"containerId": container, "objectId": object_id}, link))


def put(container: str, object_id: str, data: bytes, content_type: str = "", link: str = "") -> None:
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]

    def chunk(i: int) -> dict[str, Any]:
        last = i == len(pieces) - 1
        where = {"containerId": container, "objectId": object_id}
        return {**where, "bytes": pieces[i], "offset": i * CHUNK, "isLast": last}

    started = _blob("PutObject", {"chunk": chunk(0), "contentType": content_type}, link) or {}
    for i in range(1, len(pieces)):
        _blob("PutChunk", {"chunk": chunk(i), "streamId": started.get("streamId")}, link)


def get(container: str, object_id: str, link: str = "") -> bytes:
    """The object's first chunk (all of a small object); HostCallError-like failures raise ValueError."""
    answer = _blob("GetObject", {"containerId": container, "objectId": object_id}, link) or {}
    if not answer.get("success"):
        raise ValueError(answer.get("error") or f"cannot read {container}/{object_id}")
    return bytes((answer.get("initialChunk") or {}).get("bytes", b""))
