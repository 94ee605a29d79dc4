"""The wire shapes of ``wasmcloud:blobstore`` (wasmCloud 0.x smithy) and the names it maps onto the object
store: link prefixes, chunks, timestamps, object metadata. Pure functions, no NATS."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from lattice.errors import InvocationError, ProviderError
from lattice.messages import LinkDefinition

DEFAULT_PREFIX: Final = "BLOB_"
MAX_OBJECT_ID: Final = 1024  # bytes; base64 in a subject: ~1.4 KiB of it
NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_RESERVED: Final = "LATTICE"
_RFC3339: Final = re.compile(r"(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def prefix(link: LinkDefinition) -> str:
    values = {k.upper(): v for k, v in link.values.items()}
    prefix = values.get("BUCKET_PREFIX", DEFAULT_PREFIX)
    if (
        not prefix
        or not NAME.fullmatch(prefix)
        or _RESERVED.startswith(prefix.upper())
        or prefix.upper().startswith(_RESERVED)
    ):
        raise ProviderError(
            f"blobstore link {link.actor_id}: BUCKET_PREFIX {prefix!r} must be A-Z a-z 0-9 - _ and must not reach "
            "the lattice's own buckets (LATTICE…)"
        )
    return prefix


def chunk_bytes(chunk: dict[str, Any]) -> bytes:
    data = chunk.get("bytes", b"")
    if isinstance(data, str):
        return data.encode()
    if not isinstance(data, bytes):
        raise InvocationError(f"chunk 'bytes' must be bin, got {type(data).__name__}")
    return data


def chunk(container: str, object_id: str, data: bytes, offset: int, is_last: bool) -> dict[str, Any]:
    return {"containerId": container, "objectId": object_id, "bytes": data, "offset": offset, "isLast": is_last}


def timestamp(value: Any) -> dict[str, int] | None:
    if isinstance(value, datetime):
        seconds = value.timestamp()
    elif isinstance(value, str) and (found := _RFC3339.fullmatch(value)):
        whole, fraction, zone = found.groups()  # nanoseconds are more than fromisoformat takes
        try:
            stamp = datetime.fromisoformat(whole + ("+00:00" if zone in (None, "Z") else zone))
        except ValueError:
            return None
        seconds = stamp.timestamp() + float(f"0{fraction or ''}")
    else:
        return None
    return {"sec": int(seconds), "nsec": int((seconds % 1) * 1e9)}


def object_id(object_id: str) -> str:
    """``object_id`` if the object store can take it: its subject (``$O.<bucket>.M.<base64 of the id>``) must stay
    far below nats-server's max control line, which closes the connection of whoever sends a longer one."""
    if not object_id:
        raise InvocationError("objectId is empty")
    size = len(object_id.encode("utf-8", "surrogatepass"))
    if size > MAX_OBJECT_ID:
        raise InvocationError(f"objectId is {size} bytes long; at most {MAX_OBJECT_ID} are allowed")
    return object_id


def container_meta(container: str, created: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"containerId": container}
    if (stamp := timestamp(created)) is not None:
        meta["createdAt"] = stamp
    return meta


def object_meta(container: str, info: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"containerId": container, "objectId": info.name, "size": int(info.size or 0)}
    if (stamp := timestamp(info.mtime)) is not None:
        meta["lastModified"] = stamp
    return meta
