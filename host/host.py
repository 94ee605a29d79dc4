"""A lattice host: runs actors and bundled providers, joins the lattice over NATS.

    async with Host(settings) as host:
        await host.serve()          # until stop() or a ``stop`` command

The host owns its NATS connection, its actors (``host.actors``), its in-process providers and the
tasks that serve them. Wasm runs on a bounded thread pool so a slow actor never delays heartbeats.
On stop it stops taking calls, answers what is queued, publishes ``host_stopped`` and drains NATS.

Over 400 lines: ``Host`` is the composition root every helper of the host meets in (actors, providers, router,
control, metrics, images). The next cut is issue 14's: small registries (actors, providers) with a lifecycle
enum, composed here, instead of dicts handed to the router by reference.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import hashlib
import platform
import time
from pathlib import Path
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError, ObjectNotFoundError

from lattice import caps, events, keys, oci, subjects
from lattice import claims as claims_mod
from lattice.capability import builtin_provider_id
from lattice.connection import cancel_and_wait, connect, drain, object_store, settle
from lattice.errors import ClaimsError, ConfigError, ConnectionLost, Expired, LatticeError, NoResponders, NotFound
from lattice.failsafe import logged
from lattice.host.actors import RunningActor, actor_config, limits_from, wasi_from
from lattice.host.component import compile_actor, new_pool
from lattice.host.limits import WorkerQuota
from lattice.host.providers import HostProviderContext, LocalProvider, ProviderProcess
from lattice.host.router import Router
from lattice.host.runtime import Runtime
from lattice.inventory import HostInventory
from lattice.links import LatticeData
from lattice.messages import Entity, Invocation, LinkDefinition
from lattice.observability import tracing
from lattice.observability.metrics import ActorSample, CallMetrics, MetricsServer, ProviderSample, provider_sample
from lattice.providers.sdk.base import provider_class
from lattice.providers.sdk.server import ProviderServer
from lattice.rpc import DEFAULT_MAX_PAYLOAD, Rpc
from lattice.settings import Settings

log = structlog.get_logger("host")
VERSION = "0.1.0"
HEALTH_INTERVAL_S = 5.0
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
        self.actors: dict[str, RunningActor] = {}
        self.providers: dict[tuple[str, str], LocalProvider] = {}
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
        self.metrics.watch(actors=self._actor_samples, providers=self._provider_samples)
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
        self.data.on_link(self._on_link)
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
        actors = sum(c for a in self.actors.values() for k, c in a.counts.items() if "appspec" in k)
        return actors + sum(len(p.owners) for p in self.providers.values())

    async def shutdown(self) -> None:
        """Stop actors and providers, publish ``host_stopped``, drain NATS. Idempotent."""
        if self.state in (Lifecycle.STOPPING, Lifecycle.STOPPED):
            return
        self.state = Lifecycle.STOPPING
        self._stopped.set()
        for actor_id in list(self.actors):
            await self.stop_actor(actor_id, None, 0)
        for key in list(self.providers):
            await self.stop_provider(*key)
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

    def _actor_samples(self) -> list[ActorSample]:
        samples = []
        for running in list(self.actors.values()):
            stats, claims = running.pool.stats(), running.compiled.claims
            samples.append(
                ActorSample(
                    running.actor_id,
                    (claims.name if claims else None) or "",
                    running.image_ref,
                    stats["instances"],
                    stats["in_flight"],
                    stats["waiting"],
                    running.pool.limits.max_instances,
                )
            )
        return samples

    def _provider_samples(self) -> list[ProviderSample]:
        local = [p for p in list(self.providers.values()) if p.provider is not None]  # processes report their own
        return [provider_sample(p.provider, p.provider_id, p.link_name, self.loop) for p in local if p.provider]

    async def _heartbeat(self) -> None:
        while True:
            for running in list(self.actors.values()):
                running.sample_load()
            with logged(log, "heartbeat not published", host_id=self.id):
                await self.publish_event(events.HOST_HEARTBEAT, self.inventory().to_dict())
            await asyncio.sleep(self.settings.heartbeat_s)

    # --- actors ----------------------------------------------------------------------------------

    async def fetch_actor(self, image_ref: str) -> bytes:
        """Module bytes for ``sha256:<hex>`` (the artifact store), ``file://<path>`` or an OCI reference.

        Raises ``NotFound`` when there is no such artifact or file.
        """
        if image_ref.startswith("sha256:"):
            store = await object_store(
                self.js, subjects.artifacts_bucket(self.settings.lattice), replicas=self.settings.js_replicas
            )
            try:
                result = await store.get(image_ref)
            except (ObjectNotFoundError, NotFoundError) as exc:
                raise NotFound(f"no artifact {image_ref} in the lattice: upload it with POST /v1/artifacts") from exc
            data = bytes(result.data or b"")
            if "sha256:" + hashlib.sha256(data).hexdigest() != image_ref.lower():
                # the object store is writable by whoever NATS lets write it: trust the digest, not the store
                raise ClaimsError(f"artifact {image_ref} in the object store does not match its digest: refused")
            return data
        if image_ref.startswith("file://"):
            path = Path(image_ref.removeprefix("file://"))
            try:
                return await asyncio.to_thread(caps.read_regular_file, path)
            except OSError as exc:
                raise NotFound(f"cannot read {path}: {exc.strerror}") from exc
        if oci.is_reference(image_ref):  # told directly (not by the control plane, which stores it first)
            return (await oci.pull_as(self.settings, image_ref)).wasm
        raise ConfigError(f"unsupported actor image {image_ref!r}: use sha256:<digest>, file://<path> or an OCI ref")

    def admit(self, wasm: bytes) -> None:
        """Apply this host's policy to a module's claims (SPEC §3); raises ``ClaimsError``.

        A signed actor needs an issuer in ``trusted_issuers``; with none configured it is refused
        unless the operator opted out with ``allow_any_issuer``.
        """
        claims = claims_mod.extract_claims(wasm)
        if claims is None:
            if not self.settings.allow_unsigned:
                raise ClaimsError("unsigned actors are not allowed on this host (start it with --allow-unsigned)")
            return
        trusted = set(self.settings.trusted_issuers)
        if not trusted and not self.settings.allow_any_issuer:
            raise ClaimsError(
                f"actor signed by {claims.iss}, and this host trusts no issuer: start it with "
                "--trusted-issuers (or --allow-any-issuer to run actors of any issuer)"
            )
        claims_mod.verify_actor(wasm, trusted_issuers=trusted or None)

    async def scale_actor(
        self, image_ref: str, count: int, annotations: dict[str, str], properties: dict[str, Any]
    ) -> RunningActor | None:
        """Set this owner's instance count of the actor at ``image_ref`` to ``count`` (0 stops it).

        Raises ``InvalidActor``, ``ClaimsError``, ``NotFound`` or ``ConfigError`` with the reason; the
        failure is also published as ``actors_start_failed``.
        """
        lock = self._locks.setdefault(image_ref, asyncio.Lock())
        async with lock:
            running = next((a for a in self.actors.values() if a.image_ref == image_ref), None)
            if running is None and count <= 0:
                return None
            if running is None:
                try:
                    running = await self._start_actor(image_ref, count, properties)
                except LatticeError as exc:
                    await self.publish_event(
                        events.ACTORS_START_FAILED,
                        {"image_ref": image_ref, "annotations": annotations, "error": str(exc)},
                    )
                    raise
            running.set_count(annotations, count)
            if running.count <= 0:
                await self.stop_actor(running.actor_id, None, 0)
                return None
            await asyncio.to_thread(running.pool.warm, running.count)
            return running

    async def _start_actor(self, image_ref: str, count: int, properties: dict[str, Any]) -> RunningActor:
        limits, wasi = limits_from(properties, count), wasi_from(properties, self.settings.allow_dirs)
        wasm = await self.fetch_actor(image_ref)
        self.admit(wasm)
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
        )
        running = RunningActor(compiled, pool, image_ref, properties)
        self.actors[compiled.actor_id] = running
        running.subscription = await self.nc.subscribe(
            subjects.actor_rpc(self.settings.lattice, compiled.actor_id),
            queue=compiled.actor_id,
            cb=self._on_invocation,
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
        del self.actors[actor_id]
        if running.subscription is not None:
            # drain, not unsubscribe (which drops calls NATS already delivered): each is answered, no_responders
            # once the actor is gone here, and its caller tries again (SPEC §5: no call lost to a scale-down)
            with logged(log, "actor subscription not closed", host_id=self.id, actor_id=actor_id):
                await running.subscription.drain()  # type: ignore[no-untyped-call]
        running.pool.close()
        await self.publish_event(events.ACTOR_STOPPED, {"public_key": actor_id, "image_ref": running.image_ref})
        self.log.info("actor stopped", actor_id=actor_id)
        return True

    async def _on_invocation(self, msg: Msg) -> None:
        # nats-py runs one subscription's callbacks one at a time: hand the call to a task.
        self.spawn(self._serve_invocation(msg), "invocation")

    async def _serve_invocation(self, msg: Msg) -> None:
        actor_id = subjects.last_segment(msg.subject)
        invocation_id, vouched = "", False
        try:
            inv = Invocation.from_msgpack(msg.data)
            deadline = inv.deadline()  # read on arrival: a wait for verification or a worker counts
            invocation_id = inv.id  # known before verification, so that even a refusal is answered
            running = self.actors.get(actor_id)
            limit = running.pool.limits.max_payload_bytes if running is not None else DEFAULT_MAX_PAYLOAD
            inv = await self.rpc.admit(inv, target=Entity(actor_id), max_bytes=limit)
            vouched = bool(inv.claims_mac)
            # this task's own context: the bindings reach every log line of the call, here and on the worker
            structlog.contextvars.bind_contextvars(
                invocation_id=inv.id, actor_id=actor_id, **_trace_ids(inv.trace_context)
            )
            running = self.actors.get(actor_id)
            if running is None:  # stopped after NATS routed the call here: the caller tries again (SPEC §5)
                raise NoResponders(f"actor {actor_id} stopped on host {self.id} as the call came")
            self.router.check_invocation_allowed(running, inv.origin)
            result: bytes | Exception = await self.router.submit_local(
                running, inv.operation, inv.msg, parent=inv.trace_context, invocation_id=inv.id, deadline=deadline
            )
        except Expired as exc:  # counted and logged per burst by the router, not a line each
            result = exc
            self.router.drops.note(actor_id)
        except LatticeError as exc:
            result = exc
            self.log.info("invocation failed", actor_id=actor_id, invocation_id=invocation_id, error=str(exc))
        except Exception as exc:  # never leave a caller without an answer
            self.log.exception("invocation crashed", actor_id=actor_id)
            result = exc
        await self.rpc.answer(msg.reply, invocation_id, result, responder=Entity(actor_id), mac=vouched)

    async def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        """Invoke an actor as the host itself (used by the control plane's invoke and by tests)."""
        return await self.router.invoke_actor(actor_id, operation, payload, origin=Entity(self.id))

    # --- providers -------------------------------------------------------------------------------

    async def start_provider(
        self, image_ref: str, link_name: str, annotations: dict[str, str], config: dict[str, Any]
    ) -> LocalProvider:
        """Start a bundled provider in this host; raises ``ConfigError`` for an unknown one. Two applications
        asking at once for the same (provider, link name) get one instance: the second joins the first."""
        cls = provider_class(image_ref)
        provider_id = builtin_provider_id(image_ref.removeprefix("builtin:"))
        key = (provider_id, link_name)
        async with self._locks.setdefault(f"provider {provider_id} {link_name}", asyncio.Lock()):
            if key in self.providers:
                self.providers[key].add_owner(annotations)
                return self.providers[key]
            return await self._start_provider(cls, image_ref, provider_id, link_name, annotations, config)

    async def _start_provider(
        self,
        cls: Any,
        image_ref: str,
        provider_id: str,
        link_name: str,
        annotations: dict[str, str],
        config: dict[str, Any],
    ) -> LocalProvider:
        key = (provider_id, link_name)
        if self.settings.provider_processes:
            return await self._start_provider_process(cls, image_ref, provider_id, link_name, annotations)
        provider = cls(config)
        ctx = HostProviderContext(
            settings=self.settings,
            nc=self.nc,
            js=self.js,
            provider_id=provider_id,
            link_name=link_name,
            host_id=self.id,
            contract_id=cls.contract_id,
            router=self.router,
        )
        local = LocalProvider(provider, provider_id, link_name, cls.contract_id, image_ref)
        local.add_owner(annotations)
        try:
            await provider.init(ctx)
            local.server = ProviderServer(
                provider, ctx, self.rpc, health_interval_s=HEALTH_INTERVAL_S, metrics=self.metrics
            )
            await local.server.start()
        except Exception as exc:
            await self.publish_event(
                events.PROVIDER_START_FAILED,
                {"provider_ref": image_ref, "link_name": link_name, "error": str(exc)},
            )
            raise
        self.providers[key] = local
        for link in self.data.links_of_provider(provider_id, link_name):
            await self._put_link_safely(local, link)
        await self.publish_event(
            events.PROVIDER_STARTED,
            events.provider_data(provider_id, link_name, cls.contract_id, image_ref=image_ref),
        )
        self.log.info("provider started", provider_id=provider_id, image_ref=image_ref, link_name=link_name)
        return local

    async def _start_provider_process(
        self, cls: Any, image_ref: str, provider_id: str, link_name: str, annotations: dict[str, str]
    ) -> LocalProvider:
        process = ProviderProcess(
            cls.name, link_name, self.settings, self.publish_event, provider_id=provider_id, contract_id=cls.contract_id
        )
        await process.start()
        local = LocalProvider(None, provider_id, link_name, cls.contract_id, image_ref)
        local.add_owner(annotations)
        local.process = process
        self.providers[(provider_id, link_name)] = local
        self.log.info(
            "provider process started",
            provider_id=provider_id,
            image_ref=image_ref,
            pid=process.proc.pid if process.proc else None,
        )
        return local

    async def stop_provider(self, provider_id: str, link_name: str, annotations: dict[str, str] | None = None) -> bool:
        """Stop one owner's share (``annotations``) or, with ``None``, the provider. ``False`` if absent."""
        local = self.providers.get((provider_id, link_name))
        if local is None:
            return False
        if annotations is not None and local.remove_owner(annotations):
            return True  # other applications still use it
        del self.providers[(provider_id, link_name)]
        fields = {"host_id": self.id, "provider_id": provider_id, "link_name": link_name}
        with logged(log, "provider server did not stop cleanly", **fields):
            if local.server is not None:
                await local.server.stop()
        with logged(log, "provider process did not stop cleanly", **fields):
            if local.process is not None:
                await local.process.stop()
        with logged(log, "provider shutdown failed", **fields):
            if local.provider is not None:
                await local.provider.shutdown()
        await self.publish_event(
            events.PROVIDER_STOPPED,
            events.provider_data(provider_id, link_name, local.contract_id),
        )
        return True

    async def _on_link(self, action: str, link: LinkDefinition) -> None:
        local = self.providers.get((link.provider_id, link.link_name))
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
            await self.publish_event(
                events.LINKDEF_SET_FAILED,
                {"link": link.to_dict(), "actor_id": link.actor_id, "contract_id": link.contract_id, "error": str(exc)},
            )
            # A refusal may pass (a port still held by a provider that is moving here): retry a while.
            self.spawn(self._retry_link(local, link), "link-retry")

    async def _retry_link(self, local: LocalProvider, link: LinkDefinition, attempts: int = 30) -> None:
        for attempt in range(attempts):
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            current = self.data.link_for(link.actor_id, link.contract_id, link.link_name)
            if current != link or self.providers.get((local.provider_id, local.link_name)) is not local:
                return
            if local.provider is None:
                return
            try:
                await local.provider.put_link(link)
            except Exception:
                continue
            self.log.info("link accepted on retry", link=link.key, attempt=attempt + 1)
            return


def _trace_ids(carrier: dict[str, str]) -> dict[str, str]:
    tid = tracing.trace_id(carrier)
    return {"trace_id": tid} if tid else {}
