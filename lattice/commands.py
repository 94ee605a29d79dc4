"""The host ↔ control plane commands (SPEC §4, §5) as types both sides use: the control plane's scheduler
plans them, the reconciler sends ``to_body()`` on ``wasmbus.ctl.{lattice}.cmd.{host_id}.{verb}``, the host
parses the body with ``from_body`` and answers a ``CommandReply``. Every verb has its type: ``scale``, ``lp``,
``sp`` (what the planner sends), and wasmCloud 0.x's ``la``, ``sa`` and ``stop``; ``DeleteLink`` is the body of
``linkdefs.del``, ``Auction`` a request for bids, ``WakeActor`` the request that starts an actor scaled to
zero. The inventory a host reports is ``lattice.inventory``.

Parsing is tolerant as wasmCloud 0.x peers are (unknown keys ignored, ``image_ref`` accepted for
``actor_ref``, ``count`` 1 when absent) and strict where a wrong value would do harm: a bad count,
annotations or properties that are not maps, a missing reference, all ``ConfigError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from lattice.errors import ConfigError


def str_map(value: Any, name: str) -> dict[str, str]:
    """A ``{str: str}`` field of a command (absent: empty); ``ConfigError`` for anything but a map."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a map")
    return {str(k): str(v) for k, v in value.items()}


def natural(value: Any, name: str) -> int:
    """``value`` when it is a non-negative integer; ``ConfigError`` naming the field otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def count_of(value: Any) -> int:
    return natural(value, "count")


def _map(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a map")
    return value


def required(body: Mapping[str, Any], key: str) -> str:
    """A field every such body has: a non-empty string, else ``ConfigError`` naming it."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} is required")
    return value


def _owner(body: Mapping[str, Any]) -> dict[str, str] | None:
    """The owner whose share a stop is for (its ``annotations``); ``None`` (absent) stops every owner's."""
    annotations = body.get("annotations")
    return str_map(annotations, "annotations") if annotations is not None else None


def _with_owner(body: dict[str, Any], owner: dict[str, str] | None) -> dict[str, Any]:
    return body if owner is None else {**body, "annotations": owner}


@dataclass(frozen=True, slots=True)
class ScaleActor:
    """Set ``host_id``'s instance count of ``actor_id`` with these ``annotations`` to exactly ``count``.

    ``count`` 0 stops them; ``image_ref`` is then empty when the planner no longer knows the image.
    """

    verb: ClassVar[str] = "scale"
    host_id: str
    actor_id: str
    image_ref: str
    count: int
    annotations: dict[str, str]
    properties: dict[str, Any] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "actor_ref": self.image_ref,
            "count": self.count,
            "annotations": self.annotations,
            "properties": self.properties,
        }

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> ScaleActor:
        image_ref = body.get("actor_ref") or body.get("image_ref")
        actor_id = body.get("actor_id")
        return cls(
            host_id,
            actor_id if isinstance(actor_id, str) else "",
            image_ref if isinstance(image_ref, str) else "",
            count_of(body.get("count", 1)),
            str_map(body.get("annotations"), "annotations"),
            _map(body.get("properties"), "properties"),
        )


@dataclass(frozen=True, slots=True)
class StartProvider:
    """Start ``provider_id`` (the image's bundled provider) under ``link_name`` on ``host_id``."""

    verb: ClassVar[str] = "lp"
    host_id: str
    provider_id: str
    image_ref: str
    link_name: str
    contract_id: str
    config: dict[str, Any]
    annotations: dict[str, str]

    def to_body(self) -> dict[str, Any]:
        return {
            "provider_ref": self.image_ref,
            "provider_id": self.provider_id,
            "link_name": self.link_name,
            "annotations": self.annotations,
            "config": self.config,
        }

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> StartProvider:
        ref = required(body, "provider_ref")
        provider_id, contract_id = body.get("provider_id"), body.get("contract_id")
        return cls(
            host_id,
            provider_id if isinstance(provider_id, str) else "",
            ref,
            str(body.get("link_name") or "default"),
            contract_id if isinstance(contract_id, str) else "",
            _map(body.get("config"), "config"),
            str_map(body.get("annotations"), "annotations"),
        )


@dataclass(frozen=True, slots=True)
class StopProvider:
    """Stop ``provider_id`` running under ``link_name`` on ``host_id``: one owner's share (``annotations``), or
    with ``annotations`` ``None`` (absent from the body) the whole provider."""

    verb: ClassVar[str] = "sp"
    host_id: str
    provider_id: str
    link_name: str
    annotations: dict[str, str] | None

    def to_body(self) -> dict[str, Any]:
        return _with_owner({"provider_id": self.provider_id, "link_name": self.link_name}, self.annotations)

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> StopProvider:
        return cls(host_id, required(body, "provider_id"), str(body.get("link_name") or "default"), _owner(body))


