"""A host's inventory (SPEC §4 ``get.{host_id}.inv`` and the ``host_heartbeat`` event) and the ``GET /v1/hosts``
row built from it (SPEC §5), as types both sides use: the host builds a ``HostInventory`` and sends
``to_dict()``; the control plane, the CLI and ``lattice up`` read ``from_dict`` and never a dict key.

The JSON shape is the one hosts have always sent (``tests/lattice/test_inventory.py`` pins its bytes).
Decoding is tolerant as wasmCloud 0.x peers need: unknown keys are ignored, optional ones default, a 0.x
heartbeat's ``actors`` map ``{actor_id: count}`` and a provider's ``public_key`` (for ``id``) are read, and a 0.x
instance entry without ``count`` is one instance. The load gauges (calls in flight, waiting, served, failed,
``load``, ``latency_buckets``) count a value of the wrong type as nothing, as the autoscaler always has. It is
strict where a wrong value would mislead the scheduler: no ``host_id`` or actor id, an instance count that is not
a non-negative integer, labels or annotations that are not maps, each a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lattice.commands import natural, str_map
from lattice.errors import ConfigError


def _str(obj: Mapping[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key)
    return default if value is None else str(value)


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else str(value)


def _int(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    return natural(obj.get(key, default), key)


def _gauge(obj: Mapping[str, Any], key: str) -> int:
    """A load counter: a non-negative integer, anything else counts as nothing (0)."""
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _load(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else 0.0


def _buckets(value: Any) -> tuple[int, ...]:
    """A latency histogram (``lattice.loadstats.BOUNDS_MS`` buckets); a bucket of the wrong type counts 0."""
    if not isinstance(value, list):
        return ()
    return tuple(v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0 for v in value)


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    return _list_of(obj.get(key), key)


def _list_of(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list")
    return value


def _map(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a map, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class InstanceShare:
    """``count`` instances of an actor started for one owner (its ``annotations``)."""

    annotations: dict[str, str]
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"annotations": self.annotations, "count": self.count}

    @classmethod
    def from_dict(cls, obj: Any) -> InstanceShare:
        obj = _map(obj, "an actor's instances entry")
        return cls(str_map(obj.get("annotations"), "annotations"), _int(obj, "count", 1))


@dataclass(frozen=True, slots=True)
class WasiView:
    """What an actor's WASI may touch: directories (guest path → host path), read-only, env variable names."""

    dirs: dict[str, str] = field(default_factory=dict)
    readonly: bool = False
    env: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"dirs": self.dirs, "readonly": self.readonly, "env": list(self.env)}

    @classmethod
    def from_dict(cls, obj: Any) -> WasiView:
        obj = _map(obj if obj is not None else {}, "wasi")
        return cls(
            str_map(obj.get("dirs"), "wasi.dirs"), obj.get("readonly") is True, tuple(map(str, _list(obj, "env")))
        )


