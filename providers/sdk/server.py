"""Serving one capability provider on NATS (SPEC §4), for whoever runs it: a host or a provider process.

``ProviderServer`` takes any ``CapabilityProvider`` and the ``ProviderContext`` it was given, and
owns the provider's subjects: the RPC queue group (every ``Invocation`` verified through ``Rpc`` and
answered, errors included), health requests, and optionally link learning (``LATTICEDATA`` plus the
``linkdefs.put|del`` subjects), ``shutdown`` requests and periodic health events.

It knows no particular provider and no particular runner: hosts and ``lattice.providers.sdk.runner`` both use it,
so neither imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from lattice import events, seal, subjects
from lattice.capability import CapabilityProvider, ProviderContext
from lattice.connection import cancel_and_wait, settle
from lattice.errors import ClaimsError, InvocationError, LatticeError, ProviderError
from lattice.failsafe import logged
from lattice.links import LatticeData
from lattice.messages import Entity, Invocation, LinkDefinition, pack, unpack
from lattice.observability.metrics import CallMetrics
from lattice.rpc import Rpc

log = structlog.get_logger("lattice.providers.sdk.server")


class ProviderServer:
    """Serve ``provider`` on NATS as ``ctx.provider_id``/``ctx.link_name`` in ``ctx.settings.lattice``.

        Always: the provider RPC subject (queue group = provider id; invocations are refused unless
        ``rpc.verify`` accepts them as signed for this provider) and health requests.
        ``learn_links``: load links from ``LATTICEDATA`` and follow it plus the ``linkdefs.put|del``
        subjects (a host feeds its providers links itself, so it leaves this off). ``on_shutdown``:
        also answer ``shutdown`` requests and call it. ``health_interval_s``: publish
        ``health_check_passed|failed`` events that often. ``metrics`` observes every call served (counter,
    latency, span as a child of the invocation's trace context, log context).
    """

    def __init__(
        self,
        provider: CapabilityProvider,
        ctx: ProviderContext,
        rpc: Rpc,
        *,
        learn_links: bool = False,
        on_shutdown: Callable[[], None] | None = None,
        health_interval_s: float | None = None,
        drain_timeout_s: float = 5.0,
        metrics: CallMetrics | None = None,
    ) -> None:
        self.provider = provider
        self.ctx = ctx
        self.rpc = rpc
        self.learn_links = learn_links
        self.on_shutdown = on_shutdown
        self.health_interval_s = health_interval_s
        self.drain_timeout_s = drain_timeout_s
        self.metrics = metrics or CallMetrics(process=False)
        self.lattice = ctx.settings.lattice
        self.provider_id = ctx.provider_id
        self.link_name = ctx.link_name
        self.contract_id = provider.contract_id
        self.entity = Entity(self.provider_id, self.contract_id, self.link_name)
        self.data: LatticeData | None = None
        self._subs: list[Subscription] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._log = log.bind(provider=provider.name, provider_id=self.provider_id, link_name=self.link_name)

    async def __aenter__(self) -> ProviderServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        nc, lat, pid, link = self.ctx.nc, self.lattice, self.provider_id, self.link_name
        if self.learn_links:
            self.data = LatticeData(self.ctx.js, lat, sealer=self.rpc.sealer, replicas=self.ctx.settings.js_replicas)
            self.data.on_link(self._on_kv_link)
            await self.data.start()
            for action in ("put", "del"):
                self._subs.append(
                    await nc.subscribe(subjects.provider_linkdefs(lat, pid, link, action), cb=self._spawn_linkdef)
                )
        self._subs.append(await nc.subscribe(subjects.provider_rpc(lat, pid, link), queue=pid, cb=self._spawn_rpc))
        self._subs.append(await nc.subscribe(subjects.provider_health(lat, pid, link), cb=self._spawn_health))
        if self.on_shutdown is not None:
            self._subs.append(await nc.subscribe(subjects.provider_shutdown(lat, pid, link), cb=self._on_shutdown))
        await settle(nc)  # the subscriptions are live on the server before anyone is told we serve
        if self.health_interval_s:
            self._keep(self._health_loop(self.health_interval_s), self._background)
        self._log.info("provider serving", links=len(self.provider.links))

    async def on_reconnect(self) -> None:
        """After a NATS reconnect, re-read the links (the old KV watch may be gone)."""
        if self.data is not None:
            await self.data.restart()

    async def stop(self) -> None:
        """Stop taking calls, let in-flight ones finish (up to ``drain_timeout_s``), stop watching."""
        for sub in self._subs:
            with logged(log, "subscription not closed", subject=sub.subject):
                await sub.unsubscribe()
        self._subs.clear()
        if self.data is not None:
            await self.data.stop()
        for task in list(self._background):
            task.cancel()
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=self.drain_timeout_s)
            for task in pending:
                task.cancel()
        await cancel_and_wait(*self._background, *self._inflight)

    async def publish_event(self, name: str, data: dict[str, Any]) -> None:
        body = events.provider_data(self.provider_id, self.link_name, self.contract_id)
        with contextlib.suppress(nats.errors.Error):
            await self.ctx.nc.publish(subjects.events(self.lattice), events.make(name, self.provider_id, body | data))

    # nats-py runs one subscription's callbacks one at a time: each message becomes its own task

    def _keep(self, coro: Awaitable[Any], tasks: set[asyncio.Task[Any]]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _spawn_rpc(self, msg: Msg) -> None:
        self._keep(self._serve_rpc(msg), self._inflight)

    async def _spawn_health(self, msg: Msg) -> None:
        self._keep(self._serve_health(msg), self._inflight)

    async def _spawn_linkdef(self, msg: Msg) -> None:
        self._keep(self._serve_linkdef(msg), self._inflight)

    async def _serve_rpc(self, msg: Msg) -> None:
        invocation_id = ""
        try:
            inv = Invocation.from_msgpack(msg.data)
            invocation_id = inv.id  # known before verification, so that even a refusal is answered
            inv = await self.rpc.admit(inv, target=self.entity)
        except LatticeError as exc:
            error = InvocationError(f"{self.contract_id}: {exc}")
            await self.rpc.answer(msg.reply, invocation_id, error, responder=self.entity)
            return
        result: bytes | Exception
        try:
            result = await self.metrics.provider_call(
                self.provider,
                inv.origin.public_key,
                inv.operation,
                inv.msg,
                parent=inv.trace_context,
                invocation_id=inv.id,
            )
        except LatticeError as exc:
            result = exc
        except Exception as exc:  # a provider bug still gets an answer
            self._log.exception("invocation crashed", operation=inv.operation)
            result = ProviderError(f"{self.contract_id} {inv.operation} failed: {exc}")
        await self.rpc.answer(msg.reply, inv.id, result, responder=self.entity, mac=bool(inv.claims_mac))

    async def _check_health(self) -> tuple[bool, str]:
        try:
            return await self.provider.health()
        except Exception as exc:
            return False, f"health check failed: {exc}"

    async def _serve_health(self, msg: Msg) -> None:
        healthy, message = await self._check_health()
        await self._respond(msg, {"healthy": healthy, "message": message})

    async def _health_loop(self, interval: float) -> None:
        while True:
            healthy, message = await self._check_health()
            name = events.HEALTH_CHECK_PASSED if healthy else events.HEALTH_CHECK_FAILED
            # the cadence lets observers tell a provider that died (kill -9) from one that is quiet
            await self.publish_event(name, {"message": message, "interval_s": interval})
            await asyncio.sleep(interval)

    async def _on_shutdown(self, msg: Msg) -> None:
        try:
            self.rpc.sealer.check_headers(msg.headers, msg.subject, msg.data, what="provider shutdown request")
        except ClaimsError as exc:
            self._log.warning("unsealed shutdown request refused", error=str(exc))
            await self._respond(msg, {"accepted": False, "error": str(exc)})
            return
        await self._respond(msg, {"accepted": True})
        if self.on_shutdown is not None:
            self.on_shutdown()

    async def _respond(self, msg: Msg, body: dict[str, Any]) -> None:
        try:
            await seal.respond(self.ctx.nc, self.rpc.sealer, msg, pack(body))
        except nats.errors.Error as exc:
            self._log.warning("could not reply", subject=msg.subject, error=str(exc))

    async def _serve_linkdef(self, msg: Msg) -> None:
        action = subjects.last_segment(msg.subject)
        try:
            self.rpc.sealer.check_headers(msg.headers, msg.subject, msg.data, what=f"linkdefs.{action}")
        except ClaimsError as exc:
            self._log.warning("unsealed link definition refused", error=str(exc))
            await self._respond(msg, {"accepted": False, "error": str(exc)})
            return
        try:
            link = LinkDefinition.from_obj(unpack(msg.data))
            error = await self._on_link(action, link)
        except InvocationError as exc:
            error = f"malformed link definition: {exc}"
        await self._respond(msg, {"accepted": error is None, "error": error or ""})

    def _ours(self, link: LinkDefinition) -> bool:
        return link.provider_id == self.provider_id and link.link_name == self.link_name

    async def _on_kv_link(self, action: str, link: LinkDefinition) -> None:
        await self._on_link(action, link)

    async def _on_link(self, action: str, link: LinkDefinition) -> str | None:
        """Apply a link put/del if it concerns this provider; the refusal message when refused."""
        current = self.provider.links.get(link.actor_id)
        try:
            if action == "del" or not self._ours(link):
                # a deleted link, or one that now names another provider: let go of ours
                if current is not None and current.key == link.key:
                    await self.provider.del_link(current)
                    self._log.info("link deleted", actor_id=link.actor_id)
                return None
            if await self.provider.put_link(link):
                self._log.info("link put", actor_id=link.actor_id, values=sorted(link.values))
        except LatticeError as exc:
            self._log.error("link refused", link=link.key, error=str(exc))
            await self.publish_event(
                events.LINKDEF_SET_FAILED, {"actor_id": link.actor_id, "link": link.to_dict(), "error": str(exc)}
            )
            return str(exc)
        return None
