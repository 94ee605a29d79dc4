"""What the control plane sees of the lattice: live hosts from heartbeats, and the event stream.

A host is alive while its heartbeats keep coming: one missed for ``heartbeat_s * heartbeat_misses``
seconds is dropped, so its replicas are re-placed by the next reconcile. Events are also fanned out to
``/v1/events`` subscribers (bounded queues: a slow reader loses old events, never blocks the lattice).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice import events, subjects
from lattice.controlplane.model import ActorInstances, HostView, ProviderRunning
from lattice.errors import ConfigError
from lattice.failsafe import logged
from lattice.inventory import HostInventory

log = structlog.get_logger("lattice.controlplane.observer")

PING_WINDOW_S = 0.3  # the longest a refresh gathers ping answers
PING_QUIET_S = 0.03  # answers have stopped once none came for this long


@dataclass(slots=True)
class ProviderSeen:
    """A provider known from its health events: when it last reported and how often it reports."""

    contract_id: str
    last_seen: float
    interval_s: float


@dataclass(slots=True)
class HostState:
    inventory: HostInventory
    last_seen: float
    first_seen: float


def host_view(inv: HostInventory) -> HostView:
    """A host's inventory → the scheduler's ``HostView``."""
    actors = tuple(
        ActorInstances(a.id, i.count, dict(i.annotations), a.properties_key) for a in inv.actors for i in a.instances
    )
    providers = tuple(
        ProviderRunning(p.id, p.link_name, p.contract_id, dict(p.annotations), p.links) for p in inv.providers
    )
    return HostView(inv.host_id, dict(inv.labels), actors, providers, inv.in_flight, inv.draining)


class Observer:
    """Follows ``wasmbus.evt.{lattice}``; ``hosts`` holds the live ones."""

    def __init__(self, nc: NATS, lattice: str, *, heartbeat_s: float, misses: int) -> None:
        self.nc = nc
        self.lattice = lattice
        self.expiry_s = heartbeat_s * misses
        self.misses = misses
        self.hosts: dict[str, HostState] = {}
        self.providers: dict[tuple[str, str], ProviderSeen] = {}  # (public_key, link_name)
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._listeners: list[Callable[[events.CloudEvent], None]] = []

    def on_event(self, listener: Callable[[events.CloudEvent], None]) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        await self.nc.subscribe(subjects.events(self.lattice), cb=self._on_event)
        await self.refresh()

    async def refresh(self) -> None:
        """Ask every host for its inventory (ping, then ``get.inv``): after a restart, no waiting for beats."""
        inbox = self.nc.new_inbox()
        replies: list[dict[str, Any]] = []

        async def collect(msg: Msg) -> None:
            with contextlib.suppress(ValueError):
                replies.append(json.loads(msg.data))

        sub = await self.nc.subscribe(inbox, cb=collect)
        await self.nc.publish(subjects.ctl_ping_hosts(self.lattice), b"", reply=inbox)
        # gather until answers stop coming (hosts answer in a few ms), at most PING_WINDOW_S
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + PING_WINDOW_S, -1
        while loop.time() < deadline and (seen != len(replies) or not replies):
            seen = len(replies)
            await asyncio.sleep(PING_QUIET_S)
        await sub.unsubscribe()
        for reply in replies:
            try:
                host_id = HostInventory.from_dict(reply).host_id
            except ConfigError as exc:
                log.info("ping answer ignored", error=str(exc))
                continue
            await self.refresh_host(host_id)

    async def refresh_hosts(self, host_ids: Iterable[str]) -> None:
        """Read these hosts' inventories now, right after they carried out commands: the next plan must see
        what the commands changed (a lagging heartbeat after a healed partition once had the reconciler stop
        the one httpserver left, right after it had stopped its twin)."""
        await asyncio.gather(*(self.refresh_host(h) for h in sorted(set(host_ids))))

    async def refresh_host(self, host_id: str) -> None:
        """Read ``host_id``'s inventory now (``get.inv``); a host that does not answer keeps its view."""
        with logged(log, "inventory not read", level="info", host_id=host_id):
            inv = await self.nc.request(subjects.ctl_get_inventory(self.lattice, host_id), b"", timeout=2)
            self._seen(json.loads(inv.data))

    def _seen(self, doc: Any) -> None:
        try:
            inv = HostInventory.from_dict(doc)
        except ConfigError as exc:
            log.warning("host inventory ignored", error=str(exc))
            return
        now = time.monotonic()
        state = self.hosts.get(inv.host_id)
        if state is not None and inv.uptime_seconds < state.inventory.uptime_seconds:
            # taken before the one held (a heartbeat handled after a fresher ``get.inv`` answer): it would
            # bring back instances a command just stopped; it still says the host is alive
            state.last_seen = now
            return
        self.hosts[inv.host_id] = HostState(inv, now, state.first_seen if state else now)

    async def _on_event(self, msg: Msg) -> None:
        event = events.parse(msg.data)
        if event is None:
            return
        if event.name == events.HOST_HEARTBEAT:
            self._seen({**event.data, "host_id": event.source})
        elif event.name == events.HOST_STOPPED:
            self.hosts.pop(event.source, None)
        self._track_provider(event)
        if event.name not in (events.HOST_HEARTBEAT, events.HEALTH_CHECK_PASSED):  # the routine ones
            self.recent.append(event.to_dict())
        for listener in self._listeners:
            listener(event)
        doc = event.to_dict()
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(doc)

    def _track_provider(self, event: events.CloudEvent) -> None:
        key = (str(event.data.get("public_key", "")), str(event.data.get("link_name", "default")))
        if not key[0]:
            return
        if event.name == events.PROVIDER_STOPPED:
            self.providers.pop(key, None)
        elif event.name in (events.HEALTH_CHECK_PASSED, events.HEALTH_CHECK_FAILED):
            interval = event.data.get("interval_s")
            interval_s = float(interval) if isinstance(interval, int | float) and interval > 0 else 5.0
            self.providers[key] = ProviderSeen(str(event.data.get("contract_id", "")), time.monotonic(), interval_s)

    def lost_providers(self) -> list[tuple[str, str, str]]:
        """Providers whose health events stopped for ``misses`` intervals (killed, or cut off): forgotten
        here and returned as ``(public_key, link_name, contract_id)`` so that the leader can say so."""
        now = time.monotonic()
        gone = [k for k, p in self.providers.items() if now - p.last_seen > p.interval_s * self.misses]
        lost = [(pid, link, self.providers.pop((pid, link)).contract_id) for pid, link in gone]
        for pid, link, _ in lost:
            log.warning("provider lost: health checks stopped", provider_id=pid, link_name=link)
        return lost

    def expire(self) -> list[str]:
        """Drop hosts whose heartbeats stopped; returns their ids."""
        cutoff = time.monotonic() - self.expiry_s
        gone = [h for h, s in self.hosts.items() if s.last_seen < cutoff]
        for host_id in gone:
            log.warning("host lost: heartbeats stopped", host_id=host_id)
            del self.hosts[host_id]
        return gone

    def views(self) -> list[HostView]:
        return [host_view(s.inventory) for s in self.hosts.values()]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)
