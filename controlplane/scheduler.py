"""Placement as a pure function: desired components + observed hosts → commands (wadm's scalers).

``plan`` decides, for every desired actor and provider, how many instances each host should run and
returns the difference as plain ``Command`` data; it never talks to a host. Placing again on the state its
commands produce returns ``[]``: kept instances are found by a maximum matching of existing instances to
spreads, so nothing moves needlessly and nothing oscillates. ``unplaceable`` says which components cannot
be placed at all, and why, so the status can say ``failed``.

Rules: a spreadscaler splits ``replicas`` over its spreads by weight (largest remainder), each spread on
the non-draining hosts whose labels hold all its requirements; a spread that no host can take gives its
share to the others; new instances go one at a time to the least
loaded host (load = actor instances + in-flight calls; for providers, providers first), ties by host id;
scale-down removes from the most loaded host first. A daemonscaler runs ``replicas`` on every eligible host.
A host runs at most ``MAX_INSTANCES`` (256) of one actor, whoever owns them; one that enforces another
property set than the desired one is scaled again with the desired one.
A provider runs at most once per host per (provider id, link name) and owner; several applications that
want the same provider share one instance (a host already running it for another owner is preferred, and
the host keeps it while any owner does). Instances annotated by an application
component that is no longer desired are stopped; instances without those annotations are never touched.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from lattice.caps import MAX_INSTANCES
from lattice.controlplane.model import (
    ActorInstances,
    Command,
    ComponentKey,
    DesiredActor,
    DesiredProvider,
    HostView,
    ProviderRunning,
    ScaleActor,
    Scaler,
    Spread,
    StartProvider,
    StopProvider,
    owner_annotations,
    owner_of,
)
from lattice.properties import properties_key

_EVERYWHERE = Spread(name="default", requirements={}, weight=100)


def plan(
    desired_actors: Sequence[DesiredActor],
    desired_providers: Sequence[DesiredProvider],
    hosts: Sequence[HostView],
    *,
    managed_apps: Collection[str] | None = None,
    excluded: Mapping[ComponentKey, Collection[str]] | None = None,
) -> list[Command]:
    """The commands that take ``hosts`` to the desired state: orphan stops, then providers, then actors.

    ``desired_*`` must hold every deployed application unless ``managed_apps`` is given; only instances of
    the applications in ``managed_apps`` (default: all annotated instances) are stopped as orphans.
    ``excluded`` names, per component, hosts not to place it on (they refused it), so it goes elsewhere.
    """
    lattice = _Lattice.observe(desired_actors, desired_providers, hosts, managed_apps)
    lattice.excluded = excluded or {}
    commands: list[Command] = list(lattice.orphan_commands)
    for provider in sorted(desired_providers, key=lambda p: p.key):
        commands.extend(lattice.place_provider(provider))
    for actor in sorted(desired_actors, key=lambda a: a.key):
        commands.extend(lattice.place_actor(actor))
    return commands


def unplaceable(
    desired_actors: Sequence[DesiredActor],
    desired_providers: Sequence[DesiredProvider],
    hosts: Sequence[HostView],
    *,
    managed_apps: Collection[str] | None = None,
) -> dict[ComponentKey, str]:
    """Components that want instances but that no host can take, each with the reason per spread.

    A component one of whose spreads still has a host is not listed: its replicas run there.
    """
    lattice = _Lattice.observe(desired_actors, desired_providers, hosts, managed_apps)
    out: dict[ComponentKey, str] = {}
    for actor in desired_actors:
        if reason := lattice.why_unplaceable(actor.scaler, None):
            out[actor.key] = reason
    for provider in sorted(desired_providers, key=lambda p: p.key):
        if reason := lattice.why_unplaceable(provider.scaler, provider):
            out[provider.key] = reason
        lattice.place_provider(provider)  # as plan does, so slots an earlier component takes are taken
    return out


def apportion(replicas: int, weights: Sequence[int]) -> list[int]:
    """Split ``replicas`` in proportion to ``weights`` by largest remainder; ties go to the earlier share."""
    total = sum(weights)
    if not weights or total <= 0:
        return [0 for _ in weights]
    shares = [replicas * w // total for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(replicas * weights[i] % total), i))
    for i in by_remainder[: replicas - sum(shares)]:
        shares[i] += 1
    return shares


def describe_requirements(requirements: Mapping[str, str]) -> str:
    """``{zone: east, arch: arm64}``, as reasons print them."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in requirements.items()) + "}"


