"""The bundled providers one host runs (SPEC §2, §4): starting them (in process, or as supervised child
processes with ``LATTICE_PROVIDER_PROCESSES``), stopping them share by share, and handing in-process ones
their links, retrying a refused link a while.

It owns the host's ``ProviderRegistry`` writes; the registry itself is what the router and the inventory read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from lattice import events
from lattice.capability import builtin_provider_id
from lattice.failsafe import logged
from lattice.host.providers import ActorInvoker, HostProviderContext, LocalProvider, ProviderProcess
from lattice.host.registry import ProviderRegistry
from lattice.links import LatticeData
from lattice.messages import LinkDefinition
from lattice.observability.metrics import CallMetrics
from lattice.providers.sdk.base import provider_class
from lattice.providers.sdk.server import ProviderServer
from lattice.rpc import Rpc
from lattice.settings import Settings

log = structlog.get_logger("host")
HEALTH_INTERVAL_S = 5.0

Publish = Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class HostedProviders:
    """Starts, stops and links the providers of one host into ``registry``."""

    def __init__(
        self,
        *,
        settings: Settings,
        host_id: str,
        registry: ProviderRegistry,
        nc: NATS,
        js: JetStreamContext,
        rpc: Rpc,
        data: LatticeData,
        router: ActorInvoker,
        metrics: CallMetrics,
        publish: Publish,
        spawn: Spawn,
    ) -> None:
        self.settings = settings
        self.host_id = host_id
        self.registry = registry
        self.nc, self.js, self.rpc, self.data = nc, js, rpc, data
        self.router = router
        self.metrics = metrics
        self.publish = publish
        self.spawn = spawn
        self.log = log.bind(host_id=host_id)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def start(
        self, image_ref: str, link_name: str, annotations: dict[str, str], config: dict[str, Any]
    ) -> LocalProvider:
        """Start a bundled provider in this host; raises ``ConfigError`` for an unknown one. Two applications
        asking at once for the same (provider, link name) get one instance: the second joins the first."""
        cls = provider_class(image_ref)
        provider_id = builtin_provider_id(image_ref.removeprefix("builtin:"))
        async with self._locks.setdefault((provider_id, link_name), asyncio.Lock()):
            running = self.registry.get((provider_id, link_name))
            if running is not None:
                running.add_owner(annotations)
                return running
            local = LocalProvider(None, provider_id, link_name, cls.contract_id, image_ref)
            local.add_owner(annotations)
            if self.settings.provider_processes:
                return await self._start_process(local, cls.name)
            return await self._start_in_process(local, cls(config))

    async def _start_in_process(self, local: LocalProvider, provider: Any) -> LocalProvider:
        ctx = HostProviderContext(
            settings=self.settings,
            nc=self.nc,
            js=self.js,
            provider_id=local.provider_id,
            link_name=local.link_name,
            host_id=self.host_id,
            contract_id=local.contract_id,
            router=self.router,
        )
        local.provider = provider
        try:
            await provider.init(ctx)
            local.server = ProviderServer(
                provider, ctx, self.rpc, health_interval_s=HEALTH_INTERVAL_S, metrics=self.metrics
            )
            await local.server.start()
        except Exception as exc:
            await self.publish(
                events.PROVIDER_START_FAILED,
                {"provider_ref": local.image_ref, "link_name": local.link_name, "error": str(exc)},
            )
            raise
        self.registry.add(local)
        for link in self.data.links_of_provider(local.provider_id, local.link_name):
            await self._put_link_safely(local, link)
        await self.publish(
            events.PROVIDER_STARTED,
            events.provider_data(local.provider_id, local.link_name, local.contract_id, image_ref=local.image_ref),
        )
        self.log.info(
            "provider started", provider_id=local.provider_id, image_ref=local.image_ref, link_name=local.link_name
        )
        return local

    async def _start_process(self, local: LocalProvider, name: str) -> LocalProvider:
        process = ProviderProcess(
            name,
            local.link_name,
            self.settings,
            self.publish,
            provider_id=local.provider_id,
            contract_id=local.contract_id,
        )
        await process.start()
        local.process = process
        self.registry.add(local)
        self.log.info(
            "provider process started",
            provider_id=local.provider_id,
            image_ref=local.image_ref,
            pid=process.proc.pid if process.proc else None,
        )
        return local

    async def stop(self, provider_id: str, link_name: str, annotations: dict[str, str] | None = None) -> bool:
        """Stop one owner's share (``annotations``) or, with ``None``, the provider. ``False`` if absent."""
        local = self.registry.get((provider_id, link_name))
        if local is None:
            return False
        if annotations is not None and local.remove_owner(annotations):
            return True  # other applications still use it
        self.registry.remove(provider_id, link_name)
        fields = {"host_id": self.host_id, "provider_id": provider_id, "link_name": link_name}
        with logged(log, "provider server did not stop cleanly", **fields):
            if local.server is not None:
                await local.server.stop()
        with logged(log, "provider process did not stop cleanly", **fields):
            if local.process is not None:
                await local.process.stop()
        with logged(log, "provider shutdown failed", **fields):
            if local.provider is not None:
                await local.provider.shutdown()
        await self.publish(events.PROVIDER_STOPPED, events.provider_data(provider_id, link_name, local.contract_id))
        return True

    async def stop_all(self) -> None:
        for provider_id, link_name in list(self.registry):
            await self.stop(provider_id, link_name)

    async def on_link(self, action: str, link: LinkDefinition) -> None:
        """A link was put or deleted in LATTICEDATA: tell the in-process provider it names, if it runs here."""
        local = self.registry.get((link.provider_id, link.link_name))
        if local is None or local.provider is None:  # a provider process learns its links itself
            return
        if action == "put":
            await self._put_link_safely(local, link)
        else:
            await local.provider.del_link(link)

    async def _put_link_safely(self, local: LocalProvider, link: LinkDefinition) -> None:
        if local.provider is None:
            return
        try:
            await local.provider.put_link(link)
        except Exception as exc:
            self.log.warning("link refused by provider", link=link.key, error=str(exc))
            await self.publish(
                events.LINKDEF_SET_FAILED,
                {"link": link.to_dict(), "actor_id": link.actor_id, "contract_id": link.contract_id, "error": str(exc)},
            )
            # A refusal may pass (a port still held by a provider that is moving here): retry a while.
            self.spawn(self._retry_link(local, link), "link-retry")

    async def _retry_link(self, local: LocalProvider, link: LinkDefinition, attempts: int = 30) -> None:
        for attempt in range(attempts):
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            current = self.data.link_for(link.actor_id, link.contract_id, link.link_name)
            if current != link or self.registry.get((local.provider_id, local.link_name)) is not local:
                return
            if local.provider is None:
                return
            try:
                await local.provider.put_link(link)
            except Exception as exc:
                self.log.debug("link still refused", link=link.key, attempt=attempt + 1, error=str(exc))
                continue
            self.log.info("link accepted on retry", link=link.key, attempt=attempt + 1)
            return
