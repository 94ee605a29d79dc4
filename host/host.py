"""A lattice host: runs actors and bundled providers, joins the lattice over NATS.

    async with Host(settings) as host:
        await host.serve()          # until stop() or a ``stop`` command

The host owns its NATS connection, its lifecycle (``Lifecycle``), its actors and the tasks that serve them.
It composes small parts, each with one job: the registries of what runs here (``host.registry``: the router
and the control interface read them, only their owners write), the providers it runs
(``host.hosted_providers``), where modules come from (``host.images``), the router and the control interface.
Wasm runs on a bounded thread pool so a slow actor never delays heartbeats. On stop it stops taking calls,
answers what is queued, publishes ``host_stopped`` and drains NATS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import platform
import time
from typing import Any

import structlog

from lattice import events, keys, subjects
from lattice.connection import cancel_and_wait, connect, drain, drain_subscription, settle
from lattice.errors import ConfigError, ConnectionLost, LatticeError
from lattice.failsafe import logged
from lattice.host import images
from lattice.host.actors import RunningActor, actor_config, admit, limits_from, wasi_from
from lattice.host.component import compile_actor, new_pool
from lattice.host.hosted_providers import HostedProviders
from lattice.host.limits import WorkerQuota
from lattice.host.providers import LocalProvider
from lattice.host.registry import ActorRegistry, ProviderRegistry
from lattice.host.router import Router
from lattice.host.runtime import Runtime
from lattice.host.serving import InvocationServer
from lattice.inventory import HostInventory
from lattice.links import LatticeData
from lattice.messages import Entity
from lattice.observability import tracing
from lattice.observability.metrics import CallMetrics, MetricsServer
from lattice.rpc import Rpc
from lattice.settings import Settings

log = structlog.get_logger("host")
VERSION = "0.1.0"
WORKER_SHARE = 4  # one actor holds at most a quarter of the worker threads (host.limits.WorkerQuota)


class Lifecycle(enum.Enum):
    """Where a host is in its life: one value instead of a flag per phase."""

    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Host:
    """One host process's participation in a lattice (SPEC §1, §4)."""

    def __init__(self, settings: Settings, *, runtime: Runtime | None = None, workers: int = 32) -> None:
        self.settings = settings
        self.key = keys.generate("server")
        self.id = self.key.public_key
        self.cluster_key = keys.from_seed(settings.cluster_seed) if settings.cluster_seed else keys.generate("cluster")
        self.runtime = runtime or Runtime(settings.state_dir / "cache")
        self._own_runtime = runtime is None
        self.workers = workers
        self.executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="wasm")
        self.actors = ActorRegistry()
        self.providers = ProviderRegistry()
        self.labels = {
            "hostcore.os": platform.system().lower(),
            "hostcore.arch": platform.machine(),
            **settings.labels,
        }
        self.started_at = time.monotonic()  # uptimes only: they order this host's inventories (a clock step does not)
        self.log = log.bind(host_id=self.id)
        self._stopped = asyncio.Event()
        self._drain_on_exit = False
        self.state = Lifecycle.STARTING
        self.lost: ConnectionLost | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self.metrics = CallMetrics(context={"host_id": self.id})
        self.metrics.watch(actors=self.actors.samples, providers=lambda: self.providers.samples(self.loop))
        self.metrics_server: MetricsServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Host:
        self.loop = asyncio.get_running_loop()
        if self.settings.metrics:
            self.metrics_server = MetricsServer(self.metrics.registry, self.settings.metrics)
        self.nc = await connect(
            self.settings, f"host-{self.id[:8]}", on_reconnect=self._on_reconnect, on_lost=self._on_lost
        )
        self.metrics.watch_connection(lambda: self.nc.is_connected)
        try:
            await self._join()
        except Exception as exc:
            if self.lost is None:
                raise
            raise self.lost from exc  # gone for good while joining: say so, not with nats-py's traceback
        return self

    async def _join(self) -> None:
        self.js = self.nc.jetstream()
        self.rpc = Rpc.from_settings(
            self.nc, self.settings, cluster_key=self.cluster_key, sender_id=self.id, tracer=tracing.RPC_TRACER
        )
        self.data = await LatticeData.of(self.rpc, self.js, source=self.id)
        self.router = Router(
            settings=self.settings,
            host_id=self.id,
            data=self.data,
            actors=self.actors,
            providers=self.providers,
            rpc=self.rpc,
            publish=self.publish_event,
            loop=self.loop,
            executor=self.executor,
            metrics=self.metrics,
            quota=WorkerQuota(self.workers // WORKER_SHARE),
        )
        self.invocations = InvocationServer(
            host_id=self.id, actors=self.actors, rpc=self.rpc, router=self.router, spawn=self.spawn, log=self.log
        )
        self.hosted = HostedProviders(
            settings=self.settings,
            host_id=self.id,
            registry=self.providers,
            nc=self.nc,
            js=self.js,
            rpc=self.rpc,
            data=self.data,
            router=self.router,
            metrics=self.metrics,
            publish=self.publish_event,
            spawn=self.spawn,
        )
        self.data.on_link(self.hosted.on_link)
        from lattice.host.control import ControlInterface

        self.control = ControlInterface(self)
        await self.control.subscribe()
        await settle(self.nc)  # the control subjects are live before host_started tells anyone
        self.spawn(self._heartbeat(), "heartbeat")
        await self.publish_event(events.HOST_STARTED, {"labels": self.labels, "version": VERSION})
        self.state = Lifecycle.RUNNING
        self.log.info("host started", lattice=self.settings.lattice, labels=self.labels, metrics=self.metrics_url)

    async def __aexit__(self, *exc: object) -> None:
        if self._drain_on_exit:
            await self.drain()
        await self.shutdown()

    async def serve(self) -> None:
        """Run until ``stop()`` (or a ``stop`` command) is called.

        Raises ``ConnectionLost`` when the NATS connection is gone for good: the host then stops serving
        (its providers release their ports on exit) and its process should exit non-zero.
        """
        await self._stopped.wait()
        if self.lost is not None:
            raise self.lost

    def stop(self, *, drain: bool = True) -> None:
        """Ask ``serve()`` to return; with ``drain`` the exit first lets the control plane move this
        host's managed instances elsewhere (see ``drain``)."""
        self._drain_on_exit = drain
        self._stopped.set()

    async def drain(self, timeout_s: float | None = None) -> None:
        """Graceful leave: announce ``draining`` in a heartbeat, then wait (up to ``timeout_s``, default
        ``heartbeat_s * heartbeat_misses * 3``) until the control plane has scaled this host's managed
        instances to zero (it re-places them first). Instances nobody manages are not waited for."""
        self.state = Lifecycle.DRAINING
        timeout = timeout_s if timeout_s is not None else self.settings.drain_timeout_s
        if timeout is None:
            timeout = self.settings.heartbeat_s * self.settings.heartbeat_misses * 3
        with logged(log, "draining heartbeat not published", host_id=self.id):
            await self.publish_event(events.HOST_HEARTBEAT, self.inventory().to_dict())
        deadline = self.loop.time() + timeout
        while self._managed() and self.loop.time() < deadline:  # noqa: ASYNC110 (polls local state)
            await asyncio.sleep(0.05)
        self.log.info("host drained", left=self._managed())

    def _managed(self) -> int:
        return self.actors.managed() + self.providers.managed()

    async def shutdown(self) -> None:
        """Stop actors and providers, publish ``host_stopped``, drain NATS. Idempotent."""
        if self.state in (Lifecycle.STOPPING, Lifecycle.STOPPED):
            return
        self.state = Lifecycle.STOPPING
        self._stopped.set()
        for actor_id in list(self.actors):
            await self.stop_actor(actor_id, None, 0)
        await self.hosted.stop_all()
        with logged(log, "host_stopped not published", host_id=self.id):
            await self.publish_event(events.HOST_STOPPED, {"labels": self.labels})
        for task in self._tasks:
            task.cancel()
        await cancel_and_wait(*self._tasks)
        await self.data.stop()
        await drain(self.nc)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._own_runtime:
            self.runtime.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        self.state = Lifecycle.STOPPED
        self.log.info("host stopped")

    @property
    def draining(self) -> bool:
        """Leaving: placed on by nobody (``inventory().draining``), from ``drain`` until it is gone."""
        return self.state in (Lifecycle.DRAINING, Lifecycle.STOPPING, Lifecycle.STOPPED)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this host cancels (and waits for) when it shuts down."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_lost(self, reason: str) -> None:
        if self.state in (Lifecycle.STOPPING, Lifecycle.STOPPED):
            return
        self.lost = ConnectionLost(f"host {self.id} lost its NATS connection: {reason}; it stops to be restarted")
        self.stop(drain=False)

    async def _on_reconnect(self) -> None:
        self.metrics.nats_reconnects.inc()
        await self.data.restart()

    # --- events and inventory --------------------------------------------------------------------

    async def publish_event(self, name: str, data: dict[str, Any]) -> None:
        if self.nc.is_closed:
            return  # the connection is gone (see ``serve``): there is nobody left to tell
        await self.nc.publish(subjects.events(self.settings.lattice), events.make(name, self.id, data))

    def inventory(self) -> HostInventory:
        return HostInventory.of(
            self.id,
            self.labels,
            VERSION,
            round(time.monotonic() - self.started_at, 3),
            tuple(a.inventory() for a in self.actors.values()),
            tuple(entry for p in self.providers.values() for entry in p.inventory()),
            draining=self.draining,
            metrics_url=self.metrics_url,
        )

    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server is not None else None

    async def _heartbeat(self) -> None:
        while True:
            for running in list(self.actors.values()):
                running.sample_load()
            with logged(log, "heartbeat not published", host_id=self.id):
                await self.publish_event(events.HOST_HEARTBEAT, self.inventory().to_dict())
            await asyncio.sleep(self.settings.heartbeat_s)

    # --- actors ----------------------------------------------------------------------------------

    async def scale_actor(
        self, image_ref: str, count: int, annotations: dict[str, str], properties: dict[str, Any]
    ) -> RunningActor | None:
        """Set this owner's instance count of the actor at ``image_ref`` to ``count`` (0 stops it); instances
        are keyed by image and the properties enforced on them (``host.actors.admit``).

        Raises ``InvalidActor``, ``ClaimsError``, ``NotFound`` or ``ConfigError`` with the reason; the
        failure is also published as ``actors_start_failed``.
        """
        lock = self._locks.setdefault(image_ref, asyncio.Lock())
        async with lock:
            running = self.actors.by_image(image_ref)
            if running is None and count <= 0:
                return None
            if count > 0:
                try:
                    if running is not None and admit(running, count, annotations, properties, self.settings.allow_dirs):
                        await self.stop_actor(running.actor_id, None, 0)  # it restarts with the new properties
                        running = None
                    running = running or await self._start_actor(image_ref, count, properties)
                except LatticeError as exc:
                    await self.publish_event(
                        events.ACTORS_START_FAILED,
                        {"image_ref": image_ref, "annotations": annotations, "error": str(exc)},
                    )
                    raise
            assert running is not None
            running.set_count(annotations, count)
            if running.count <= 0:
                await self.stop_actor(running.actor_id, None, 0)
                return None
            await asyncio.to_thread(running.pool.warm, running.count)
            return running

    async def _start_actor(self, image_ref: str, count: int, properties: dict[str, Any]) -> RunningActor:
        limits, wasi = limits_from(properties, count), wasi_from(properties, self.settings.allow_dirs)
        wasm = await images.fetch(self.settings, self.js, image_ref)
        images.admit(self.settings, wasm)
        # a component's first compile takes seconds (then it is mapped from the disk cache): off the loop
        compiled = await asyncio.to_thread(compile_actor, self.runtime, wasm)
        if compiled.actor_id in self.actors:
            raise ConfigError(f"actor {compiled.actor_id} already runs on this host from another image")
        actor_log = self.log.bind(actor_id=compiled.actor_id)

        def log_sink(stream: str, text: str) -> None:
            actor_log.info(text.rstrip("\n"), stream=stream)

        def host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
            return self.router.host_call(compiled.actor_id, binding, namespace, operation, payload)

        def config() -> dict[str, str]:
            return actor_config(compiled.actor_id, list(self.data.links.values()), properties)

        pool = await asyncio.to_thread(
            new_pool,
            self.runtime,
            compiled,
            limits=limits,
            wasi=wasi,
            host_call=host_call,
            log_sink=log_sink,
            config=config,
            spare=True,
        )
        running = RunningActor(compiled, pool, image_ref, properties)
        self.actors.add(running)
        running.subscription = await self.nc.subscribe(
            subjects.actor_rpc(self.settings.lattice, compiled.actor_id),
            queue=compiled.actor_id,
            cb=self.invocations.on_message,
        )
        await settle(self.nc)  # invocations reach this host before actor_started tells anyone it runs
        claims = compiled.claims
        await self.data.publish_claims(
            compiled.actor_id,
            claims.to_dict() if claims else {"sub": compiled.actor_id, "name": None, "call_alias": None},
        )
        await self.publish_event(
            events.ACTOR_STARTED,
            {"public_key": compiled.actor_id, "image_ref": image_ref, "api_version": pool.api_version},
        )
        actor_log.info("actor started", image_ref=image_ref, digest=compiled.digest)
        return running

    async def stop_actor(self, actor_id: str, annotations: dict[str, str] | None, count: int) -> bool:
        """Stop an owner's share (``annotations``) or, with ``None``, the whole actor. ``False`` if absent."""
        running = self.actors.get(actor_id)
        if running is None:
            return False
        if annotations is not None:
            running.set_count(annotations, count)
            if running.count > 0:
                return True
        self.actors.remove(actor_id)
        if running.subscription is not None:
            # drain, not unsubscribe (which drops calls NATS already delivered): each is answered, no_responders
            # once the actor is gone here, and its caller tries again (SPEC §5: no call lost to a scale-down)
            with logged(log, "actor subscription not closed", host_id=self.id, actor_id=actor_id):
                await drain_subscription(self.nc, running.subscription)
        running.pool.close()
        await self.publish_event(events.ACTOR_STOPPED, {"public_key": actor_id, "image_ref": running.image_ref})
        self.log.info("actor stopped", actor_id=actor_id)
        return True

    async def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        """Invoke an actor as the host itself (used by the control plane's invoke and by tests)."""
        return await self.router.invoke_actor(actor_id, operation, payload, origin=Entity(self.id))

    # --- providers -------------------------------------------------------------------------------

    async def start_provider(
        self, image_ref: str, link_name: str, annotations: dict[str, str], config: dict[str, Any]
    ) -> LocalProvider:
        """Start a bundled provider here, or add an owner to the one running (``HostedProviders.start``)."""
        return await self.hosted.start(image_ref, link_name, annotations, config)

    async def stop_provider(self, provider_id: str, link_name: str, annotations: dict[str, str] | None = None) -> bool:
        """Stop one owner's share (``annotations``) or, with ``None``, the provider. ``False`` if absent."""
        return await self.hosted.stop(provider_id, link_name, annotations)