@dataclass(frozen=True, slots=True)
class LaunchActor:
    """wasmCloud 0.x ``la``: ``count`` more instances of ``image_ref`` for the owner ``annotations`` on
    ``host_id`` (on top of what that owner already runs there; ``scale`` sets the count instead)."""

    verb: ClassVar[str] = "la"
    host_id: str
    image_ref: str
    count: int = 1
    annotations: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"actor_ref": self.image_ref, "count": self.count, "annotations": self.annotations}
        if self.properties:
            body["properties"] = self.properties
        return body

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> LaunchActor:
        ref = body.get("actor_ref") or body.get("image_ref")
        if not isinstance(ref, str) or not ref:
            raise ConfigError("actor_ref is required")
        return cls(
            host_id,
            ref,
            count_of(body.get("count", 1)),
            str_map(body.get("annotations"), "annotations"),
            _map(body.get("properties"), "properties"),
        )

    def scale_to(self, count: int) -> ScaleActor:
        """The ``scale`` that does this launch on a host where the owner runs ``count - self.count`` already."""
        return ScaleActor(self.host_id, "", self.image_ref, count, self.annotations, self.properties)


@dataclass(frozen=True, slots=True)
class StopActor:
    """wasmCloud 0.x ``sa``: stop one owner's instances (``annotations``) of ``actor_id`` on ``host_id``, or
    with ``annotations`` ``None`` (absent from the body) every instance of it."""

    verb: ClassVar[str] = "sa"
    host_id: str
    actor_id: str
    annotations: dict[str, str] | None = None

    def to_body(self) -> dict[str, Any]:
        return _with_owner({"actor_id": self.actor_id}, self.annotations)

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> StopActor:
        return cls(host_id, required(body, "actor_id"), _owner(body))


@dataclass(frozen=True, slots=True)
class StopHost:
    """``stop``: ``host_id`` drains its calls, then leaves the lattice (its supervisor decides what next)."""

    verb: ClassVar[str] = "stop"
    host_id: str

    def to_body(self) -> dict[str, Any]:
        return {"host_id": self.host_id}

    @classmethod
    def from_body(cls, host_id: str, body: Mapping[str, Any]) -> StopHost:
        return cls(host_id)  # wasmCloud 0.x also sends its timeout: the host drains with its own


Command: TypeAlias = ScaleActor | StartProvider | StopProvider
#: every verb of ``wasmbus.ctl.{lattice}.cmd.{host_id}.*``; the planner sends only ``Command``s
HostCommand: TypeAlias = Command | LaunchActor | StopActor | StopHost
#: every control command's type, by the verb that ends its subject
COMMANDS: dict[str, type[HostCommand]] = {
    cls.verb: cls for cls in (LaunchActor, ScaleActor, StopActor, StartProvider, StopProvider, StopHost)
}


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A host's answer to any command: ``accepted`` with what it did (``details``), or refused with ``error``."""

    accepted: bool
    host_id: str = ""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accepted": self.accepted, **({"host_id": self.host_id} if self.host_id else {})}
        if self.error is not None:
            out["error"] = self.error
        return {**out, **self.details}

    @classmethod
    def from_dict(cls, obj: Any) -> CommandReply:
        """Tolerant: anything that is not ``{"accepted": true, ...}`` is a refusal, with its ``error`` if any."""
        if not isinstance(obj, dict):
            return cls(False, error=f"malformed reply: {obj!r}"[:200])
        known = {"accepted", "host_id", "error"}
        error = obj.get("error")
        return cls(
            obj.get("accepted") is True,
            str(obj.get("host_id") or ""),
            str(error) if error is not None else None,
            {k: v for k, v in obj.items() if k not in known},
        )


@dataclass(frozen=True, slots=True)
class Auction:
    """``auction.actor|provider``: every host whose labels hold each ``constraints`` pair bids (answers with
    ``HostInventory.bid()``); the others stay silent. wasmCloud 0.x's ``actor_ref``/``provider_ref`` are ignored."""

    constraints: dict[str, str] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        return {"constraints": self.constraints}

    @classmethod
    def from_body(cls, body: Any) -> Auction:
        if not isinstance(body, Mapping):
            raise ConfigError("an auction is a JSON object")
        return cls(str_map(body.get("constraints"), "constraints"))

    def admits(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.constraints.items())


@dataclass(frozen=True, slots=True)
class WakeActor:
    """``wake`` (any participant → the leading control plane): a call waits for ``actor_id``, scaled to zero;
    the reply is a ``CommandReply`` whose ``accepted`` says whether an instance will start."""

    actor_id: str

    def to_body(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id}

    @classmethod
    def from_body(cls, body: Any) -> WakeActor:
        if not isinstance(body, Mapping):
            raise ConfigError("a wake request is a JSON object")
        return cls(required(body, "actor_id"))


@dataclass(frozen=True, slots=True)
class DeleteLink:
    """``linkdefs.del``: forget the link of ``actor_id`` to ``contract_id`` under ``link_name``."""

    actor_id: str
    contract_id: str
    link_name: str = "default"

    def to_body(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id, "contract_id": self.contract_id, "link_name": self.link_name}

    @classmethod
    def from_body(cls, body: Any) -> DeleteLink:
        if not isinstance(body, Mapping):
            raise ConfigError("a link deletion is a JSON object")
        return cls(required(body, "actor_id"), required(body, "contract_id"), str(body.get("link_name") or "default"))
