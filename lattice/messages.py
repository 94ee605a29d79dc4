"""The msgpack messages of SPEC §4: ``Entity``, ``Invocation``, ``InvocationResponse``, ``LinkDefinition``.

Field names are exactly SPEC's. Decoding is tolerant: unknown keys are ignored, ``msg`` is accepted as
``str`` or ``bin``, missing optional fields take defaults; anything that is not a map of the right shape
raises ``InvocationError`` (never a bare ``KeyError``/``TypeError``).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgpack

from lattice.errors import InvocationError


def pack(value: Any) -> bytes:
    """msgpack with the bin type for bytes (what wasmCloud 0.x's rmp-serde expects)."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    """Strict-size msgpack decoding; raises ``InvocationError`` on malformed input."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise InvocationError(f"malformed msgpack: {exc}") from exc


def _map(obj: Any, what: str) -> dict[Any, Any]:
    if not isinstance(obj, dict):
        raise InvocationError(f"malformed {what}: expected a map, got {type(obj).__name__}")
    return obj


def _str(d: dict[Any, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if type(v) is str:  # the common case first: this runs a dozen times per invocation
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else default


def _bytes(d: dict[Any, Any], key: str) -> bytes:
    v = d.get(key, b"")
    if type(v) is bytes:
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, list):  # some encoders write Vec<u8> as an array of ints
        try:
            return bytes(v)
        except (ValueError, TypeError) as exc:
            raise InvocationError(f"malformed {key}: {exc}") from exc
    return b""


def _int(d: dict[Any, Any], key: str) -> int:
    v = d.get(key, 0)
    return v if isinstance(v, int) else 0


#: What a receiver adds to an invocation's ``deadline_ms`` for clocks that differ between machines:
#: better run a call whose caller has just left than drop one it still waits for.
CLOCK_SKEW_S = 1.0


@dataclass(frozen=True, slots=True)
class Entity:
    """An origin or target: an actor (``contract_id`` empty) or a provider (contract + link)."""

    public_key: str
    contract_id: str = ""
    link_name: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"public_key": self.public_key, "contract_id": self.contract_id, "link_name": self.link_name}

    @classmethod
    def from_obj(cls, obj: Any) -> Entity:
        d = _map(obj, "entity")
        if len(d) == 3 and all(type(v) is str for v in d.values()):  # the shape every sender writes
            return cls(d.get("public_key", ""), d.get("contract_id", ""), d.get("link_name", ""))
        return cls(_str(d, "public_key"), _str(d, "contract_id"), _str(d, "link_name"))


@dataclass(frozen=True, slots=True)
class Invocation:
    """A call across the lattice (SPEC §4)."""

    origin: Entity
    target: Entity
    operation: str
    msg: bytes
    host_id: str = ""
    encoded_claims: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    content_length: int = -1
    trace_context: dict[str, str] = field(default_factory=dict)
    #: Beyond SPEC §4: Unix time in ms after which the caller no longer waits (0: none, as from 0.x peers).
    #: A receiver drops an invocation still waiting to run past it (nats.py#667: work for callers who left).
    deadline_ms: int = 0
    #: Beyond SPEC §4: ``seal.Sealer.vouch(encoded_claims)``, an HMAC by which a receiver holding the same
    #: cluster seed authenticates the claims without an Ed25519 check (sent only when set; docs/security.md).
    claims_mac: bytes = b""

    def to_msgpack(self) -> bytes:
        d: dict[str, Any] = {
            "id": self.id,
            "origin": self.origin.to_dict(),
            "target": self.target.to_dict(),
            "operation": self.operation,
            "msg": self.msg,
            "host_id": self.host_id,
            "encoded_claims": self.encoded_claims,
            "content_length": len(self.msg) if self.content_length < 0 else self.content_length,
            "trace_context": self.trace_context,
        }
        if self.deadline_ms:
            d["deadline_ms"] = self.deadline_ms
        if self.claims_mac:
            d["claims_mac"] = self.claims_mac
        return pack(d)

    def deadline(self) -> float | None:
        """``deadline_ms`` on this process's monotonic clock, or None when the caller set none."""
        if not self.deadline_ms:
            return None
        return time.monotonic() + (self.deadline_ms / 1000 - time.time()) + CLOCK_SKEW_S

    @classmethod
    def from_msgpack(cls, data: bytes) -> Invocation:
        d = _map(unpack(data), "invocation")
        tc = d.get("trace_context")
        return cls(
            id=_str(d, "id"),
            origin=Entity.from_obj(d.get("origin", {})),
            target=Entity.from_obj(d.get("target", {})),
            operation=_str(d, "operation"),
            msg=_bytes(d, "msg"),
            host_id=_str(d, "host_id"),
            encoded_claims=_str(d, "encoded_claims"),
            content_length=_int(d, "content_length"),
            trace_context={str(k): str(v) for k, v in tc.items()} if isinstance(tc, dict) and tc else {},
            deadline_ms=max(_int(d, "deadline_ms"), 0),
            claims_mac=_bytes(d, "claims_mac"),
        )


@dataclass(frozen=True, slots=True)
class InvocationResponse:
    """The answer to every invocation; ``error`` set means failure (SPEC §4).

    ``error_kind`` (beyond SPEC, sent only with ``error``) is the error's ``kind`` (``lattice.errors``): "busy",
    "deadline", ... so the caller raises the same class as the callee. Peers that do not know it ignore it (SPEC:
    unknown keys ignored); one that sends none is answered as a plain ``RemoteError``.
    """

    invocation_id: str
    msg: bytes = b""
    error: str | None = None
    content_length: int = -1
    error_kind: str | None = None

    def to_msgpack(self) -> bytes:
        d: dict[str, Any] = {
            "invocation_id": self.invocation_id,
            "msg": self.msg,
            "content_length": len(self.msg) if self.content_length < 0 else self.content_length,
        }
        if self.error is not None:
            d["error"] = self.error
            if self.error_kind:
                d["error_kind"] = self.error_kind
        return pack(d)

    @classmethod
    def from_msgpack(cls, data: bytes) -> InvocationResponse:
        d = _map(unpack(data), "invocation response")
        err = d.get("error")
        return cls(
            invocation_id=_str(d, "invocation_id"),
            msg=_bytes(d, "msg"),
            error=(err.decode() if isinstance(err, bytes) else str(err)) if err else None,
            content_length=_int(d, "content_length"),
            error_kind=kind if err and isinstance(kind := d.get("error_kind"), str) and kind else None,
        )


@dataclass(frozen=True, slots=True)
class LinkDefinition:
    """A link between an actor and a provider for one contract under one link name (SPEC §4).

    Stored as JSON in ``LATTICEDATA_{lattice}`` under ``key``.
    """

    actor_id: str
    provider_id: str
    contract_id: str
    link_name: str = "default"
    values: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """KV key: one link per (actor, contract, link name). The contract and link name go in as a
        hash of both, NUL-separated: any spelling is a valid key and no two triples share one
        (``a:b_c``/``a_b:c`` did when ``:`` became ``_``)."""
        digest = hashlib.sha256(f"{self.contract_id}\0{self.link_name}".encode()).hexdigest()[:40]
        return f"LINKDEF_{self.actor_id}_{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "provider_id": self.provider_id,
            "contract_id": self.contract_id,
            "link_name": self.link_name,
            "values": dict(self.values),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> LinkDefinition:
        d = _map(obj, "link definition")
        values = d.get("values") or {}
        if not isinstance(values, dict):
            raise InvocationError("malformed link definition: values must be a map")
        link = cls(
            actor_id=_str(d, "actor_id"),
            provider_id=_str(d, "provider_id"),
            contract_id=_str(d, "contract_id"),
            link_name=_str(d, "link_name") or "default",
            values={str(k): str(v) for k, v in values.items()},
        )
        if not (link.actor_id and link.provider_id and link.contract_id):
            raise InvocationError("malformed link definition: actor_id, provider_id and contract_id are required")
        return link
