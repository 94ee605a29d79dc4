"""The control plane process: state, observation, reconciliation, leadership and the HTTP API.

    async with ControlPlane(settings, listen="127.0.0.1:8081") as cp:
        await cp.serve()

Every control plane serves the API; one leads (a KV lease renewed every second) and only the leader
reconciles, so two at once never fight and the other takes over when the leader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from typing import Any

import structlog
import uvicorn
from fastapi import Request
from nats.aio.msg import Msg

from lattice import caps, keys, seal, subjects
from lattice.commands import CommandReply, WakeActor
from lattice.connection import cancel_and_wait, connect, drain
from lattice.controlplane import rollouts
from lattice.controlplane.api import create_app
from lattice.controlplane.artifacts import inspect_actor, recheck_claims
from lattice.controlplane.images import ImageResolver
from lattice.controlplane.manifest import parse_manifest
from lattice.controlplane.observer import Observer
from lattice.controlplane.reconciler import Reconciler
from lattice.controlplane.state import AppRecord, AppVersion, ControlState
from lattice.errors import (
    Busy,
    ClaimsError,
    ConfigError,
    ConnectionLost,
    LimitExceeded,
    ManifestError,
    NotFound,
    VersionConflict,
)
from lattice.failsafe import logged
from lattice.inventory import HostSummary
from lattice.links import LatticeData
from lattice.messages import Entity
from lattice.observability import tracing
from lattice.observability.metrics import ControlPlaneMetrics
from lattice.rpc import Rpc
from lattice.settings import Settings

log = structlog.get_logger("lattice.controlplane")

MAX_BODY_BYTES = 64 * 1024 * 1024
STOP_GRACE_S = 3
LEASE_TTL_S = 3.0
STORE_ATTEMPTS = 20


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


class ControlPlane:
    """One control plane process (SPEC §5)."""

    def __init__(self, settings: Settings, *, listen: str = "127.0.0.1:8081") -> None:
        self.settings = settings
        self.listen = listen
        self.id = keys.generate("server").public_key
        self.cluster_key = keys.from_seed(settings.cluster_seed) if settings.cluster_seed else keys.generate("cluster")
        self._leader = False
        self._lease_until = 0.0  # by this process's clock: until when the lease it last took holds
        self._tasks: list[asyncio.Task[Any]] = []
        self.server: uvicorn.Server | None = None
        self.lost: ConnectionLost | None = None
        self.metrics = ControlPlaneMetrics()

    def is_leader(self) -> bool:
        """Leading: the last lease check made this one leader and the lease it took has not run out (a
        renewal stuck past it ends the leadership here as it does for the others)."""
        return self._leader and time.time() < self._lease_until

    async def __aenter__(self) -> ControlPlane:
        self.nc = await connect(
            self.settings, f"control-plane-{self.id[:8]}", on_reconnect=self._on_reconnect, on_lost=self._on_lost
        )
        self.metrics.watch_connection(lambda: self.nc.is_connected)
        self.js = self.nc.jetstream()
        self.state = await ControlState.open(self.js, self.settings.lattice, replicas=self.settings.js_replicas)
        self.rpc = Rpc.from_settings(
            self.nc, self.settings, cluster_key=self.cluster_key, sender_id=self.id, tracer=tracing.RPC_TRACER
        )
        self.data = await LatticeData.of(self.rpc, self.js, source=self.id)
        self.observer = Observer(
            self.nc, self.settings.lattice, heartbeat_s=self.settings.heartbeat_s, misses=self.settings.heartbeat_misses
        )
        await self.observer.start()
        self.reconciler = Reconciler(
            self.nc, self.state, self.observer, self.data, self.settings.lattice, metrics=self.metrics
        )
        self.reconciler.cooldown_s = self.settings.scale_down_cooldown_s
        self.observer.on_event(lambda event: self.reconciler.wake.set())
        self.observer.on_event(self.reconciler.on_event)
        self.observer.on_event(lambda event: self.metrics.events.labels(event.name).inc())
        await self.nc.subscribe(subjects.ctl_wake(self.settings.lattice), cb=self._on_wake)
        self._tasks = [
            asyncio.create_task(self._lead(), name="lease"),
            asyncio.create_task(self.reconciler.run(self.is_leader), name="reconcile"),
        ]
        self.images = ImageResolver(self.settings, self.state, self.upload_artifact)
        self.app = create_app(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await cancel_and_wait(*self._tasks)
        with logged(log, "leadership not released", id=self.id):
            await self.state.release(self.id)
        await self.data.stop()
        await drain(self.nc)

    async def _on_wake(self, msg: Msg) -> None:
        """A call waits for an actor scaled to zero: the leader scales it up and says whether it will."""
        if not self.is_leader() or not msg.reply:
            return
        try:
            self.rpc.sealer.check_headers(msg.headers, msg.subject, msg.data, what="a wake request")
        except ClaimsError as exc:
            log.warning("wake request refused", error=str(exc))
            return
        try:
            wake = WakeActor.from_body(json.loads(msg.data))
            reply = CommandReply(self.reconciler.wake_actor(wake.actor_id))
        except (ConfigError, ValueError) as exc:
            log.warning("wake request refused", error=str(exc))
            reply = CommandReply(False, error=f"bad wake request: {exc}")
        await seal.respond(self.nc, self.rpc.sealer, msg, json.dumps(reply.to_dict()).encode())

    def _on_lost(self, reason: str) -> None:
        self.lost = ConnectionLost(f"control plane lost its NATS connection: {reason}; it stops so that it can restart")
        self.stop()

    async def _on_reconnect(self) -> None:
        self.metrics.nats_reconnects.inc()
        await self.data.restart()

    async def serve(self) -> None:
        """Serve the HTTP API on ``listen`` until cancelled or ``stop()``; raises ``ConnectionLost`` (after
        closing the listener) when the NATS connection is gone for good."""
        host, port = split_listen(self.listen)
        # an open /v1/events stream never ends by itself: on stop, give requests STOP_GRACE_S, then cut them
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=STOP_GRACE_S
        )
        self.server = QuietServer(config)
        if self.lost is None:
            log.info("control plane listening", url=f"http://{host}:{port}", id=self.id)
            await self.server.serve()
        if self.lost is not None:
            raise self.lost

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    async def _lead(self) -> None:
        while True:
            asked = time.time()
            try:
                leading = await self.state.try_lead(self.id, LEASE_TTL_S)
                self._lease_until = asked + LEASE_TTL_S if leading else 0.0
            except Exception as exc:
                # a slow or failed renewal does not end a lease that still holds: nobody else can take it
                # before it runs out, so stepping down now would only make leadership flap under load
                leading = self._leader and time.time() < self._lease_until
                log.warning("leader lease check failed", error=str(exc), still_leading=leading)
            changed = leading != self._leader
            if changed:
                log.info("leadership changed", leader=leading, id=self.id)
                if leading:
                    await self.observer.refresh()  # know the hosts before planning anything
            self._leader = leading
            if changed and leading:
                self.reconciler.wake.set()  # the first pass as leader now, not at the next interval
            await asyncio.sleep(LEASE_TTL_S / 3)

    # --- hosts -----------------------------------------------------------------------------------

    def host_summaries(self) -> list[HostSummary]:
        """The live hosts, by id, as ``GET /v1/hosts`` lists them."""
        self.observer.expire()
        now = time.monotonic()
        hosts = sorted(self.observer.hosts.items())
        return [HostSummary.of(state.inventory, round(now - state.last_seen, 3)) for _, state in hosts]

    def hosts(self) -> list[dict[str, Any]]:
        return [summary.to_dict() for summary in self.host_summaries()]

    def host(self, host_id: str) -> dict[str, Any]:
        state = self.observer.hosts.get(host_id)
        if state is None:
            raise NotFound(f"no live host {host_id}")
        return state.inventory.to_dict()

    async def metrics_text(self) -> bytes:
        """``/metrics``: this control plane's counters and the lattice's state as gauges."""
        try:
            apps = await self.applications()
        except Exception as exc:  # state unreachable: the lattice gauges keep their last values
            log.warning("metrics without applications", error=str(exc))
        else:
            self.metrics.observe(hosts=self.host_summaries(), apps=apps, leader=self.is_leader())
        return self.metrics.exposition()

    # --- artifacts -------------------------------------------------------------------------------

    async def read_body(self, request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
        """The request's body; ``LimitExceeded`` (→ 413) as soon as it passes ``limit`` bytes."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise LimitExceeded(f"request body over {limit // 1024} KiB")
            chunks.append(chunk)
        return b"".join(chunks)

    async def upload_artifact(self, wasm: bytes) -> dict[str, Any]:
        """Check and store an actor module; returns ``{digest, size, actor_id, claims}`` (SPEC §5).

        A module stored before is not compiled again (its claims are checked again: they may have expired).
        """
        digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
        stored = await self.state.artifact(digest)
        if stored is not None:
            await asyncio.to_thread(recheck_claims, wasm)
            return stored
        meta = await asyncio.to_thread(inspect_actor, wasm, self.settings.state_dir / "cache")
        if await self.state.artifact(meta["digest"]) is None:
            await self.state.put_artifact(meta["digest"], wasm, meta)
        return meta

    # --- applications ----------------------------------------------------------------------------

    async def put_application(self, name: str, body: bytes, content_type: str | None) -> dict[str, Any]:
        """Store a new version of ``name`` and deploy it. Raises ``ManifestError`` (→ 400) on bad input,
        ``LimitExceeded`` (→ 413) over ``MAX_MANIFEST_BYTES``. Parsing runs off the event loop."""
        if len(body) > caps.MAX_MANIFEST_BYTES:
            raise LimitExceeded(f"manifest over {caps.MAX_MANIFEST_BYTES // 1024} KiB: refused")
        app = await asyncio.to_thread(parse_manifest, body, content_type=content_type)
        if app.name != name:
            raise ManifestError(f"manifest is named {app.name!r} but was PUT as {name!r}", field="metadata.name")
        text = body.decode("utf-8", "replace")
        resolved: tuple[dict[str, dict[str, Any]], list[str]] | None = None
        for _ in range(STORE_ATTEMPTS):  # versions are immutable: every write is a compare-and-set
            stored, revision = await self.state.get_app_revision(name)
            record = stored or AppRecord(name)
            existing = record.version(app.version)
            if existing is not None and existing.manifest != text:
                raise VersionConflict(
                    f"version {app.version} of {name} already exists with other content: "
                    "give the new content a new version",
                    field="metadata.annotations.version",
                )
            # a stored version keeps the images it resolved to (a moved tag does not change it); one that failed
            # retries
            if existing is None or existing.problems:
                resolved = resolved or await self.images.resolve(app)
                if existing is None:
                    record.versions.append(AppVersion(app.version, text, time.time(), *resolved))
                else:  # the same content again: a retry (the registry may be back)
                    existing.images, existing.problems = resolved
            rollouts.begin(record, app.version, rollouts.shares(app.rollout)[0])
            record.deployed = app.version
            if await self.state.put_app(record, revision=revision):
                break
        else:
            raise Busy(f"application {name} is being changed by others right now: retry")
        problems = resolved[1] if resolved else []
        self.reconciler.wake.set()
        log.info("application stored", app=name, version=app.version, problems=problems or None)
        return await self._describe(record)

    async def _describe(self, record: AppRecord) -> dict[str, Any]:
        version = record.version(record.deployed) or record.latest
        return {
            "name": record.name,
            "version": version.version,
            "deployed_version": record.deployed,
            "versions": [{"version": v.version, "created": v.created} for v in record.versions],
            "manifest": version.manifest,
            "status": await self.reconciler.status_of(record),
            # what each actor component resolved to: `lattice call <component>` finds unsigned actors by it
            "actors": {name: image["actor_id"] for name, image in version.images.items() if image.get("actor_id")},
        }

    async def applications(self) -> list[dict[str, Any]]:
        return [await self._describe(r) for r in await self.state.apps()]

    async def application(self, name: str, version: str | None = None) -> dict[str, Any]:
        record = await self.state.get_app(name)
        if record is None:
            raise NotFound(f"no application {name!r}")
        described = await self._describe(record)
        if version is not None:
            stored = record.version(version)
            if stored is None:
                known = ", ".join(v.version for v in record.versions)
                raise NotFound(f"{name} has no version {version!r} (stored: {known})")
            described |= {"version": stored.version, "manifest": stored.manifest}
        return described

    async def rollback_application(self, name: str, version: str | None) -> dict[str, Any]:
        """Deploy ``version`` of ``name`` again (default: the previous healthy one), by hand (SPEC §5); for
        the version already deployed, nothing changes and the answer says ``already_deployed: true``."""
        for _ in range(STORE_ATTEMPTS):
            record, revision = await self.state.get_app_revision(name)
            if record is None:
                raise NotFound(f"no application {name!r}")
            try:
                target = rollouts.rollback(record, version, "rolled back by hand")
            except LookupError as exc:
                raise NotFound(str(exc)) from None
            if target is None:  # already deployed: nothing to store or reconcile
                return {**await self._describe(record), "already_deployed": True}
            if await self.state.put_app(record, revision=revision):
                break
        else:
            raise Busy(f"application {name} is being changed by others right now: retry")
        self.reconciler.wake.set()
        log.info("application rolled back", app=name, version=record.deployed)
        return await self._describe(record)

    async def delete_application(self, name: str) -> dict[str, Any]:
        """Undeploy and remove ``name``; its instances and links go with the next reconcile."""
        record = await self.state.get_app(name)
        if record is None:
            raise NotFound(f"no application {name!r}")
        await self.state.delete_app(name)
        self.reconciler.wake.set()
        return {"name": name, "deleted": True}

    # --- invoke ----------------------------------------------------------------------------------

    async def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        return await self.rpc.invoke(Entity(self.id), Entity(actor_id), operation, payload)