@dataclass(frozen=True, slots=True)
class ActorInventory:
    """One actor on a host: its image, claims names, owners' shares and its pool's load counters."""

    id: str
    image_ref: str = ""
    name: str | None = None
    call_alias: str | None = None
    api_version: int = 0
    abi: str = "wapc"  # wapc (a core module) or component (SPEC §7)
    instances: tuple[InstanceShare, ...] = ()
    count: int = 0
    in_flight: int = 0
    waiting: int = 0
    live_instances: int = 0
    calls: int = 0
    failures: int = 0
    load: float = 0.0  # calls in the pool, averaged over the last heartbeat interval (lattice.loadstats)
    latency_buckets: tuple[int, ...] = ()  # call durations so far, lattice.loadstats.BOUNDS_MS buckets
    max_instances: int | None = None
    wasi: WasiView = field(default_factory=WasiView)
    properties_key: str = ""  # lattice.properties.properties_key of what this host enforces on it

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image_ref": self.image_ref,
            "name": self.name,
            "call_alias": self.call_alias,
            "api_version": self.api_version,
            "abi": self.abi,
            "instances": [i.to_dict() for i in self.instances],
            "count": self.count,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "live_instances": self.live_instances,
            "calls": self.calls,
            "failures": self.failures,
            "load": self.load,
            "latency_buckets": list(self.latency_buckets),
            "max_instances": self.max_instances,
            "wasi": self.wasi.to_dict(),
            "properties_key": self.properties_key,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> ActorInventory:
        obj = _map(obj, "an actors entry")
        actor_id = obj.get("id")
        if not isinstance(actor_id, str) or not actor_id:
            raise ConfigError("an actors entry needs its id")
        instances = tuple(InstanceShare.from_dict(i) for i in _list(obj, "instances"))
        max_instances = obj.get("max_instances")
        return cls(
            actor_id,
            _str(obj, "image_ref"),
            _opt_str(obj, "name"),
            _opt_str(obj, "call_alias"),
            _int(obj, "api_version"),
            _str(obj, "abi", "wapc"),
            instances,
            _int(obj, "count", sum(i.count for i in instances)),
            _gauge(obj, "in_flight"),
            _gauge(obj, "waiting"),
            _gauge(obj, "live_instances"),
            _gauge(obj, "calls"),
            _gauge(obj, "failures"),
            _load(obj.get("load")),
            _buckets(obj.get("latency_buckets")),
            None if max_instances is None else natural(max_instances, "max_instances"),
            WasiView.from_dict(obj.get("wasi")),
            _str(obj, "properties_key"),
        )


@dataclass(frozen=True, slots=True)
class ProviderInventory:
    """One owner's share of a provider on a host (one entry per owner; one without annotations if none)."""

    id: str
    link_name: str = "default"
    contract_id: str = ""
    image_ref: str = ""
    #: actors whose links it accepted (a listener is up, a bucket open); None when the host cannot tell
    links: tuple[str, ...] | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "link_name": self.link_name,
            "contract_id": self.contract_id,
            "image_ref": self.image_ref,
            "links": list(self.links) if self.links is not None else None,
            "annotations": self.annotations,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> ProviderInventory:
        obj = _map(obj, "a providers entry")
        provider_id = obj.get("id") or obj.get("public_key")  # 0.x heartbeats say public_key
        if not isinstance(provider_id, str):
            raise ConfigError("a providers entry needs its id")
        links = obj.get("links")
        return cls(
            provider_id,
            _str(obj, "link_name", "default") or "default",
            _str(obj, "contract_id"),
            _str(obj, "image_ref"),
            tuple(map(str, links)) if isinstance(links, list) else None,
            str_map(obj.get("annotations"), "annotations"),
        )


def _actors(value: Any) -> tuple[ActorInventory, ...]:
    if isinstance(value, Mapping):  # a wasmCloud 0.x heartbeat: {actor_id: count}
        return tuple(
            ActorInventory(str(k), instances=(InstanceShare({}, natural(v, "count")),), count=natural(v, "count"))
            for k, v in value.items()
        )
    return tuple(ActorInventory.from_dict(a) for a in _list_of(value, "actors"))


