"""An application's status (SPEC §5): what should run (``Desired``) against what the hosts report.

``app_status`` is pure: the reconciler hands it the desired state, the live hosts' views, what cannot be
placed and which hosts refused what, and gets ``{type, message, components}`` back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lattice.caps import MAX_INSTANCES
from lattice.controlplane.model import ComponentKey, DesiredActor, DesiredProvider, HostView, owner_of
from lattice.controlplane.state import AppRecord
from lattice.messages import LinkDefinition
from lattice.properties import properties_key


@dataclass(slots=True)
class Desired:
    actors: list[DesiredActor] = field(default_factory=list)
    providers: list[DesiredProvider] = field(default_factory=list)
    links: list[LinkDefinition] = field(default_factory=list)
    app_links: dict[str, list[LinkDefinition]] = field(default_factory=dict)


def _eligible(hosts: Sequence[HostView], comp: DesiredActor | DesiredProvider) -> list[HostView]:
    spreads = comp.scaler.spread
    if not spreads:
        return list(hosts)
    return [h for h in hosts if any(all(h.labels.get(k) == v for k, v in s.requirements.items()) for s in spreads)]


def _running(hosts: Sequence[HostView], comp: DesiredActor | DesiredProvider) -> tuple[list[dict[str, Any]], int]:
    """Where ``comp``'s current image runs, and how many of its instances still run another (older) one."""
    placements, stale = [], 0
    for host in hosts:
        count = 0
        for a in host.actors:
            if owner_of(a.annotations) == comp.key:
                current = isinstance(comp, DesiredActor) and (a.actor_id, a.properties_key) == (
                    comp.actor_id,
                    properties_key(comp.properties),
                )
                count, stale = (count + a.count, stale) if current else (count, stale + a.count)
        for p in host.providers:
            if owner_of(p.annotations) == comp.key:
                current = isinstance(comp, DesiredProvider) and (p.provider_id, p.link_name) == (
                    comp.provider_id,
                    comp.link_name,
                )
                count, stale = (count + 1, stale) if current else (count, stale + 1)
        if count:
            placements.append({"host_id": host.id, "count": count})
    return placements, stale


def app_status(
    record: AppRecord,
    desired: Desired,
    hosts: Sequence[HostView],
    unplaced: dict[ComponentKey, str],
    refusals: dict[ComponentKey, dict[str, str]],
    link_failures: Mapping[tuple[str, str, str], str] | None = None,
) -> dict[str, Any]:
    """``{type, message, components: [{name, type, desired, running, placements}]}`` (SPEC §5)."""
    if record.deployed is None:
        return {"type": "undeployed", "message": "not deployed", "components": []}
    version = record.version(record.deployed)
    if version is not None and version.problems:  # nothing of it runs (images, unsupported capabilities)
        return {"type": "failed", "message": " | ".join(version.problems), "components": []}
    components, problems, moving = [], [], False
    everything: list[DesiredActor | DesiredProvider] = [*desired.providers, *desired.actors]
    mine = [c for c in everything if c.app == record.name]
    for comp in mine:
        eligible = _eligible(hosts, comp)
        want = comp.scaler.replicas * (len(eligible) if comp.scaler.kind == "daemonscaler" else 1)
        if isinstance(comp, DesiredProvider):
            want = min(want, len(eligible)) if comp.scaler.kind == "spreadscaler" else len(eligible)
        # With no eligible host the capped count is 0: still at least one is wanted (wadm#346: never "0/0 deployed").
        wanted_somewhere = want or comp.scaler.replicas
        placements, stale = _running(hosts, comp)
        running = sum(p["count"] for p in placements)
        kind = "actor" if isinstance(comp, DesiredActor) else "capability"
        entry: dict[str, Any] = {
            "name": comp.component,
            "type": kind,
            "desired": want,
            "running": running,
            "placements": placements,
        }
        if isinstance(comp, DesiredActor):  # what it was granted, in plain sight (SPEC §1)
            entry["grants"] = {"wasi": comp.properties.get("wasi") or {}, "limits": comp.properties.get("limits") or {}}
        components.append(entry)
        refused, room = refusals.get(comp.key, {}), MAX_INSTANCES * sum(not h.draining for h in eligible)
        if comp.key in unplaced and running < wanted_somewhere:
            problems.append(f"{comp.component}: {unplaced[comp.key]}")
        elif refused and running < want and set(refused) >= {h.id for h in eligible}:
            reasons = "; ".join(f"host {h[:12]}…: {r}" for h, r in sorted(refused.items()))
            problems.append(f"{comp.component}: refused by every eligible host ({reasons})")
        elif isinstance(comp, DesiredActor) and want > room:
            problems.append(
                f"{comp.component}: {want} replicas wanted, at most {room} can run"
                f" ({MAX_INSTANCES} per actor per host on {room // MAX_INSTANCES} eligible hosts)"
            )
        elif running != want or stale:  # an older version still running is not deployed yet
            moving = True
    if problems:
        return {"type": "failed", "message": " | ".join(problems), "components": components}
    if moving:
        return {"type": "reconciling", "message": "placing components", "components": components}
    pending = _links_not_taken(desired.app_links.get(record.name, []), hosts, link_failures or {})
    if pending:
        return {"type": "reconciling", "message": f"waiting for links: {', '.join(pending)}", "components": components}
    return {"type": "deployed", "message": f"version {record.deployed} deployed", "components": components}


def link_key(d: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(d.get("actor_id")), str(d.get("contract_id")), str(d.get("link_name") or "default")


def _links_not_taken(
    links: Sequence[LinkDefinition], hosts: Sequence[HostView], failures: Mapping[tuple[str, str, str], str]
) -> list[str]:
    """Links some running instance of their provider does not report as taken (say, its HTTP listener is
    not up yet, or its port is in use on that host): every instance serves the link, so one that refused
    it is a link not in place. Providers that cannot tell (processes) are taken at their word."""
    pending = []
    for link in links:
        running = [
            p for h in hosts for p in h.providers if p.provider_id == link.provider_id and p.link_name == link.link_name
        ]
        if any(p.links is not None and link.actor_id not in p.links for p in running):
            why = failures.get((link.actor_id, link.contract_id, link.link_name))
            pending.append(f"{link.contract_id} ({link.link_name})" + (f": {why}" if why else ""))
    return pending