def _matches(host: HostView, requirements: Mapping[str, str]) -> bool:
    return all(host.labels.get(key) == value for key, value in requirements.items())


def _is_ours(annotations: Mapping[str, str], key: ComponentKey) -> bool:
    return owner_of(annotations) == key


@dataclass(slots=True)
class _Lattice:
    """Working state of one planning pass: hosts by id and the load each will carry."""

    hosts: list[HostView]  # sorted by id
    actor_load: dict[str, int]  # actor instances + in-flight calls
    provider_load: dict[str, int]
    taken_slots: set[tuple[str, str, str]]  # (host, provider id, link name) held by someone who stays
    orphan_commands: list[Command]
    excluded: Mapping[ComponentKey, Collection[str]] = field(default_factory=dict)

    @classmethod
    def observe(
        cls,
        actors: Sequence[DesiredActor],
        providers: Sequence[DesiredProvider],
        hosts: Sequence[HostView],
        managed_apps: Collection[str] | None,
    ) -> _Lattice:
        wanted_actors = {(a.app, a.component, a.actor_id) for a in actors}
        wanted_providers = {(p.app, p.component, p.provider_id, p.link_name) for p in providers}
        lattice = cls(sorted(hosts, key=lambda h: h.id), {}, {}, set(), [])
        for host in lattice.hosts:
            lattice.actor_load[host.id] = host.in_flight
            lattice.provider_load[host.id] = 0
            for group in host.actors:
                owner = owner_of(group.annotations)
                if owner and _managed(owner, managed_apps) and (*owner, group.actor_id) not in wanted_actors:
                    lattice.orphan_commands.append(_stop_actor(host.id, group))
                else:
                    lattice.actor_load[host.id] += group.count
            for running in host.providers:
                owner = owner_of(running.annotations)
                wanted = (*owner, running.provider_id, running.link_name) if owner else None
                if owner and _managed(owner, managed_apps) and wanted not in wanted_providers:
                    lattice.orphan_commands.append(_stop_provider(host.id, running))
                else:
                    lattice.provider_load[host.id] += 1
                    lattice.taken_slots.add((host.id, running.provider_id, running.link_name))
        return lattice

    def room(
        self, key: ComponentKey, current: Mapping[str, int], per_host: int | None
    ) -> tuple[list[HostView], dict[str, int] | None]:
        """The hosts that may carry instances of ``key`` and how many each may (``per_host``; None: any).

        A host that refused ``key`` keeps what runs there and takes no more: a refusal stops nothing (a
        start that answered too late is recorded as refused, yet it did start; stopping it was flapping).
        """
        refused = self.excluded.get(key, ())
        hosts = [h for h in self.hosts if not h.draining and (h.id not in refused or current.get(h.id, 0) > 0)]
        if not refused and per_host is None:
            return hosts, None
        most = per_host if per_host is not None else 1 << 30
        return hosts, {h.id: min(most, current.get(h.id, 0)) if h.id in refused else most for h in self.hosts}

    def place_actor(self, actor: DesiredActor) -> list[Command]:
        current, others, stale, key = Counter[str](), Counter[str](), set(), properties_key(actor.properties)
        for host in self.hosts:
            for group in host.actors:
                if group.actor_id == actor.actor_id and _is_ours(group.annotations, actor.key):
                    current[host.id] += group.count
                    stale |= {host.id} if group.properties_key != key else set()
                elif group.actor_id == actor.actor_id:
                    others[host.id] += group.count
        base = {h.id: (self.actor_load[h.id] - current[h.id], 0) for h in self.hosts}
        hosts, room = self.room(actor.key, current, MAX_INSTANCES)
        capacity = {h: max(min(most, MAX_INSTANCES - others[h]), 0) for h, most in (room or {}).items()}
        final = _counts(actor.scaler, hosts, current, base, capacity)
        commands: list[Command] = []
        owner = owner_annotations(actor.app, actor.component)
        for host_id in sorted(set(current) | set(final)):
            if (count := final[host_id]) != current[host_id] or (count and host_id in stale):
                self.actor_load[host_id] += count - current[host_id]
                commands.append(ScaleActor(host_id, actor.actor_id, actor.image_ref, count, owner, actor.properties))
        return commands

    def place_provider(self, provider: DesiredProvider) -> list[Command]:
        current = Counter[str]()
        for host in self.hosts:
            for running in host.providers:
                if self._is_instance(running, provider):
                    current[host.id] = 1
        # a host already running this provider for another owner is preferred: joining it adds no process
        joins = {h.id: self._joins(h.id, provider, current) for h in self.hosts}
        base = {
            h.id: (self.provider_load[h.id] - current[h.id] - joins[h.id], self.actor_load[h.id]) for h in self.hosts
        }
        hosts, capacity = self.room(provider.key, current, 1)
        final = _counts(provider.scaler, hosts, current, base, capacity)
        annotations = owner_annotations(provider.app, provider.component)
        commands: list[Command] = []
        for host_id in sorted(set(current) | set(final)):
            if final[host_id] > current[host_id]:
                self.provider_load[host_id] += 1 - joins[host_id]
                self.taken_slots.add((host_id, provider.provider_id, provider.link_name))
                commands.append(
                    StartProvider(
                        host_id,
                        provider.provider_id,
                        provider.image_ref,
                        provider.link_name,
                        provider.contract,
                        provider.config,
                        annotations,
                    )
                )
            elif final[host_id] < current[host_id]:
                self.provider_load[host_id] -= 1
                self.taken_slots.discard((host_id, provider.provider_id, provider.link_name))
                commands.append(StopProvider(host_id, provider.provider_id, provider.link_name, annotations))
        return commands

    def why_unplaceable(self, scaler: Scaler, provider: DesiredProvider | None) -> str | None:
        """Why no spread of ``scaler`` can take an instance, or None when one can (or none is wanted)."""
        if scaler.replicas == 0:
            return None
        spreads = scaler.spread or (_EVERYWHERE,)
        problems = [self._spread_problem(s, len(spreads) > 1) for s in spreads]
        if None in problems:
            return None
        return "; ".join(p for p in problems if p)

    def _spread_problem(self, spread: Spread, named: bool) -> str | None:
        if not self.hosts:
            return "no hosts in the lattice"
        prefix = f"spread {spread.name!r}: " if named else ""
        wanted = describe_requirements(spread.requirements)
        matching = [h for h in self.hosts if _matches(h, spread.requirements)]
        live = [h for h in matching if not h.draining]
        if not matching:
            return f"{prefix}no host matches requirements {wanted}"
        if not live:
            where = f"host matching {wanted}" if spread.requirements else "host"
            return f"{prefix}every {where} is draining"
        return None

    def _is_instance(self, running: ProviderRunning, provider: DesiredProvider) -> bool:
        return (
            running.provider_id == provider.provider_id
            and running.link_name == provider.link_name
            and _is_ours(running.annotations, provider.key)
        )

    def _joins(self, host_id: str, provider: DesiredProvider, current: Mapping[str, int]) -> int:
        """1 where another owner already runs this (id, link name): an instance here is shared, not new."""
        taken = (host_id, provider.provider_id, provider.link_name) in self.taken_slots
        return 1 if taken and not current[host_id] else 0


