"""One JetStream KV bucket seen as a Redis-like keyspace: typed records, expiry, compare-and-set.

Owns how user keys and values sit in the bucket; knows nothing of actors, links or msgpack payloads
of the contract (that is ``lattice.providers.keyvalue``).

- Keys: any string of up to ``MAX_KEY_BYTES`` (64 KiB) of UTF-8. Characters outside
  ``[A-Za-z0-9_/-]`` (``.`` and ``=`` included) are written as ``=XX`` per UTF-8 byte, so every key is a
  valid NATS KV key with no empty subject token; the empty key is ``=``. An encoded key longer than
  ``MAX_PLAIN_KEY`` characters is stored as ``==`` + the SHA-256 (hex) of the key, and its record
  keeps the key itself (``k``): the KV subject ``$KV.<bucket>.<key>`` stays far below nats-server's
  max control line (4 KiB), which closes the connection of whoever sends a longer one, whatever the
  user's key. ``decode_key`` inverts ``encode_key`` except for those digests (``None``). A key over
  the limit is refused with an ``InvocationError``, which the actor sees as a host-call error.
- Values: one msgpack map per key, ``{t: "string"|"list"|"set", v: str | [str], x: expiry, k?: key}`` where
  ``x`` is a Unix time in seconds (0 = never). Lists and sets live in one key each (sets sorted).
  An expired record reads as absent and is deleted by the next write to its key. A value some other
  tool wrote (not such a map) reads as a string of its UTF-8 text.
- Writes that depend on what is there (``mutate``) are compare-and-set on the key's revision, retried
  on conflict, and serialised per key inside this process so local callers do not fight each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
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

from lattice.connection import lost_race
from lattice.errors import InvocationError, ProviderError
from lattice.messages import pack

T = TypeVar("T")

STRING: Final = "string"
LIST: Final = "list"
SET: Final = "set"

_SAFE: Final = frozenset(string.ascii_letters + string.digits + "_-/")
_MAX_ATTEMPTS: Final = 200
#: the longest user key, in UTF-8 bytes (Redis allows more; a JetStream record holds at most 1 MiB)
MAX_KEY_BYTES: Final = 64 * 1024
#: encoded keys longer than this are stored under their digest
MAX_PLAIN_KEY: Final = 200
_DIGEST: Final = "=="


def encode_key(key: str) -> str:
    """The NATS KV key that stores user key ``key``; ``InvocationError`` for a key over ``MAX_KEY_BYTES``."""
    raw = key.encode("utf-8")
    if len(raw) > MAX_KEY_BYTES:
        raise InvocationError(
            f"key of {len(raw)} bytes refused: keys may be at most {MAX_KEY_BYTES} bytes (UTF-8) long"
        )
    if key == "":
        return "="
    if len(raw) > MAX_PLAIN_KEY:  # its encoding would be longer still
        return _DIGEST + hashlib.sha256(raw).hexdigest()
    encoded = "".join(ch if ch in _SAFE else "".join(f"={b:02X}" for b in ch.encode("utf-8")) for ch in key)
    return encoded if len(encoded) <= MAX_PLAIN_KEY else _DIGEST + hashlib.sha256(raw).hexdigest()


def shown(key: str) -> str:
    """``key`` for an error message: quoted, and cut short when long."""
    return repr(key) if len(key) <= 80 else f"{key[:60]!r}… ({len(key)} characters)"


def is_digest(encoded: str) -> bool:
    """Whether ``encoded`` is a long key's digest (its record holds the key)."""
    return encoded.startswith(_DIGEST)


def decode_key(encoded: str) -> str | None:
    """The user key stored under ``encoded`` (inverse of ``encode_key``); ``None`` for a digest."""
    if is_digest(encoded):
        return None
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
    key: str | None = None  # the user key, kept only when it is stored under its digest

    def expired(self, now: float) -> bool:
        return bool(self.expires) and self.expires <= now

    def to_bytes(self) -> bytes:
        data = {"t": self.kind, "v": self.value, "x": self.expires}
        return pack(data if self.key is None else {**data, "k": self.key})

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        try:
            d = msgpack.unpackb(data, raw=False)
        except Exception:
            d = None
        if isinstance(d, dict) and d.get("t") in (STRING, LIST, SET):
            expires = d.get("x") or 0.0
            key = d.get("k") if isinstance(d.get("k"), str) else None
            return cls(d["t"], d.get("v"), float(expires) if isinstance(expires, (int, float)) else 0.0, key)
        return cls(STRING, data.decode("utf-8", "replace"))

    def expect(self, kind: str, key: str) -> Any:
        """The value, if this record is of ``kind`` (Redis' WRONGTYPE otherwise)."""
        if self.kind != kind:
            raise InvocationError(f"key {shown(key)} holds a {self.kind}, not a {kind}")
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
        encoded = encode_key(key)
        await self.kv.put(encoded, _keyed(record, key, encoded).to_bytes())

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
                if isinstance(new, Record):
                    new = _keyed(new, key, encoded)
                try:
                    await self._write(encoded, new, revision)
                    return result
                except nats.js.errors.APIError as exc:
                    if not lost_race(exc):
                        raise
                # another writer won the race: back off a little, re-read, try again
                await asyncio.sleep(random.uniform(0, 0.002) * min(attempt + 1, 10))
        raise ProviderError(
            f"key {shown(key)} in bucket {self.bucket} too contended: gave up after {_MAX_ATTEMPTS} tries"
        )

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


def _keyed(record: Record, key: str, encoded: str) -> Record:
    """``record`` carrying its user key when it is stored under a digest (so the bucket stays readable)."""
    return dataclasses.replace(record, key=key) if is_digest(encoded) else record
