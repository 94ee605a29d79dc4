"""The control plane's durable state in JetStream: applications (every version), artifacts, leader lease.

Applications live in the KV bucket ``LATTICE_CP_{lattice}`` as ``app.<name>`` → JSON ``AppRecord``;
artifact metadata as ``artifact.<hex>``; module bytes in the object store ``LATTICE_ARTIFACTS_{lattice}``
under their digest (where hosts fetch them). A control plane that restarts reads everything back and
resumes without redeploying.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from lattice import subjects
from lattice.connection import key_value, lost_race, object_store, retrying
from lattice.controlplane.model import app_name_problem
from lattice.errors import InvalidName

LEASE_KEY = "leader"


def _app_key(name: str) -> str:
    """``app.<name>``; ``InvalidName`` with the one application-name rule (``model.app_name_problem``)."""
    if problem := app_name_problem(name):
        raise InvalidName(problem)
    return subjects.kv_key(f"app.{name}", f"application name {name[:80]!r}")


def _artifact_key(digest: str) -> str:
    return subjects.kv_key(f"artifact.{digest.removeprefix('sha256:')}", f"artifact digest {digest[:80]!r}")


@dataclass(slots=True)
class AppVersion:
    """One stored version: the manifest text, what its images resolved to, and why it cannot run (if so)."""

    version: str
    manifest: str
    created: float
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AppRecord:
    """An application: its versions (oldest first) and the one deployed (None = undeployed)."""

    name: str
    versions: list[AppVersion] = field(default_factory=list)
    deployed: str | None = None
    #: the last rollout (SPEC §5): {state: progressing|complete|rolled_back, from_version, to_version, step, reason}
    rollout: dict[str, Any] | None = None
    #: versions rolled back from (a failed health gate or by hand): never a default rollback target again
    failed: list[str] = field(default_factory=list)

    def version(self, version: str | None) -> AppVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def latest(self) -> AppVersion:
        return self.versions[-1]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AppRecord:
        d = json.loads(raw)
        rollout = d.get("rollout")
        versions = [AppVersion(**v) for v in d.get("versions", [])]
        failed = [str(v) for v in d.get("failed") or []]
        return cls(d["name"], versions, d.get("deployed"), rollout if isinstance(rollout, dict) else None, failed)


class ControlState:
    """Typed access to the control plane's bucket and the artifact store."""

    def __init__(self, js: JetStreamContext, bucket: str, kv: KeyValue, artifacts: ObjectStore) -> None:
        self.js = js
        self.bucket = bucket
        self.kv = kv
        self.artifacts = artifacts

    @classmethod
    async def open(cls, js: JetStreamContext, lattice: str, *, replicas: int = 1) -> ControlState:
        bucket = subjects.control_state_bucket(lattice)
        kv = await key_value(js, bucket, replicas=replicas)
        store = await object_store(js, subjects.artifacts_bucket(lattice), replicas=replicas)
        return cls(js, bucket, kv, store)

    async def _keys(self, prefix: str) -> list[str]:
        """Live keys under ``prefix``, from the stream's subjects.

        Not ``kv.keys()``: nats-py raises ``NoKeysError`` for an empty bucket *and*, spuriously, while
        JetStream elects a new stream leader; read as "no applications", that once made a reconcile pass
        stop every instance of every application. Here an error propagates and the pass is retried.
        """
        stream, subjects_filter = f"KV_{self.bucket}", f"$KV.{self.bucket}.{prefix}>"
        info = await retrying(lambda: self.js.stream_info(stream, subjects_filter=subjects_filter), stream)
        subjects_seen = info.state.subjects or {}
        return sorted(s.removeprefix(f"$KV.{self.bucket}.") for s in subjects_seen)

    # --- applications ----------------------------------------------------------------------------

    async def get_app(self, name: str) -> AppRecord | None:
        return (await self.get_app_revision(name))[0]

    async def get_app_revision(self, name: str) -> tuple[AppRecord | None, int]:
        """The record and its KV revision (0 when there is none), for ``put_app(..., revision=)``."""
        key = _app_key(name)
        try:
            entry = await retrying(lambda: self.kv.get(key), self.bucket)
        except KeyNotFoundError:
            return None, 0
        record = AppRecord.from_json(entry.value) if entry.value else None
        return record, (entry.revision or 0) if record is not None else 0

    async def put_app(self, record: AppRecord, *, revision: int | None = None) -> bool:
        """Store ``record``. With ``revision`` it is a compare-and-set: written only if the stored
        record is still that revision (0: only if there is none); ``False`` when another writer won."""
        key = _app_key(record.name)
        if revision is None:
            await self.kv.put(key, record.to_json())
            return True
        try:
            if revision:
                await self.kv.update(key, record.to_json(), last=revision)
            else:
                await self.kv.create(key, record.to_json())
        except APIError as exc:
            if not lost_race(exc):
                raise
            return False
        return True

    async def delete_app(self, name: str) -> None:
        await self.kv.delete(_app_key(name))

    async def apps(self) -> list[AppRecord]:
        records = []
        for key in await self._keys("app."):
            record = await self.get_app(key[4:])
            if record is not None:
                records.append(record)
        return records

    # --- artifacts -------------------------------------------------------------------------------

    async def put_artifact(self, digest: str, wasm: bytes, meta: dict[str, Any]) -> None:
        await self.artifacts.put(digest, wasm)
        await self.kv.put(_artifact_key(digest), json.dumps(meta).encode())

    async def artifact(self, digest: str) -> dict[str, Any] | None:
        try:
            entry = await self.kv.get(_artifact_key(digest))
        except KeyNotFoundError:
            return None
        meta: dict[str, Any] = json.loads(entry.value or b"{}")
        return meta

    async def artifacts_list(self) -> list[dict[str, Any]]:
        out = []
        for key in await self._keys("artifact."):
            meta = await self.artifact(key.removeprefix("artifact."))
            if meta:
                out.append(meta)
        return out

    async def pinned_image(self, reference: str) -> dict[str, Any] | None:
        """The artifact an OCI reference pinned by digest was stored as (pulled once, never again)."""
        try:
            entry = await self.kv.get(f"oci.{hashlib.sha256(reference.encode()).hexdigest()}")
        except KeyNotFoundError:
            return None
        meta = json.loads(entry.value or b"{}")
        return meta if meta and await self.artifact(meta["digest"]) is not None else None

    async def pin_image(self, reference: str, meta: dict[str, Any]) -> None:
        await self.kv.put(f"oci.{hashlib.sha256(reference.encode()).hexdigest()}", json.dumps(meta).encode())

    # --- leadership ------------------------------------------------------------------------------

    async def try_lead(self, me: str, ttl_s: float) -> bool:
        """Take or renew the leader lease (compare-and-set on the key's revision). True if ours."""
        now = time.time()
        body = json.dumps({"id": me, "until": now + ttl_s}).encode()
        try:
            entry = await self.kv.get(LEASE_KEY)
        except KeyNotFoundError:
            try:
                await self.kv.create(LEASE_KEY, body)
                return True
            except Exception:
                return False
        current = json.loads(entry.value or b"{}")
        if current.get("id") != me and float(current.get("until", 0)) > now:
            return False
        try:
            await self.kv.update(LEASE_KEY, body, last=entry.revision)
            return True
        except KeyWrongLastSequenceError:
            return False

    async def release(self, me: str) -> None:
        try:
            entry = await self.kv.get(LEASE_KEY)
        except KeyNotFoundError:
            return
        if json.loads(entry.value or b"{}").get("id") == me:
            await self.kv.delete(LEASE_KEY)
