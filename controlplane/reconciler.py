"""Desired vs observed → commands, executed over the control interface; and each application's status.

``desired_state`` and ``app_status`` are pure; ``Reconciler.tick`` is the thin loop around them that
talks to hosts. Commands already issued are remembered for a few seconds (the expected events have
not arrived yet), so nothing is re-issued in a loop; a host's refusal is remembered with its reason so
the status says ``failed`` with it instead of ``reconciling`` forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable
from typing import Any

import structlog
from nats.aio.client import Client as NATS

from lattice import events, seal, subjects
from lattice.capability import builtin_provider_id
from lattice.commands import CommandReply
from lattice.controlplane import autoscale
from lattice.controlplane.counters import CallCounters
from lattice.controlplane.manifest import parse_manifest
from lattice.controlplane.model import (
    ActorComponent,
    Application,
    Command,
    ComponentKey,
    DesiredActor,
    DesiredProvider,
    Elastic,
    ProviderComponent,
    RolloutPolicy,
    owner_of,
)
from lattice.controlplane.observer import Observer
from lattice.controlplane.rollouts import Rollouts, actor_ids, keeps_capacity
from lattice.controlplane.scheduler import plan, unplaceable
from lattice.controlplane.state import AppRecord, AppVersion, ControlState
from lattice.controlplane.status import Desired, app_status, link_key
from lattice.controlplane.wadm import annotate, map_link_values
from lattice.links import LatticeData
from lattice.messages import LinkDefinition
from lattice.observability.metrics import ControlPlaneMetrics

log = structlog.get_logger("lattice.controlplane.reconciler")

REISSUE_AFTER_S = 5.0
REFUSAL_TTL_S = 30.0
PARSED_CACHE_SIZE = 256


def provider_id_of(image: str) -> str:
    """The provider id behind a capability image (bundled providers only, for now)."""
    return builtin_provider_id(image.removeprefix("builtin:"))


def desired_state(apps: Iterable[tuple[Application, AppVersion]]) -> Desired:
    """Deployed applications (with their resolved images) → what should run and which links exist."""
    out = Desired()
    for app, version in apps:
        providers = {c.name: c for c in app.components if isinstance(c, ProviderComponent)}
        for comp in app.components:
            if isinstance(comp, ProviderComponent):
                out.providers.append(
                    DesiredProvider(
                        app.name,
                        comp.name,
                        provider_id_of(comp.image),
                        comp.image,
                        comp.contract,
                        comp.link_name,
                        comp.config,
                        comp.scaler,
                    )
                )
                continue
            assert isinstance(comp, ActorComponent)
            image = version.images.get(comp.name, {})
            actor_id, image_ref = str(image.get("actor_id", "")), str(image.get("image_ref", comp.image))
            out.actors.append(DesiredActor(app.name, comp.name, actor_id, image_ref, comp.scaler, comp.properties))
            for link in comp.links:
                target = providers[link.target]
                out.links.append(
                    link_definition := LinkDefinition(
                        actor_id=actor_id,
                        provider_id=provider_id_of(target.image),
                        contract_id=target.contract,
                        link_name=link.link_name or target.link_name,
                        values=map_link_values(target.contract, link.values)[0]
                        if target.substituted
                        else dict(link.values),
                    )
                )
                out.app_links.setdefault(app.name, []).append(link_definition)
    return out


def _command_subject(lattice: str, cmd: Command) -> tuple[str, dict[str, Any]]:
    return subjects.ctl_cmd(lattice, cmd.host_id, cmd.verb), cmd.to_body()


class Reconciler:
    """Runs ``tick`` on the leader: plan, execute, keep links in step, remember refusals."""

    def __init__(
        self,
        nc: NATS,
        state: ControlState,
        observer: Observer,
        data: LatticeData,
        lattice: str,
        metrics: ControlPlaneMetrics | None = None,
    ) -> None:
        self.nc = nc
        self.metrics = metrics or ControlPlaneMetrics(process=False)
        self.state = state
        self.observer = observer
        self.data = data
        self.lattice = lattice
        self._parsed: dict[str, Application] = {}
        self._issued: dict[str, float] = {}
        self.refusals: dict[ComponentKey, dict[str, tuple[str, float]]] = {}
        self.link_failures: dict[tuple[str, str, str], str] = {}
        self._owned_links: set[tuple[str, str, str]] = set()
        self.wake = asyncio.Event()
        self.scales: dict[tuple[ComponentKey, str], tuple[Elastic, autoscale.ScaleState]] = {}
        self.desired_ids: set[str] = set()  # every deployed actor: a call to one not running yet is held
        self.rollouts = Rollouts(nc, lattice, state)
        self.counters = CallCounters()
        self.cooldown_s = autoscale.SCALE_DOWN_COOLDOWN_S  # Settings.scale_down_cooldown_s

    def application(self, record: AppRecord, version: AppVersion) -> Application:
        """``version``'s manifest, parsed once per content: keyed by the text itself, not by name and
        version, which a delete and re-apply reuse for other content."""
        key = hashlib.sha256(version.manifest.encode()).hexdigest()
        app = self._parsed.get(key)
        if app is None:
            if len(self._parsed) >= PARSED_CACHE_SIZE:
                self._parsed.pop(next(iter(self._parsed)))  # the oldest entry
            app = self._parsed[key] = parse_manifest(version.manifest)
        return app

    async def desired(self, *, rescale: bool = False) -> tuple[list[AppRecord], Desired]:
        """What should run; elastic actors at the autoscaler's current target (``rescale``: decide it anew
        from the hosts' load first — the reconcile pass does, status reads do not)."""
        records = await self.state.apps()
        deployed = []
        for record in records:
            version = record.version(record.deployed)
            if version is not None and not version.problems:  # a version that cannot run runs not at all
                deployed.append((self.application(record, version), version))
        return records, self._scaled(desired_state(deployed), rescale)

    def _scaled(self, desired: Desired, rescale: bool) -> Desired:
        now, loads = time.monotonic(), self._loads() if rescale else {}
        actors, kept = [], {}
        for actor in desired.actors:
            spec = actor.scaler.elastic
            if spec is None:
                actors.append(actor)
                continue
            key = (actor.key, actor.actor_id)
            state = self.scales[key][1] if key in self.scales else autoscale.initial(spec, now)
            if rescale:
                state = autoscale.decide(spec, state, loads.get(actor.actor_id, autoscale.Load()), now, self.cooldown_s)
            kept[key] = (spec, state)
            actors.append(dataclasses.replace(actor, scaler=dataclasses.replace(actor.scaler, replicas=state.target)))
        self.scales, self.desired_ids = kept, {a.actor_id for a in desired.actors}  # the rest is forgotten
        return dataclasses.replace(desired, actors=actors)

    def _loads(self) -> dict[str, autoscale.Load]:
        """Per actor: the hosts' load summed, with calls and failures that never fall (``CallCounters``)."""
        inventories = [host.inventory for host in self.observer.hosts.values()]
        return self.counters.applied(inventories, autoscale.loads_of(inventories))

    def wake_actor(self, actor_id: str) -> bool:
        """A call is held for ``actor_id``, which has no instance: scale its elastic component to at least one
        now; any other deployed actor (a new version not started yet) is being placed anyway. False when no
        deployed actor has that id (the caller then stops waiting)."""
        now, found = time.monotonic(), actor_id in self.desired_ids
        for key, (spec, state) in list(self.scales.items()):
            if key[1] == actor_id:
                self.scales[key] = (spec, autoscale.wake(spec, state, now))
        if found:
            if not any(a.actor_id == actor_id for h in self.observer.views() for a in h.actors):  # runs nowhere:
                self._issued = {c: t for c, t in self._issued.items() if actor_id not in c}  # start it at once
            self.wake.set()
        return found

    def on_event(self, event: events.CloudEvent) -> None:
        """Remember why providers refused links (``linkdef_set_failed``), for the status."""
        if event.name == events.LINKDEF_SET_FAILED and isinstance(event.data.get("link"), dict):
            self.link_failures[link_key(event.data["link"])] = str(event.data.get("error", "refused"))
        elif event.name in (events.LINKDEF_SET, events.LINKDEF_DELETED):
            self.link_failures.pop(link_key(event.data), None)

    def current_refusals(self) -> dict[ComponentKey, dict[str, str]]:
        now = time.monotonic()
        out: dict[ComponentKey, dict[str, str]] = {}
        for key, by_host in self.refusals.items():
            # recent refusals by hosts still in the lattice (one that left has no say any more)
            live = {h: r for h, (r, t) in by_host.items() if now - t < REFUSAL_TTL_S and h in self.observer.hosts}
            if live:
                out[key] = live
        return out

    async def status_of(self, record: AppRecord) -> dict[str, Any]:
        _, desired = await self.desired()
        hosts = self.observer.views()
        unplaced = unplaceable(desired.actors, desired.providers, hosts)
        status = app_status(record, desired, hosts, unplaced, self.current_refusals(), self.link_failures)
        version = record.version(record.deployed)
        if version is not None:
            annotate(status, self.application(record, version), hosts)
        if record.rollout:
            status["rollout"] = dict(record.rollout)
        return status

    async def tick(self) -> list[Command]:
        """One reconcile pass; returns the commands it issued."""
        self.observer.expire()
        for public_key, link_name, contract_id in self.observer.lost_providers():
            data = events.provider_data(public_key, link_name, contract_id, reason="health checks stopped")
            await self.nc.publish(subjects.events(self.lattice), events.make(events.PROVIDER_STOPPED, public_key, data))
        records, desired = await self.desired(rescale=True)
        await self._sync_links(desired.links)
        hosts = self.observer.views()
        now = time.monotonic()
        refused = {key: set(by_host) for key, by_host in self.current_refusals().items()}
        actors = self.rollouts.split(desired.actors, records, hosts, self._old_actors)
        planned = plan(actors, desired.providers, hosts, excluded=refused)
        commands = [c for c in planned if keeps_capacity(c, desired.actors, hosts) and self._due(c, now)]
        if commands:
            accepted = await asyncio.gather(*(self._execute(c) for c in commands))
            await self.observer.refresh_hosts(c.host_id for c, ok in zip(commands, accepted, strict=True) if ok)
        await self.rollouts.watch(records, self.status_of, self._policy, self._loads(), actor_ids)
        return commands

    def _old_actors(self, record: AppRecord) -> list[DesiredActor]:
        """The actors of the version a rollout replaces (they keep the replicas the new one has not taken)."""
        old = record.version((record.rollout or {}).get("from_version"))
        return desired_state([(self.application(record, old), old)]).actors if old and not old.problems else []

    def _policy(self, record: AppRecord) -> RolloutPolicy:
        return self.application(record, v).rollout if (v := record.version(record.deployed)) else RolloutPolicy()

    def _due(self, cmd: Command, now: float) -> bool:
        key = repr(cmd)
        last = self._issued.get(key)
        if last is not None and now - last < REISSUE_AFTER_S:
            return False
        self._issued[key] = now
        return True

    async def _execute(self, cmd: Command) -> bool:  # whether the host carried it out
        subject, body = _command_subject(self.lattice, cmd)
        owner = owner_of(cmd.annotations or {})
        outcome = "refused"
        try:
            sealed = await seal.request(self.nc, self.data.sealer, subject, json.dumps(body).encode(), timeout=10)
            reply = CommandReply.from_dict(json.loads(sealed.data))
        except Exception as exc:
            reply, outcome = CommandReply(False, error=f"no reply from host: {exc}"), "no_reply"
        outcome = "accepted" if reply.accepted else outcome
        self.metrics.reconcile_commands.labels(type(cmd).__name__, outcome).inc()
        if reply.accepted:
            log.info("command done", command=type(cmd).__name__, host_id=cmd.host_id, owner=owner)
            if owner is not None:
                self.refusals.get(owner, {}).pop(cmd.host_id, None)
            return True
        reason = reply.error or "refused"
        log.warning("command refused", command=type(cmd).__name__, host_id=cmd.host_id, owner=owner, error=reason)
        if owner is not None:
            self.refusals.setdefault(owner, {})[cmd.host_id] = (reason, time.monotonic())
        return False

    async def _sync_links(self, links: list[LinkDefinition]) -> None:
        wanted = {(ln.actor_id, ln.contract_id, ln.link_name): ln for ln in links if ln.actor_id}
        # deletes first: a new version's link often takes what the old one holds (an HTTP port), and put
        # first it would be refused until the old one is gone (retried by the host, seconds of no listener)
        for key in self._owned_links - set(wanted):
            await self.data.delete_link(*key)
        for key, link in wanted.items():
            if self.data.links.get(key) != link:
                await self.data.put_link(link)
        self._owned_links = set(wanted)

    async def run(self, is_leader: Any, interval_s: float = 0.5) -> None:
        """Reconcile every ``interval_s`` (or sooner when woken) while ``is_leader()`` holds."""
        while True:
            # cleared before the pass, not after: a wake-up (a PUT, an event) during the pass means another
            # pass right away, instead of waiting out the interval
            self.wake.clear()
            if is_leader():
                try:
                    with self.metrics.reconcile_seconds.time():
                        await self.tick()
                except Exception:
                    self.metrics.reconcile_failures.inc()
                    log.exception("reconcile failed")
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can swallow a cancellation
                async with asyncio.timeout(interval_s):
                    await self.wake.wait()
