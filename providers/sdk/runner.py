"""A capability provider as its own process on the lattice: the NATS half of the provider SDK.

    NatsProviderContext   ``ProviderContext`` over NATS: ``invoke_actor`` is a signed ``Rpc`` invocation
    ProviderRunner        connect, context, ``init``, serve (``lattice.providers.sdk.server``), drain on stop;
                          Prometheus metrics on ``settings.metrics`` (HOST:PORT) when set
    run_standalone        ``ProviderRunner`` until SIGTERM/SIGINT or a ``shutdown`` request

Hosts refuse unsigned invocations and providers refuse them too, so a standalone provider needs the
lattice's cluster seed: the same one its hosts were given. Signing, verifying and error mapping are
``lattice.rpc``'s; serving the provider's subjects is ``lattice.providers.sdk.server``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import TracebackType
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from lattice import events, keys
from lattice.connection import connect, drain
from lattice.errors import ConfigError, ConnectionLost
from lattice.messages import Entity
from lattice.observability import tracing
from lattice.observability.metrics import CallMetrics, MetricsServer, provider_sample
from lattice.providers.sdk import Provider
from lattice.providers.sdk.server import ProviderServer
from lattice.rpc import Rpc
from lattice.settings import Settings

log = structlog.get_logger("lattice.providers")


class NatsProviderContext:
    """``ProviderContext`` for a provider on its own: actors are reached over NATS (SPEC §4).

    Every outbound invocation is signed with ``cluster_key`` (hosts refuse unsigned ones); ``rpc``
    also verifies the invocations this provider serves.
    """

    def __init__(
        self,
        settings: Settings,
        nc: NATS,
        *,
        provider_id: str,
        contract_id: str,
        cluster_key: keys.KeyPair,
        link_name: str = "default",
        host_id: str = "",
        js: JetStreamContext | None = None,
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.js = js or nc.jetstream()
        self.provider_id = provider_id
        self.contract_id = contract_id
        self.link_name = link_name
        self.host_id = host_id
        self.entity = Entity(provider_id, contract_id, link_name)
        self.rpc = Rpc.from_settings(
            nc, settings, cluster_key=cluster_key, sender_id=provider_id, tracer=tracing.RPC_TRACER
        )
        self._log = log.bind(provider_id=provider_id, link_name=link_name)

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        return await self.rpc.invoke(
            self.entity, Entity(actor_id), operation, payload, timeout_s=timeout_s, trace_context=trace_context
        )

    def log(self, event: str, **fields: Any) -> None:
        self._log.info(event, host_id=self.host_id, **fields)


class ProviderRunner:
    """A standalone provider process: ``async with ProviderRunner(p, settings) as r: await r.wait()``.

    Connects, builds a ``NatsProviderContext``, calls ``init``, learns links, serves; on exit stops
    serving, lets in-flight calls finish, calls ``shutdown``, publishes ``provider_stopped``, drains.
    Raises ``ConfigError`` without ``settings.cluster_seed``: hosts would refuse everything it sends.
    """

    def __init__(
        self,
        provider: Provider,
        settings: Settings,
        *,
        link_name: str = "default",
        provider_id: str | None = None,
        health_interval_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.link_name = link_name
        self.provider_id = provider_id or provider.builtin_id()
        # health events at the hosts' heartbeat cadence: observers call a provider lost (and publish
        # provider_stopped for it, e.g. after kill -9) once ``heartbeat_misses`` of them are missing
        self.health_interval_s = settings.heartbeat_s if health_interval_s is None else health_interval_s
        self.stopping = asyncio.Event()
        self.nc: NATS | None = None
        self.server: ProviderServer | None = None
        self.metrics = CallMetrics(context={"provider_id": self.provider_id})
        self.metrics_server: MetricsServer | None = None
        self.lost: ConnectionLost | None = None

    def stop(self) -> None:
        """Ask ``wait()`` to return (signal handlers and ``shutdown`` requests call this)."""
        self.stopping.set()

    async def wait(self) -> None:
        """Until ``stop()``; raises ``ConnectionLost`` when the NATS connection is gone for good."""
        await self.stopping.wait()
        if self.lost is not None:
            raise self.lost

    def _on_lost(self, reason: str) -> None:
        if self.stopping.is_set():
            return
        self.lost = ConnectionLost(
            f"provider {self.provider.name} lost its NATS connection: {reason}; it stops so that it can restart"
        )
        self.stop()

    async def __aenter__(self) -> ProviderRunner:
        s = self.settings
        if not s.cluster_seed:
            raise ConfigError(
                f"provider {self.provider.name} needs the lattice's cluster seed to sign and check invocations: "
                "pass --cluster-seed or set LATTICE_CLUSTER_SEED (the same seed as the hosts)"
            )
        cluster_key = keys.from_seed(s.cluster_seed)
        if s.metrics:
            self.metrics_server = MetricsServer(self.metrics.registry, s.metrics)
        name = f"provider-{self.provider.name}-{self.link_name}"
        try:
            self.nc = await connect(s, name, on_reconnect=self._reconnected, on_lost=self._on_lost)
        except BaseException:
            if self.metrics_server is not None:
                self.metrics_server.close()
            raise
        nc, loop = self.nc, asyncio.get_running_loop()
        self.metrics.watch_connection(lambda: nc.is_connected)
        self.metrics.watch(providers=lambda: [provider_sample(self.provider, self.provider_id, self.link_name, loop)])
        try:
            ctx = NatsProviderContext(
                s,
                self.nc,
                provider_id=self.provider_id,
                contract_id=self.provider.contract_id,
                link_name=self.link_name,
                cluster_key=cluster_key,
            )
            await self.provider.init(ctx)
            self.server = ProviderServer(
                self.provider,
                ctx,
                ctx.rpc,
                learn_links=True,
                on_shutdown=self.stop,
                health_interval_s=self.health_interval_s,
                metrics=self.metrics,
            )
            await self.server.start()
            served = {"metrics_url": self.metrics_server.url} if self.metrics_server else {}
            await self.server.publish_event(events.PROVIDER_STARTED, {"name": self.provider.name, **served})
        except BaseException:
            await self._close()
            raise
        return self

    async def _reconnected(self) -> None:
        self.metrics.nats_reconnects.inc()
        if self.server is not None:
            await self.server.on_reconnect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self.server is not None:
            await self.server.stop()
        try:
            await self.provider.shutdown()
        except Exception:
            log.exception("provider shutdown failed", provider=self.provider.name)
        if self.server is not None:
            await self.server.publish_event(events.PROVIDER_STOPPED, {"name": self.provider.name})
            self.server = None
        if self.nc is not None:
            await drain(self.nc)
        self.nc = None
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None


async def run_standalone(
    provider: Provider,
    settings: Settings,
    *,
    link_name: str = "default",
    provider_id: str | None = None,
    health_interval_s: float | None = None,
) -> None:
    """Run ``provider`` on the lattice until SIGTERM/SIGINT or a ``shutdown`` request, then drain."""
    loop = asyncio.get_running_loop()
    async with ProviderRunner(
        provider, settings, link_name=link_name, provider_id=provider_id, health_interval_s=health_interval_s
    ) as runner:
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, runner.stop)
                installed.append(sig)
        log.info("provider running", provider=provider.name, provider_id=runner.provider_id, link_name=link_name)
        try:
            await runner.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
