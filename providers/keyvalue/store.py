"""One JetStream KV bucket seen as a Redis-like keyspace: typed records, expiry, compare-and-set.

Owns how user keys and values sit in the bucket; knows nothing of actors, links or msgpack payloads
of the contract (that is ``lattice.providers.keyvalue``).

- Keys: any string. Characters outside ``[A-Za-z0-9_/-]`` (``.`` and ``=`` included) are written as
  ``=XX`` per UTF-8 byte, so every key is a valid NATS KV key with no empty subject token; the empty
  key is ``=``. ``encode_key``/``decode_key`` are exact inverses.
- Values: one msgpack map per key, ``{t: "string"|"list"|"set", v: str | [str], x: expiry}`` where
  ``x`` is a Unix time in seconds (0 = never). Lists and sets live in one key each (sets sorted).
  An expired record reads as absent and is deleted by the next write to its key. A value some other
  tool wrote (not such a map) reads as a string of its UTF-8 text.
- Writes that depend on what is there (``mutate``) are compare-and-set on the key's revision, retried
  on conflict, and serialised per key inside this process so local callers do not fight each other.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgpack
import nats.js.errors
from nats.js.kv import KeyValue

from lattice.errors import InvocationError, ProviderError
from lattice.messages import pack

T = TypeVar("T")

STRING: Final = "string"
LIST: Final = "list"
SET: Final = "set"

_SAFE: Final = frozenset(string.ascii_letters + string.digits + "_-/")
_WRONG_LAST_SEQUENCE: Final = (10071, 10164)
_MAX_ATTEMPTS: Final = 200


def encode_key(key: str) -> str:
    """The NATS KV key that stores user key ``key``."""
    if key == "":
        return "="
    return "".join(ch if ch in _SAFE else "".join(f"={b:02X}" for b in ch.encode("utf-8")) for ch in key)


def decode_key(encoded: str) -> str:
    """The user key stored under ``encoded`` (inverse of ``encode_key``)."""
    if encoded == "=":
        return ""
    out = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "=":
            out.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            out += encoded[i].encode()
            i += 1
    return out.decode("utf-8")


@dataclass(frozen=True, slots=True)
class Record:
    """What one key holds: a string, a list or a (sorted) set, and when it expires (0 = never)."""

    kind: str
    value: Any  # str for STRING, list[str] for LIST and SET
    expires: float = 0.0

    def expired(self, now: float) -> bool:
        return bool(self.expires) and self.expires <= now

    def to_bytes(self) -> bytes:
        return pack({"t": self.kind, "v": self.value, "x": self.expires})

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        try:
            d = msgpack.unpackb(data, raw=False)
        except Exception:
            d = None
        if isinstance(d, dict) and d.get("t") in (STRING, LIST, SET):
            expires = d.get("x") or 0.0
            return cls(d["t"], d.get("v"), float(expires) if isinstance(expires, (int, float)) else 0.0)
        return cls(STRING, data.decode("utf-8", "replace"))

    def expect(self, kind: str, key: str) -> Any:
        """The value, if this record is of ``kind`` (Redis' WRONGTYPE otherwise)."""
        if self.kind != kind:
            raise InvocationError(f"key {key!r} holds a {self.kind}, not a {kind}")
        return self.value


class Keep:
    """``mutate`` result meaning: write nothing."""


KEEP: Final = Keep()
Mutation = Callable[[Record | None], tuple[Record | Keep | None, T]]


class Store:
    """A bucket of records. Every method takes and returns user keys."""

    def __init__(self, kv: KeyValue, bucket: str) -> None:
        self.kv = kv
        self.bucket = bucket
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def _read(self, encoded: str) -> tuple[Record | None, int]:
        """``(record or None when absent/expired, revision or 0 when there is nothing to replace)``."""
        try:
            entry = await self.kv.get(encoded)
        except nats.js.errors.KeyNotFoundError:
            return None, 0
        record = Record.from_bytes(entry.value or b"")
        revision = entry.revision or 0
        return (None if record.expired(time.time()) else record), revision

    async def get(self, key: str) -> Record | None:
        return (await self._read(encode_key(key)))[0]

    async def put(self, key: str, record: Record) -> None:
        await self.kv.put(encode_key(key), record.to_bytes())

    def _lock(self, encoded: str) -> asyncio.Lock:
        lock = self._locks.get(encoded)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[encoded] = lock
        return lock

    async def mutate(self, key: str, change: Mutation[T]) -> T:
        """Apply ``change(current) -> (new record | None to delete | KEEP, result)`` atomically.

        ``change`` may run more than once (on conflict it sees the newer record); it must be pure.
        """
        encoded = encode_key(key)
        async with self._lock(encoded):
            for attempt in range(_MAX_ATTEMPTS):
                current, revision = await self._read(encoded)
                new, result = change(current)
                try:
                    await self._write(encoded, new, revision)
                    return result
                except nats.js.errors.KeyWrongLastSequenceError:
                    pass
                except nats.js.errors.APIError as exc:
                    if exc.err_code not in _WRONG_LAST_SEQUENCE:
                        raise
                # another writer won the race: back off a little, re-read, try again
                await asyncio.sleep(random.uniform(0, 0.002) * min(attempt + 1, 10))
        raise ProviderError(f"key {key!r} in bucket {self.bucket} too contended: gave up after {_MAX_ATTEMPTS} tries")

    async def _write(self, encoded: str, new: Record | Keep | None, revision: int) -> None:
        if isinstance(new, Keep):
            return
        if new is None:
            if revision:
                await self.kv.delete(encoded, last=revision)
        elif revision:
            await self.kv.update(encoded, new.to_bytes(), last=revision)
        else:
            await self.kv.create(encoded, new.to_bytes())