def _managed(owner: ComponentKey, managed_apps: Collection[str] | None) -> bool:
    return managed_apps is None or owner[0] in managed_apps


def _stop_actor(host_id: str, group: ActorInstances) -> ScaleActor:
    return ScaleActor(host_id, group.actor_id, "", 0, dict(group.annotations), {})


def _stop_provider(host_id: str, running: ProviderRunning) -> StopProvider:
    return StopProvider(host_id, running.provider_id, running.link_name, dict(running.annotations))


# --- the counting itself -----------------------------------------------------------------------------


def _counts(
    scaler: Scaler,
    live: list[HostView],
    current: Mapping[str, int],
    base: Mapping[str, tuple[int, int]],
    capacity: Mapping[str, int] | None,
) -> Counter[str]:
    """The final instance count per host; hosts not in ``live`` get none.

    ``base`` is each host's load without this component, compared first on element 0 (plus what this
    component places there) and then on element 1.
    """
    spreads = scaler.spread or (_EVERYWHERE,)
    eligible = [[h.id for h in live if _matches(h, s.requirements)] for s in spreads]
    if scaler.kind == "daemonscaler":
        final = Counter[str]()
        for host_id in {h for hosts in eligible for h in hosts}:
            final[host_id] = scaler.replicas if capacity is None else min(scaler.replicas, capacity[host_id])
        return +final
    # A spread no host can take gives its share to the others, so the replicas keep running.
    usable = [any(capacity is None or capacity[h] > 0 for h in hosts) for hosts in eligible]
    shares = apportion(scaler.replicas, [s.weight for s, ok in zip(spreads, usable, strict=True) if ok])
    targets = [shares.pop(0) if ok else 0 for ok in usable]
    return _spread_counts(targets, eligible, current, base, capacity)


