"""The actors running on one host: a pool per actor, instance counts per owner (annotations).

A ``scale`` sets how many instances an owner (an application component, named by its annotations)
wants on this host; the actor runs while any owner wants it. ``properties`` from the manifest turn
into ``ActorLimits`` and ``WasiGrants`` here (SPEC §1, issue limits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nats.aio.subscription import Subscription

from lattice.errors import ConfigError
from lattice.host import limits as caps
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, CompiledActor, WasiGrants
from lattice.inventory import ActorInventory, InstanceShare, WasiView
from lattice.loadstats import Sampler, trimmed
from lattice.messages import LinkDefinition
from lattice.properties import LIMIT_CAPS, properties_key

if TYPE_CHECKING:
    from lattice.host.component.engine import CompiledComponent

DEFAULT_MAX_INSTANCES = 16


def annotations_key(annotations: dict[str, str]) -> str:
    """A stable key for an annotation set (JSON with sorted keys)."""
    return json.dumps(annotations, sort_keys=True, separators=(",", ":"))


def limits_from(properties: dict[str, Any], count: int) -> ActorLimits:
    """``properties.limits`` {deadline_ms, max_memory_mb, max_instances, max_payload_mb} → ActorLimits.

    Raises ``ConfigError`` naming the bad value, also for one over the host's hard caps
    (``host.limits``) and for more warm instances (``count``) than ``MAX_INSTANCES``.
    """
    raw = properties.get("limits") or {}
    if not isinstance(raw, dict):
        raise ConfigError("properties.limits must be a map")
    if count > caps.MAX_INSTANCES:
        raise ConfigError(f"{count} instances asked of one host: at most {caps.MAX_INSTANCES} per actor per host")
    base = ActorLimits()

    def positive(name: str, cap: int) -> int | None:
        value = raw.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"properties.limits.{name} must be a positive integer, got {value!r}")
        if value > cap:
            raise ConfigError(f"properties.limits.{name} is at most {cap} on this host, got {value}")
        return value

    deadline_ms, memory_mb, instances, payload_mb = (positive(name, cap) for name, cap in LIMIT_CAPS.items())
    return ActorLimits(
        deadline_s=deadline_ms / 1000 if deadline_ms else base.deadline_s,
        max_memory_bytes=memory_mb * 1024 * 1024 if memory_mb else base.max_memory_bytes,
        max_instances=instances or max(count, DEFAULT_MAX_INSTANCES),
        max_waiting=base.max_waiting,
        max_payload_bytes=payload_mb * 1024 * 1024 if payload_mb else base.max_payload_bytes,
    )


def wasi_from(properties: dict[str, Any], allowed_dirs: Sequence[Path] = ()) -> WasiGrants:
    """``properties.wasi`` {dirs: {guest: host}, readonly, env, args} and ``properties.allowed_hosts``
    (where a wasi:http component's outgoing HTTP may go) → WasiGrants (nothing by default).

    Every granted host directory must lie under one of ``allowed_dirs`` (the host operator's
    ``--allow-dir``), whatever the manifest asks: ``ConfigError`` otherwise.
    """
    raw = properties.get("wasi") or {}
    if not isinstance(raw, dict):
        raise ConfigError("properties.wasi must be a map")
    dirs, env, args = raw.get("dirs") or {}, raw.get("env") or {}, raw.get("args") or []
    if not isinstance(dirs, dict) or not isinstance(env, dict) or not isinstance(args, list):
        raise ConfigError("properties.wasi.dirs and .env must be maps and .args a list")
    roots = [Path(d).resolve() for d in allowed_dirs]
    for host_path in dirs.values():
        text = str(host_path)
        if "\0" in text or not any(Path(text).resolve().is_relative_to(r) for r in roots):
            allowed = f"({', '.join(map(str, roots))})" if roots else "(none; its operator may allow one: --allow-dir)"
            raise ConfigError(f"properties.wasi.dirs: {text!r} is not under a directory this host allows {allowed}")
    hosts = properties.get("allowed_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError("properties.allowed_hosts must be a list of host names, e.g. [api.example.com]")
    return WasiGrants(
        dirs={str(k): str(v) for k, v in dirs.items()},
        readonly=bool(raw.get("readonly", False)),
        env={str(k): str(v) for k, v in env.items()},
        args=tuple(str(a) for a in args),
        allowed_hosts=tuple(hosts),
    )


def admit(
    running: RunningActor, count: int, annotations: dict[str, str], properties: dict[str, Any], allowed: Sequence[Path]
) -> bool:
    """May this owner have ``count`` instances of ``running`` with ``properties``? True: yes, once the actor
    restarts with them (this owner is its only one); False: yes, as it runs.

    An actor's instances on a host are keyed by image *and* the properties it enforces (``properties_key``):
    every request is checked (grants, limits, at most ``MAX_INSTANCES`` per actor here, whoever else runs
    it), and another property set is refused (``ConfigError``) while other owners run the actor with theirs.
    """
    others = running.others(annotations)
    limits_from(properties, others + count)
    wasi_from(properties, allowed)
    if running.properties_key == properties_key(properties):
        return False
    if others:
        mine = annotations_key(annotations)
        owners = "; ".join(sorted(k for k in running.owners if k != mine))
        raise ConfigError(
            f"actor {running.actor_id} runs on this host for {owners} with other properties"
            " (wasi, limits, allowed_hosts, config): a host runs one set per actor"
        )
    return True


def actor_config(actor_id: str, links: list[LinkDefinition], properties: dict[str, Any]) -> dict[str, str]:
    """A component's ``wasi:config`` (SPEC §7): the values of its links, then the manifest's ``config``
    (a map, or wadm's list of ``{name, properties}``) over them."""
    config: dict[str, str] = {}
    for link in links:
        if link.actor_id == actor_id:
            config.update({str(k): str(v) for k, v in link.values.items()})
    raw = properties.get("config") or {}
    entries = raw if isinstance(raw, list) else [{"properties": raw}]
    for entry in entries:
        values = entry.get("properties") if isinstance(entry, dict) else None
        if isinstance(values, dict):
            config.update({str(k): str(v) for k, v in values.items()})
    return config


@dataclass(slots=True)
class RunningActor:
    """One actor on this host: its pool, its owners' counts and its NATS subscription."""

    compiled: CompiledActor | CompiledComponent
    pool: ActorPool
    image_ref: str
    properties: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    owners: dict[str, dict[str, str]] = field(default_factory=dict)
    subscription: Subscription | None = None
    sampler: Sampler | None = None  # the pool's load averaged over each heartbeat interval

    def sample_load(self) -> None:
        """Average the calls in this actor's pool since the last heartbeat (the inventory's ``load``)."""
        if self.sampler is None or self.sampler.meter is not self.pool.meter:
            self.sampler = Sampler(self.pool.meter)
        else:
            self.sampler.sample()

    @property
    def properties_key(self) -> str:
        """The key of the property set this actor's pool enforces (``lattice.properties.properties_key``)."""
        return properties_key(self.properties)

    def others(self, annotations: dict[str, str]) -> int:
        """Instances here that owners other than ``annotations`` hold."""
        return self.count - self.counts.get(annotations_key(annotations), 0)

    @property
    def actor_id(self) -> str:
        return self.compiled.actor_id

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def set_count(self, annotations: dict[str, str], count: int) -> None:
        key = annotations_key(annotations)
        if count <= 0:
            self.counts.pop(key, None)
            self.owners.pop(key, None)
        else:
            self.counts[key] = count
            self.owners[key] = dict(annotations)

    def inventory(self) -> ActorInventory:
        stats = self.pool.stats()
        claims = self.compiled.claims
        return ActorInventory(
            self.actor_id,
            self.image_ref,
            claims.name if claims else None,
            claims.call_alias if claims else None,
            self.pool.api_version,
            self.compiled.abi,
            tuple(InstanceShare(self.owners[k], c) for k, c in self.counts.items()),
            self.count,
            stats["in_flight"],
            stats["waiting"],
            stats["instances"],
            stats["calls"],
            stats["failures"],
            round(self.sampler.load, 3) if self.sampler is not None else 0.0,
            tuple(trimmed(self.pool.meter.buckets)),  # an idle actor reports none
            self.pool.limits.max_instances,
            WasiView(self.pool.wasi.dirs, self.pool.wasi.readonly, tuple(sorted(self.pool.wasi.env))),
            self.properties_key,
        )