@dataclass(frozen=True, slots=True)
class HostInventory:
    """Everything a host runs and how busy it is; a ``draining`` host takes no new work."""

    host_id: str
    labels: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    uptime_seconds: float = 0.0
    actors: tuple[ActorInventory, ...] = ()
    providers: tuple[ProviderInventory, ...] = ()
    instances: int = 0
    in_flight: int = 0
    draining: bool = False
    metrics_url: str | None = None

    @classmethod
    def of(
        cls,
        host_id: str,
        labels: dict[str, str],
        version: str,
        uptime_seconds: float,
        actors: tuple[ActorInventory, ...],
        providers: tuple[ProviderInventory, ...],
        *,
        draining: bool,
        metrics_url: str | None,
    ) -> HostInventory:
        """A host's own inventory: the totals (``instances``, ``in_flight``) summed from its actors."""
        instances, in_flight = sum(a.count for a in actors), sum(a.in_flight for a in actors)
        return cls(
            host_id, labels, version, uptime_seconds, actors, providers, instances, in_flight, draining, metrics_url
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.ping(),
            "actors": [a.to_dict() for a in self.actors],
            "providers": [p.to_dict() for p in self.providers],
            "instances": self.instances,
            "in_flight": self.in_flight,
            "draining": self.draining,
            "metrics_url": self.metrics_url,
        }

    def ping(self) -> dict[str, Any]:
        """The answer to ``ping.hosts``: who and how long up (``from_dict`` reads it, with no actors)."""
        return {
            "host_id": self.host_id,
            "labels": self.labels,
            "version": self.version,
            "uptime_seconds": self.uptime_seconds,
        }

    def bid(self) -> dict[str, Any]:
        """The answer to an ``auction.actor|provider`` whose constraints this host's labels hold."""
        return {"host_id": self.host_id, "labels": self.labels, "instances": self.instances}

    @classmethod
    def from_dict(cls, obj: Any) -> HostInventory:
        obj = _map(obj, "a host inventory")
        host_id = obj.get("host_id")
        if not isinstance(host_id, str) or not host_id:
            raise ConfigError("a host inventory needs its host_id")
        actors = _actors(obj.get("actors"))
        uptime = obj.get("uptime_seconds", 0)
        if not isinstance(uptime, int | float) or isinstance(uptime, bool):
            raise ConfigError(f"uptime_seconds must be a number, got {uptime!r}")
        return cls(
            host_id,
            str_map(obj.get("labels"), "labels"),
            _opt_str(obj, "version"),
            uptime,
            actors,
            tuple(ProviderInventory.from_dict(p) for p in _list(obj, "providers")),
            _int(obj, "instances", sum(a.count for a in actors)),
            _gauge(obj, "in_flight") if "in_flight" in obj else sum(a.in_flight for a in actors),
            obj.get("draining") is True,
            _opt_str(obj, "metrics_url"),
        )


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """An actor in a ``GET /v1/hosts`` row: its id, the name in its claims (if any) and its instance count."""

    id: str
    name: str | None
    count: int

    def label(self, *, wide: bool = False) -> str:
        """The name in its claims (with its id when ``wide``), else its id: ids are never cut short."""
        if self.name:
            return f"{self.name} {self.id}" if wide else self.name
        return self.id


@dataclass(frozen=True, slots=True)
class HostSummary:
    """One row of ``GET /v1/hosts`` (SPEC §5): a host's inventory as the control plane last saw it."""

    id: str
    labels: dict[str, str]
    version: str | None
    uptime_seconds: float
    last_seen_seconds_ago: float
    actors: tuple[ActorSummary, ...]
    providers: tuple[ProviderInventory, ...]
    instances: int
    in_flight: int
    draining: bool
    metrics_url: str | None

    @classmethod
    def of(cls, inv: HostInventory, last_seen_seconds_ago: float) -> HostSummary:
        actors = tuple(ActorSummary(a.id, a.name, a.count) for a in inv.actors)
        return cls(
            inv.host_id,
            inv.labels,
            inv.version,
            inv.uptime_seconds,
            last_seen_seconds_ago,
            actors,
            inv.providers,
            inv.instances,
            inv.in_flight,
            inv.draining,
            inv.metrics_url,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "labels": self.labels,
            "version": self.version,
            "uptime_seconds": self.uptime_seconds,
            "last_seen_seconds_ago": self.last_seen_seconds_ago,
            "actors": [{"id": a.id, "name": a.name, "count": a.count} for a in self.actors],
            "providers": [p.to_dict() for p in self.providers],
            "instances": self.instances,
            "in_flight": self.in_flight,
            "draining": self.draining,
            "metrics_url": self.metrics_url,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> HostSummary:
        """A row read back by the CLI: a ``HostInventory`` under another name for the id, plus when last seen."""
        obj = _map(obj, "a hosts row")
        inv = HostInventory.from_dict({**obj, "host_id": obj.get("id")})
        seen = obj.get("last_seen_seconds_ago", 0.0)
        return cls.of(inv, float(seen) if isinstance(seen, int | float) else 0.0)