def _spread_counts(
    targets: list[int],
    eligible: list[list[str]],
    current: Mapping[str, int],
    base: Mapping[str, tuple[int, int]],
    capacity: Mapping[str, int] | None,
) -> Counter[str]:
    placed = Counter[str]()

    def load(host_id: str) -> tuple[int, int, str]:
        return (base[host_id][0] + placed[host_id], base[host_id][1], host_id)

    def room(host_id: str) -> bool:
        return capacity is None or placed[host_id] < capacity[host_id]

    membership = Counter(h for hosts in eligible for h in hosts)
    order = sorted(range(len(targets)), key=lambda i: (len(eligible[i]), i))  # most constrained first
    available = Counter[str]()
    for host_id in membership:
        limit = current.get(host_id, 0) if capacity is None else capacity[host_id]
        available[host_id] = min(current.get(host_id, 0), limit)
    keep: list[Counter[str]] = [Counter() for _ in targets]
    # Keep what runs, least loaded hosts first (so scale-down takes from the most loaded).
    for i in order:
        while keep[i].total() < targets[i]:
            candidates = [h for h in eligible[i] if available[h] > 0]
            if not candidates:
                break
            host_id = min(candidates, key=lambda h: (membership[h], *load(h)))
            keep[i][host_id] += 1
            available[host_id] -= 1
            placed[host_id] += 1
    _augment(keep, targets, eligible, available, placed)
    # Then place what is missing, one at a time, on the least loaded host with room.
    for i in order:
        while keep[i].total() < targets[i]:
            candidates = [h for h in eligible[i] if room(h)]
            if not candidates:
                break
            host_id = min(candidates, key=load)
            keep[i][host_id] += 1
            placed[host_id] += 1
    return +placed


def _augment(
    keep: list[Counter[str]],
    targets: list[int],
    eligible: list[list[str]],
    available: Counter[str],
    placed: Counter[str],
) -> None:
    """Keep more existing instances by moving kept ones between overlapping spreads (augmenting paths)."""
    for i in range(len(targets)):
        while keep[i].total() < targets[i]:
            path = _augmenting_path(i, keep, eligible, available)
            if path is None:
                break
            spread, host_id = path[-1]
            keep[spread][host_id] += 1
            available[host_id] -= 1
            placed[host_id] += 1
            for (taker, moved), (giver, _) in pairwise(path):
                keep[taker][moved] += 1
                keep[giver][moved] -= 1


def _augmenting_path(
    start: int, keep: list[Counter[str]], eligible: list[list[str]], available: Counter[str]
) -> list[tuple[int, str]] | None:
    """``[(start, h0), (s1, h1), ..., (sk, hk)]``: start takes h0 from s1, ..., sk takes free hk."""
    parent: dict[int, tuple[int, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        spread = queue.popleft()
        for host_id in eligible[spread]:
            if available[host_id] > 0:
                path = [(spread, host_id)]
                while (step := parent[path[0][0]]) is not None:
                    path.insert(0, step)
                return path
            for other, kept in enumerate(keep):
                if other not in parent and kept[host_id] > 0:
                    parent[other] = (spread, host_id)
                    queue.append(other)
    return None
