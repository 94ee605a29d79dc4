"""Capability providers running inside a host (SPEC §2, §4).

A bundled provider (``builtin:httpserver``…) is found through the ``lattice.providers`` entry points,
so ``host`` never imports ``providers``. In process, a host call from a local actor reaches the
provider directly and the provider reaches local actors directly; the provider is also served on
NATS (``lattice.providers.sdk.server.ProviderServer``) so actors on other hosts can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from lattice import events
from lattice.host.actors import annotations_key
from lattice.host.children import Child, Supervisor, child_env, start
from lattice.inventory import ProviderInventory
from lattice.messages import Entity
from lattice.settings import Settings

if TYPE_CHECKING:
    from lattice.capability import CapabilityProvider
    from lattice.providers.sdk.server import ProviderServer

log = structlog.get_logger("host.providers")


class ActorInvoker(Protocol):
    """What a provider's context needs of the host's router (``lattice.host.router.Router``)."""

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        origin: Entity,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes: ...


@dataclass(slots=True)
class HostProviderContext:
    """``ProviderContext`` for a provider inside a host: local actors first, NATS otherwise."""

    settings: Settings
    nc: NATS
    js: JetStreamContext
    provider_id: str
    link_name: str
    host_id: str
    contract_id: str
    router: ActorInvoker
    origin: Entity | None = None  # the provider as the origin of its calls, made once

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        origin = self.origin
        if origin is None:
            origin = self.origin = Entity(self.provider_id, self.contract_id, self.link_name)
        return await self.router.invoke_actor(
            actor_id, operation, payload, origin=origin, timeout_s=timeout_s, trace_context=trace_context
        )

    def log(self, event: str, **fields: Any) -> None:
        log.info(event, provider_id=self.provider_id, link_name=self.link_name, host_id=self.host_id, **fields)


@dataclass(slots=True)
class LocalProvider:
    """A provider running in this host, and its owners: the applications (annotations) that asked for it.

    One instance serves every owner, as in wasmCloud: it runs while any owner (or nobody in particular,
    when started without annotations) wants it.
    """

    provider: CapabilityProvider | None  # None: it runs in a child process (``process``)
    provider_id: str
    link_name: str
    contract_id: str
    image_ref: str
    owners: dict[str, dict[str, str]] = field(default_factory=dict)
    server: ProviderServer | None = None
    process: ProviderProcess | None = None

    def add_owner(self, annotations: dict[str, str]) -> None:
        if annotations:
            self.owners[annotations_key(annotations)] = dict(annotations)

    def remove_owner(self, annotations: dict[str, str]) -> bool:
        """Forget one owner; True when others still want the provider."""
        self.owners.pop(annotations_key(annotations), None)
        return bool(self.owners)

    def inventory(self) -> list[ProviderInventory]:
        """One entry per owner (the control plane counts each owner's share), or one without annotations."""
        # actors whose links it accepted (a listener is up, a bucket open); unknown for a process
        links = tuple(sorted(self.provider.links)) if self.provider is not None else None
        entry = ProviderInventory(self.provider_id, self.link_name, self.contract_id, self.image_ref, links)
        return [replace(entry, annotations=owner) for owner in self.owners.values()] or [entry]


class ProviderProcess:
    """A bundled provider in its own child process (``lattice provider NAME``), restarted with backoff by
    the one child supervisor (``lattice.host.children.Supervisor``).

    The child learns its links from ``LATTICEDATA`` itself, so a restart needs nothing re-sent; calls made
    while it is down fail with ``NoResponders`` (nobody serves it), never hang. ``on_event(name, data)``
    publishes lifecycle events (``provider_stopped`` when it exits, ``provider_restarted``).
    """

    def __init__(
        self,
        name: str,
        link_name: str,
        settings: Settings,
        on_event: Callable[[str, dict[str, Any]], Awaitable[None]],
        *,
        provider_id: str,
        contract_id: str,
    ) -> None:
        self.name = name
        self.link_name = link_name
        self.provider_id = provider_id
        self.contract_id = contract_id
        self.settings = settings
        self.on_event = on_event
        self.supervisor = Supervisor(
            f"provider {name}",
            self._launch,
            on_exit=self._exited,
            on_restart=self._restarted,
            provider_id=provider_id,
            link_name=link_name,
        )

    @property
    def proc(self) -> Child | None:
        """The running child process (the last one started)."""
        return self.supervisor.child

    @property
    def restarts(self) -> int:
        return self.supervisor.restarts

    async def _launch(self) -> Child:
        args = [sys.executable, "-m", "lattice", "provider", self.name, "--link-name", self.link_name]
        return await start(args, env=child_env(self.settings))

    async def _exited(self, code: int, backoff_s: float) -> None:
        data = events.provider_data(self.provider_id, self.link_name, self.contract_id, name=self.name, code=code)
        await self.on_event("provider_stopped", data)

    async def _restarted(self, child: Child) -> None:
        data = events.provider_data(self.provider_id, self.link_name, self.contract_id, name=self.name)
        await self.on_event("provider_restarted", data)

    async def start(self) -> None:
        await self.supervisor.start()
        self.supervisor.watch()

    async def stop(self, timeout_s: float = 5.0) -> None:
        await self.supervisor.stop(timeout_s)
