"""``wasmcloud:keyvalue`` (SPEC §2) on JetStream KV: strings, counters, lists and sets, with expiry.

Isolation is per bucket, as wasmCloud 0.x isolates per store: every link names its bucket and every
actor linked to the same bucket shares its keys (two counters named ``hits`` in one bucket are one
counter). Link values (case-insensitive names):

    bucket   JetStream KV bucket (letters, digits, ``-``, ``_``); created when missing.
             Default: the provider config's ``bucket``, else ``LATTICE_KV_{lattice}``.

Semantics follow Redis, as the wasmCloud redis provider does: one keyspace per bucket holding
strings, lists and sets; an operation on a key of another type fails (WRONGTYPE); ``Increment`` on a
missing key starts from 0 and keeps the key's expiry; ``ListRange`` is inclusive with negative
indexes counted from the end; a list or set that loses its last element disappears; ``Del``,
``ListClear`` and ``SetClear`` report whether the key existed. ``Set`` with ``expires`` > 0 makes the
key read as absent after that many seconds. How keys and values sit in the bucket: ``store.py``.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from lattice.capability import KEYVALUE
from lattice.connection import key_value
from lattice.errors import InvocationError, LinkNotFound, ProviderError
from lattice.messages import LinkDefinition
from lattice.providers.keyvalue.store import KEEP, LIST, SET, STRING, Keep, Record, Store, shown
from lattice.providers.sdk import Provider, arg_int, arg_list, arg_map, arg_str, describe_link, operation

__all__ = ["KeyValueProvider", "redis_range"]

_BUCKET_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_BUCKET: Final = 64  # JetStream names its stream KV_<bucket>; subjects carry it too
_I32: Final = (-(2**31), 2**31 - 1)
_U32_MAX: Final = 2**32 - 1

Change = tuple[Record | Keep | None, Any]


def redis_range(items: list[str], start: int, stop: int) -> list[str]:
    """``LRANGE items start stop``: inclusive, negative indexes from the end, out of range clipped."""
    n = len(items)
    if start < 0:
        start = max(n + start, 0)
    if stop < 0:
        stop = n + stop
    stop = min(stop, n - 1)
    if start > stop or start >= n:
        return []
    return items[start : stop + 1]


def _key(args: Any) -> str:
    """A bare key, or (tolerantly) ``{key: ...}``."""
    return arg_str(args, "key") if isinstance(args, dict) else arg_str(args)


class KeyValueProvider(Provider):
    name = "keyvalue"
    contract_id = KEYVALUE
    requires_link = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._stores: dict[str, Store] = {}  # actor id → its link's bucket
        self._buckets: dict[str, Store] = {}  # bucket name → store

    def bucket_of(self, link: LinkDefinition) -> str:
        values = {k.lower(): v for k, v in link.values.items()}
        bucket = values.get("bucket") or self.config.get("bucket") or f"LATTICE_KV_{self.ctx.settings.lattice}"
        if not _BUCKET_RE.match(bucket) or len(bucket) > _MAX_BUCKET:
            raise ProviderError(
                f"keyvalue: link {describe_link(link)} refused: bucket {bucket[:80]!r} may hold only letters, "
                f"digits, '-' and '_' (1 to {_MAX_BUCKET} of them)"
            )
        return str(bucket)

    async def on_link_put(self, link: LinkDefinition) -> None:
        bucket = self.bucket_of(link)
        store = self._buckets.get(bucket)
        if store is None:
            try:
                kv = await key_value(self.ctx.js, bucket, replicas=self.ctx.settings.js_replicas)
            except Exception as exc:
                where = describe_link(link)
                raise ProviderError(f"keyvalue: link {where}: cannot open bucket {bucket}: {exc}") from exc
            store = self._buckets[bucket] = Store(kv, bucket)
        self._stores[link.actor_id] = store

    async def on_link_del(self, link: LinkDefinition) -> None:
        self._stores.pop(link.actor_id, None)

    async def health(self) -> tuple[bool, str]:
        return True, f"{len(self._stores)} linked actor(s) on {len(self._buckets)} bucket(s)"

    def _store(self, actor_id: str) -> Store:
        store = self._stores.get(actor_id)
        if store is None:
            raise LinkNotFound(self.contract_id, self.link_name, actor_id)
        return store

    # strings and counters

    @operation("KeyValue.Get")
    async def get_value(self, actor_id: str, args: Any) -> dict[str, Any]:
        key = _key(args)
        record = await self._store(actor_id).get(key)
        if record is None:
            return {"value": "", "exists": False}
        return {"value": record.expect(STRING, key), "exists": True}

    @operation("KeyValue.Set")
    async def set_value(self, actor_id: str, args: Any) -> None:
        key, value = arg_str(args, "key"), arg_str(args, "value")
        expires = arg_int(args, "expires", 0, _U32_MAX, default=0)
        await self._store(actor_id).put(key, Record(STRING, value, time.time() + expires if expires else 0.0))

    @operation("KeyValue.Del")
    async def delete(self, actor_id: str, args: Any) -> bool:
        return await self._store(actor_id).mutate(_key(args), lambda current: (None, current is not None))

    @operation("KeyValue.Contains")
    async def contains(self, actor_id: str, args: Any) -> bool:
        return await self._store(actor_id).get(_key(args)) is not None

    @operation("KeyValue.Increment")
    async def increment(self, actor_id: str, args: Any) -> int:
        key = arg_str(args, "key")
        delta = arg_int(args, "value", *_I32)

        def change(current: Record | None) -> Change:
            number = 0
            if current is not None:
                text = current.expect(STRING, key)
                try:
                    number = int(text)
                except ValueError:
                    raise InvocationError(f"key {shown(key)} holds {text[:40]!r}, not an integer") from None
            new = number + delta
            if not _I32[0] <= new <= _I32[1]:
                raise InvocationError(f"incrementing {shown(key)} by {delta} overflows i32")
            return Record(STRING, str(new), current.expires if current else 0.0), new

        return await self._store(actor_id).mutate(key, change)

    # lists

    @operation("KeyValue.ListAdd")
    async def list_add(self, actor_id: str, args: Any) -> int:
        name, value = arg_str(args, "listName"), arg_str(args, "value")

        def change(current: Record | None) -> Change:
            items = [*(current.expect(LIST, name) if current else []), value]
            return Record(LIST, items, current.expires if current else 0.0), len(items)

        return await self._store(actor_id).mutate(name, change)

    @operation("KeyValue.ListDel")
    async def list_del(self, actor_id: str, args: Any) -> bool:
        name, value = arg_str(args, "listName"), arg_str(args, "value")

        def change(current: Record | None) -> Change:
            items = list(current.expect(LIST, name)) if current else []
            if value not in items or current is None:
                return KEEP, False
            items.remove(value)
            return (Record(LIST, items, current.expires) if items else None), True

        return await self._store(actor_id).mutate(name, change)

    @operation("KeyValue.ListRange")
    async def list_range(self, actor_id: str, args: Any) -> list[str]:
        name = arg_str(args, "listName")
        start, stop = arg_int(args, "start", *_I32), arg_int(args, "stop", *_I32)
        record = await self._store(actor_id).get(name)
        return redis_range(list(record.expect(LIST, name)), start, stop) if record else []

    @operation("KeyValue.ListClear")
    async def list_clear(self, actor_id: str, args: Any) -> bool:
        return await self._clear(actor_id, _name(args, "listName"), LIST)

    # sets

    @operation("KeyValue.SetAdd")
    async def set_add(self, actor_id: str, args: Any) -> int:
        name, value = arg_str(args, "setName"), arg_str(args, "value")

        def change(current: Record | None) -> Change:
            members = set(current.expect(SET, name)) if current else set()
            if value in members:
                return KEEP, 0
            members.add(value)
            return Record(SET, sorted(members), current.expires if current else 0.0), 1

        return await self._store(actor_id).mutate(name, change)

    @operation("KeyValue.SetDel")
    async def set_del(self, actor_id: str, args: Any) -> int:
        name, value = arg_str(args, "setName"), arg_str(args, "value")

        def change(current: Record | None) -> Change:
            members = set(current.expect(SET, name)) if current else set()
            if value not in members or current is None:
                return KEEP, 0
            members.discard(value)
            return (Record(SET, sorted(members), current.expires) if members else None), 1

        return await self._store(actor_id).mutate(name, change)

    @operation("KeyValue.SetQuery")
    async def set_query(self, actor_id: str, args: Any) -> list[str]:
        name = _name(args, "setName")
        return sorted(await self._members(actor_id, name))

    @operation("KeyValue.SetIntersection")
    async def set_intersection(self, actor_id: str, args: Any) -> list[str]:
        names = arg_list(args)
        if not names:
            return []
        sets = [await self._members(actor_id, name) for name in names]
        return sorted(set.intersection(*sets))

    @operation("KeyValue.SetUnion")
    async def set_union(self, actor_id: str, args: Any) -> list[str]:
        sets = [await self._members(actor_id, name) for name in arg_list(args)]
        return sorted(set().union(*sets))

    @operation("KeyValue.SetClear")
    async def set_clear(self, actor_id: str, args: Any) -> bool:
        return await self._clear(actor_id, _name(args, "setName"), SET)

    async def _members(self, actor_id: str, name: str) -> set[str]:
        record = await self._store(actor_id).get(name)
        return set(record.expect(SET, name)) if record else set()

    async def _clear(self, actor_id: str, name: str, kind: str) -> bool:
        def change(current: Record | None) -> Change:
            if current is not None:
                current.expect(kind, name)
            return None, current is not None

        return await self._store(actor_id).mutate(name, change)


def _name(args: Any, key: str) -> str:
    """A bare list/set name, or (tolerantly) ``{listName: ...}``."""
    return arg_str(arg_map(args), key) if isinstance(args, dict) else arg_str(args)
