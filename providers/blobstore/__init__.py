"""``wasmcloud:blobstore`` (image ``builtin:blobstore``) on the JetStream object store: containers are buckets.

The operations and shapes are wasmCloud 0.x's (``wasmCloud/interfaces`` ``blobstore/blobstore.smithy``,
protocol 2), msgpack maps with these keys:

| operation | argument | result |
|---|---|---|
| `Blobstore.ContainerExists` | containerId: str | bool |
| `Blobstore.CreateContainer` | containerId: str | nil (idempotent) |
| `Blobstore.GetContainerInfo` | containerId: str | `{containerId, createdAt?}` |
| `Blobstore.ListContainers` | nil | `[{containerId, createdAt?}]` |
| `Blobstore.RemoveContainers` | [containerId] | `[{key, success, error?}]`, one per failure |
| `Blobstore.ObjectExists` | `{containerId, objectId}` | bool |
| `Blobstore.GetObjectInfo` | `{containerId, objectId}` | `{containerId, objectId, size, lastModified?}` |
| `Blobstore.ListObjects` | `{containerId, startWith?, continuation?, endWith?, endBefore?, maxItems?}` | see¹ |
| `Blobstore.RemoveObjects` | `{containerId, objects: [objectId]}` | `[{key, success, error?}]`, one per failure |
| `Blobstore.PutObject` | `{chunk, contentType?, contentEncoding?}` | `{streamId?}` (set when `chunk.isLast` is false) |
| `Blobstore.PutChunk` | `{chunk, streamId, cancelAndRemove?}` | nil |
| `Blobstore.GetObject` | `{containerId, objectId, chunkSize?, rangeStart?, rangeEnd?}` | see² |
| actor's `ChunkReceiver.ReceiveChunk` | chunk | `{cancelDownload?}` |

A chunk is `{containerId, objectId, bytes, offset, isLast}`; timestamps `{sec, nsec}`. `GetObjectInfo` is beyond
the smithy. ¹ `{objects: [{containerId, objectId, size, lastModified?}], isLast, continuation?}`.
² `{success, error?, initialChunk?, contentLength, contentType?, contentEncoding?}`.

Large objects stream both ways, so that nothing is bounded by the NATS max payload: an upload is `PutObject`
with the first chunk, then `PutChunk`s with its `streamId` (spooled to a temporary file, stored when the
last arrives; `cancelAndRemove` drops it); a download answers the first chunk (`chunkSize`, by default the
largest allowed) and sends the rest to the actor as `ChunkReceiver.ReceiveChunk` calls, in order, until the
last or until the actor answers `cancelDownload`; a chunk is at most half the NATS max payload (512 KiB on a
default server) so that it always travels in one message. Ranges are inclusive.

Link value `BUCKET_PREFIX` (default `BLOB_`): container `c` is the object store bucket `<prefix>c`. Container
ids hold `A-Z a-z 0-9 - _` (at most 128); a prefix that could reach the lattice's own buckets (`LATTICE…`)
is refused. Uploads not finished within ``UPLOAD_IDLE_S`` of their last chunk are dropped.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import IO, Any, Final

import nats.js.errors
from nats.js.api import ObjectMeta
from nats.js.object_store import ObjectStore

from lattice.capability import BLOBSTORE
from lattice.errors import InvocationError
from lattice.messages import LinkDefinition, pack, unpack
from lattice.providers.blobstore import shapes
from lattice.providers.sdk import Provider, arg_map, arg_str, operation

__all__ = ["RECEIVE_CHUNK", "BlobstoreProvider"]

RECEIVE_CHUNK: Final = "ChunkReceiver.ReceiveChunk"
MAX_CHUNK: Final = 1024 * 1024
UPLOAD_IDLE_S: Final = 300.0
SPOOL_IN_MEMORY: Final = 8 * 1024 * 1024


@dataclass(slots=True)
class _Upload:
    container: str
    object_id: str
    spool: IO[bytes]
    size: int
    content_type: str
    touched: float


class BlobstoreProvider(Provider):
    name = "blobstore"
    contract_id = BLOBSTORE

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._uploads: dict[str, _Upload] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_link_put(self, link: LinkDefinition) -> None:
        shapes.prefix(link)

    # --- names and buckets ---------------------------------------------------------------------------

    def _bucket(self, actor_id: str, container: str) -> str:
        if not shapes.NAME.fullmatch(container):
            raise InvocationError(f"container id {container[:64]!r} must be 1-128 of A-Z a-z 0-9 - _")
        link = self.links.get(actor_id)
        return (shapes.prefix(link) if link is not None else shapes.DEFAULT_PREFIX) + container

    async def _store(self, actor_id: str, container: str, *, create: bool = False) -> ObjectStore:
        js = self.ctx.js
        bucket = self._bucket(actor_id, container)
        try:
            return await js.object_store(bucket)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
            if not create:
                raise InvocationError(f"container {container!r} does not exist: create it first") from None
            return await js.create_object_store(bucket)

    # --- containers ------------------------------------------------------------------------------------

    @operation("Blobstore.ContainerExists")
    async def container_exists(self, actor_id: str, args: Any) -> bool:
        self._bucket(actor_id, arg_str(args))  # a bad name is an error, not "no"
        try:
            await self._store(actor_id, arg_str(args))
        except InvocationError:
            return False
        return True

    @operation("Blobstore.CreateContainer")
    async def create_container(self, actor_id: str, args: Any) -> None:
        await self._store(actor_id, arg_str(args), create=True)

    @operation("Blobstore.GetContainerInfo")
    async def get_container_info(self, actor_id: str, args: Any) -> dict[str, Any]:
        container = arg_str(args)
        store = await self._store(actor_id, container)
        status = await store.status()
        created = getattr(status.stream_info, "created", None)
        return shapes.container_meta(container, created)

    @operation("Blobstore.ListContainers")
    async def list_containers(self, actor_id: str, args: Any) -> list[dict[str, Any]]:
        link = self.links.get(actor_id)
        stream_prefix = "OBJ_" + (shapes.prefix(link) if link is not None else shapes.DEFAULT_PREFIX)
        out = []
        for info in await self.ctx.js.streams_info():
            name = info.config.name or ""
            if name.startswith(stream_prefix):
                out.append(shapes.container_meta(name[len(stream_prefix) :], getattr(info, "created", None)))
        return out

    @operation("Blobstore.RemoveContainers")
    async def remove_containers(self, actor_id: str, args: Any) -> list[dict[str, Any]]:
        if not isinstance(args, list):
            raise InvocationError("expected a list of container ids")
        failures = []
        for container in args:
            try:
                await self.ctx.js.delete_object_store(self._bucket(actor_id, arg_str(container)))
            except Exception as exc:
                failures.append({"key": str(container), "success": False, "error": str(exc) or "not found"})
        return failures

    # --- objects ---------------------------------------------------------------------------------------

    async def _object(self, actor_id: str, args: Any) -> tuple[ObjectStore, str, str]:
        container, object_id = arg_str(args, "containerId"), shapes.object_id(arg_str(args, "objectId"))
        return await self._store(actor_id, container), container, object_id

    @operation("Blobstore.ObjectExists")
    async def object_exists(self, actor_id: str, args: Any) -> bool:
        store, _, object_id = await self._object(actor_id, args)
        try:
            info = await store.get_info(object_id)
        except nats.js.errors.ObjectNotFoundError:
            return False
        return not info.deleted

    @operation("Blobstore.GetObjectInfo")
    async def get_object_info(self, actor_id: str, args: Any) -> dict[str, Any]:
        store, container, object_id = await self._object(actor_id, args)
        try:
            info = await store.get_info(object_id)
        except nats.js.errors.ObjectNotFoundError:
            raise InvocationError(f"object {object_id!r} is not in container {container!r}") from None
        return shapes.object_meta(container, info)

    @operation("Blobstore.ListObjects")
    async def list_objects(self, actor_id: str, args: Any) -> dict[str, Any]:
        request = arg_map(args)
        container = arg_str(args, "containerId")
        store = await self._store(actor_id, container)
        try:
            infos = await store.list()
        except nats.js.errors.NotFoundError:  # an empty bucket has nothing to list
            infos = []
        names = sorted((i for i in infos if not i.deleted), key=lambda i: i.name)
        start = request.get("continuation") or request.get("startWith") or ""
        end_with, end_before = request.get("endWith"), request.get("endBefore")
        max_items = min(int(request.get("maxItems") or 1000), 1000)
        selected = [
            i
            for i in names
            if i.name >= start
            and (end_with is None or i.name <= end_with)
            and (end_before is None or i.name < end_before)
        ]
        page, rest = selected[:max_items], selected[max_items:]
        response: dict[str, Any] = {"objects": [shapes.object_meta(container, i) for i in page], "isLast": not rest}
        if rest:
            response["continuation"] = rest[0].name
        return response

    @operation("Blobstore.RemoveObjects")
    async def remove_objects(self, actor_id: str, args: Any) -> list[dict[str, Any]]:
        container = arg_str(args, "containerId")
        objects = arg_map(args).get("objects")
        if not isinstance(objects, list):
            raise InvocationError("'objects' must be a list of object ids")
        store = await self._store(actor_id, container)
        failures = []
        for object_id in objects:
            try:
                await store.delete(shapes.object_id(str(object_id)))
            except Exception as exc:
                failures.append({"key": str(object_id), "success": False, "error": str(exc) or "not found"})
        return failures

    # --- uploads ---------------------------------------------------------------------------------------

    @operation("Blobstore.PutObject")
    async def put_object(self, actor_id: str, args: Any) -> dict[str, Any]:
        chunk = arg_map(arg_map(args).get("chunk"))
        store, container, object_id = await self._object(actor_id, chunk)
        data = shapes.chunk_bytes(chunk)
        content_type = str(arg_map(args).get("contentType") or "")
        if chunk.get("isLast", True):
            await self._put(store, object_id, data, content_type)
            return {}
        self._expire_uploads()
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (closed on store/cancel)
        spool.write(data)
        stream_id = uuid.uuid4().hex
        self._uploads[stream_id] = _Upload(container, object_id, spool, len(data), content_type, time.monotonic())
        return {"streamId": stream_id}

    @operation("Blobstore.PutChunk")
    async def put_chunk(self, actor_id: str, args: Any) -> None:
        request = arg_map(args)
        stream_id = str(request.get("streamId") or "")
        upload = self._uploads.get(stream_id)
        if upload is None:
            raise InvocationError(f"no upload in progress with streamId {stream_id!r}: start it with PutObject")
        if request.get("cancelAndRemove"):
            self._uploads.pop(stream_id).spool.close()
            return
        chunk = arg_map(request.get("chunk"))
        offset = int(chunk.get("offset") or upload.size)
        if offset != upload.size:
            raise InvocationError(f"chunk at offset {offset}, expected {upload.size}: chunks must come in order")
        data = shapes.chunk_bytes(chunk)
        upload.spool.write(data)
        upload.size += len(data)
        upload.touched = time.monotonic()
        if chunk.get("isLast"):
            self._uploads.pop(stream_id)
            store = await self._store(actor_id, upload.container)
            upload.spool.seek(0)
            try:
                await self._put(store, upload.object_id, upload.spool, upload.content_type)
            finally:
                upload.spool.close()

    async def _put(self, store: ObjectStore, object_id: str, data: Any, content_type: str) -> None:
        meta = ObjectMeta(name=object_id, headers={"Content-Type": [content_type]} if content_type else None)
        await store.put(object_id, data, meta=meta)

    def _expire_uploads(self) -> None:
        cutoff = time.monotonic() - UPLOAD_IDLE_S
        for stream_id in [s for s, u in self._uploads.items() if u.touched < cutoff]:
            self._uploads.pop(stream_id).spool.close()

    # --- downloads -------------------------------------------------------------------------------------

    @operation("Blobstore.GetObject")
    async def get_object(self, actor_id: str, args: Any) -> dict[str, Any]:
        store, container, object_id = await self._object(actor_id, args)
        request = arg_map(args)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (closed by _send_rest)
        try:
            result = await store.get(object_id, writeinto=spool)  # type: ignore[arg-type]
        except nats.js.errors.ObjectNotFoundError:
            spool.close()
            return {
                "success": False,
                "error": f"object {object_id!r} is not in container {container!r}",
                "contentLength": 0,
            }
        size = int(result.info.size or 0)
        start = int(request.get("rangeStart") or 0)
        wanted_end = request.get("rangeEnd")
        end = min(int(wanted_end) if isinstance(wanted_end, int) else size - 1, size - 1)
        # every chunk fits one NATS message, whatever its envelope: half the max payload at most
        cap = min(MAX_CHUNK, self.ctx.nc.max_payload // 2)
        chunk_size = min(int(request.get("chunkSize") or cap), cap)
        length = max(0, end - start + 1)
        spool.seek(start)
        first = spool.read(min(chunk_size, length))
        is_last = len(first) >= length
        response: dict[str, Any] = {
            "success": True,
            "contentLength": length,
            "initialChunk": shapes.chunk(container, object_id, first, start, is_last),
        }
        headers = result.info.headers or {}
        if headers.get("Content-Type"):
            response["contentType"] = headers["Content-Type"][0]
        if is_last:
            spool.close()
        else:
            task = asyncio.create_task(
                self._send_rest(actor_id, container, object_id, spool, start + len(first), end, chunk_size)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return response

    async def _send_rest(
        self, actor_id: str, container: str, object_id: str, spool: IO[bytes], offset: int, end: int, size: int
    ) -> None:
        try:
            while offset <= end:
                data = spool.read(min(size, end - offset + 1))
                last = offset + len(data) > end
                answer = await self.ctx.invoke_actor(
                    actor_id, RECEIVE_CHUNK, pack(shapes.chunk(container, object_id, data, offset, last))
                )
                offset += len(data)
                reply = unpack(answer) if answer else None
                if isinstance(reply, dict) and reply.get("cancelDownload"):
                    break
        except Exception as exc:
            self.log.warning("download stopped", actor_id=actor_id, object_id=object_id, error=str(exc))
        finally:
            spool.close()

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for upload in self._uploads.values():
            upload.spool.close()
        self._uploads.clear()
