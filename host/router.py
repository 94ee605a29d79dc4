"""Where a call goes: host calls from actors and invocations to actors, local first, NATS otherwise.

A host call (``__host_call``) arrives on the worker thread running the caller's instance:
- contract namespace → the link (actor, contract, link name) → a provider running in this host is
  called directly (no NATS, no extra msgpack round trip); otherwise the NATS hop to the provider;
- actor id or call alias → a local instance of the target, called on the same thread; otherwise the
  NATS hop to the target's queue group.
An invocation arriving over NATS for a local actor (``host.serving``) runs here: ``try_inline`` on the loop,
else ``on_worker``. The NATS hop itself (signing, anti-forgery, error mapping) is ``lattice.rpc``. What
runs here the router reads from the host's registries (``host.registry``), which only their owners change.

Every hop is observed through ``lattice.observability.metrics.CallMetrics`` (counter, latency, span, log context):
``call_local`` for an actor serving a call, ``host_call`` for the call out and the in-process provider.
Trace context travels explicitly (``parent``), and work handed to the worker threads runs in a copy of
the submitting task's context (a thread pool does not copy it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from lattice import events
from lattice.errors import (
    CapabilityDenied,
    Expired,
    InvocationError,
    LinkNotFound,
    NoResponders,
    Unreachable,
)
from lattice.host.limits import WorkerQuota
from lattice.links import LatticeData
from lattice.messages import Entity
from lattice.observability import tracing
from lattice.observability.metrics import CallMetrics
from lattice.rpc import Rpc
from lattice.settings import Settings

if TYPE_CHECKING:
    from lattice.host.actors import RunningActor
    from lattice.host.registry import ActorRegistry, ProviderRegistry

log = structlog.get_logger("host.router")
T = TypeVar("T")


class Drops:
    """Invocations dropped because their callers had given up (nats.py#667): counted, and logged once
    per ``WINDOW_S`` with the count, never a line each (a burst of thousands would flood the log)."""

    WINDOW_S = 5.0

    def __init__(self) -> None:
        self.total = 0
        self._unreported = 0
        self._reported_at: float | None = None

    def note(self, actor_id: str) -> None:
        self.total += 1
        self._unreported += 1
        now = time.monotonic()
        if self._reported_at is None or now - self._reported_at >= self.WINDOW_S:
            log.warning(
                "dropped invocations whose callers had given up",
                count=self._unreported,
                total=self.total,
                actor_id=actor_id,
            )
            self._unreported, self._reported_at = 0, now


def check_deadline(deadline: float | None, actor_id: str, operation: str) -> None:
    """Raise ``Expired`` when the caller's ``deadline`` (monotonic) has passed: the call is not run."""
    if deadline is not None and time.monotonic() > deadline:
        raise Expired(f"{operation} for {actor_id} dropped: its caller stopped waiting before it could run")


def is_contract(namespace: str) -> bool:
    """Contract IDs hold a ``:`` (``wasmcloud:keyvalue``); actor ids and call aliases do not."""
    return ":" in namespace


class Router:
    """Routes calls for one host; ``actors``/``providers`` are the host's registries, read, never changed."""

    def __init__(
        self,
        *,
        settings: Settings,
        host_id: str,
        data: LatticeData,
        actors: ActorRegistry,
        providers: ProviderRegistry,
        rpc: Rpc,
        publish: Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]] | None = None,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
        metrics: CallMetrics | None = None,
        quota: WorkerQuota | None = None,
    ) -> None:
        """``quota``: how many of ``executor``'s threads one actor may hold (default: all of them)."""
        self.settings = settings
        self.host_id = host_id
        self.data = data
        self.actors = actors
        self.providers = providers
        self.rpc = rpc
        self.publish = publish
        self.loop = loop
        self.executor = executor
        self.timeout_s = settings.rpc_timeout_s
        self.metrics = metrics or CallMetrics(process=False)
        self.quota = quota or WorkerQuota(1 << 30)
        self.drops = Drops()

    # --- from the guest's worker thread ----------------------------------------------------------

    def host_call(self, caller: str, binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        """Serve ``__host_call`` for actor ``caller``; raises ``InvocationError`` subclasses, each also
        published as an ``invocation_failed`` event."""
        try:
            with self.metrics.host_call(caller, namespace, operation) as trace:
                return self._route(caller, binding, namespace, operation, payload, trace)
        except InvocationError as exc:
            if self.publish is not None:
                event = {
                    "source": caller,
                    "target": namespace,
                    "link_name": binding or "default",
                    "operation": operation,
                    "error": str(exc),
                    "trace_id": tracing.current_trace_id(),
                }
                asyncio.run_coroutine_threadsafe(self.publish(events.INVOCATION_FAILED, event), self.loop)
            raise

    def _route(
        self, caller: str, binding: str, namespace: str, operation: str, payload: bytes, trace: dict[str, str]
    ) -> bytes:
        origin = Entity(caller)
        if is_contract(namespace):
            link_name = binding or "default"
            self._check_capability(caller, namespace)
            link = self.data.link_for(caller, namespace, link_name)
            if link is None:
                raise LinkNotFound(namespace, link_name, caller)
            provider = self.providers.in_process(link.provider_id, link_name)
            if provider is not None:
                return self._wait(self.metrics.provider_call(provider, caller, operation, payload, parent=trace))
            target = Entity(link.provider_id, namespace, link_name)
            return self._wait(self.rpc.invoke(origin, target, operation, payload, trace_context=trace))
        target_id = self.data.resolve_actor(namespace) or self.actors.by_alias(namespace)
        if target_id is None:
            raise Unreachable(f"no actor is known by {namespace!r}: start it, or check its call alias")
        running = self.actors.get(target_id)
        if running is not None:
            with contextlib.suppress(NoResponders):  # it stopped here as the call came: elsewhere, or woken
                return self.call_local(running, operation, payload)
        return self._wait(self.rpc.invoke(origin, Entity(target_id), operation, payload, trace_context=trace))

    def _check_capability(self, caller: str, contract_id: str) -> None:
        running = self.actors.get(caller)
        claims = running.compiled.claims if running else None
        if claims is not None and contract_id not in claims.caps:
            raise CapabilityDenied(
                f"{caller} is signed without the {contract_id} capability: re-sign it with --caps {contract_id}"
            )

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(self.timeout_s + 1)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise Unreachable(f"no answer within {self.timeout_s:g} s") from exc

    def call_local(
        self,
        running: RunningActor,
        operation: str,
        payload: bytes,
        *,
        parent: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
        deadline: float | None = None,
        arrived: Callable[[], None] | None = None,
    ) -> bytes:
        """One call on a local instance, on the calling (worker) thread, observed; not run at all
        (``Expired``) once the caller's ``deadline`` (monotonic) has passed while it waited. ``arrived``: the
        call stops counting as queued for a worker (``ActorPool.queued``)."""
        if arrived is not None:
            arrived()
        check_deadline(deadline, running.actor_id, operation)
        with self.metrics.actor_call(running.actor_id, operation, parent=parent, invocation_id=invocation_id):
            result: bytes = running.pool.call(operation, payload)
            return result

    # --- on the event loop -----------------------------------------------------------------------

    async def submit_local(
        self,
        running: RunningActor,
        operation: str,
        payload: bytes,
        *,
        parent: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """``try_inline``, else ``on_worker``."""
        result = self.try_inline(running, operation, payload, deadline=deadline)
        if result is not None:
            return result
        return await self.on_worker(
            running, operation, payload, parent=parent, invocation_id=invocation_id, deadline=deadline
        )

    def try_inline(
        self, running: RunningActor, operation: str, payload: bytes, *, deadline: float | None = None
    ) -> bytes | None:
        """The call right here on the loop when it is quick and self-contained (``ActorPool.call_inline``),
        counted; ``None`` when it must go to a worker: it made a host call, ran past its budget, found no
        idle instance, or tracing is on (every call then gets its span in ``call_local``). The thread hop it
        saves costs more than the call itself. ``Expired`` once the caller's ``deadline`` has passed."""
        check_deadline(deadline, running.actor_id, operation)
        if not running.pool.inline_eligible or tracing.enabled():
            return None
        start = time.perf_counter()
        try:
            result = running.pool.call_inline(operation, payload)
        except Exception as exc:
            self.metrics.observe_actor_call(running.actor_id, operation, time.perf_counter() - start, exc)
            raise
        if result is not None:
            self.metrics.observe_actor_call(running.actor_id, operation, time.perf_counter() - start, None)
        return result

    async def on_worker(
        self,
        running: RunningActor,
        operation: str,
        payload: bytes,
        *,
        parent: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """``call_local`` on the executor, in a copy of this task's context (trace, log bindings), within the
        actor's share of the worker threads."""
        call = functools.partial(
            contextvars.copy_context().run,
            self.call_local,
            running,
            operation,
            payload,
            parent=parent,
            invocation_id=invocation_id,
            deadline=deadline,
            arrived=(arrived := running.pool.queued()),  # waiting for a worker is load too (autoscaling)
        )
        try:
            async with self.quota.slot(running.pool, running.pool.limits, running.actor_id):
                return await self.loop.run_in_executor(self.executor, call)
        finally:
            arrived()

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        origin: Entity,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        """Invoke an actor from the event loop: a local pool (on the executor) or the NATS hop."""
        running = self.actors.get(actor_id)
        if running is not None:
            self.check_invocation_allowed(running, origin)
            with contextlib.suppress(NoResponders):  # it stopped here as the call came: elsewhere, or woken
                return await self.submit_local(running, operation, payload, parent=trace_context)
        return await self.rpc.invoke(
            origin, Entity(actor_id), operation, payload, timeout_s=timeout_s, trace_context=trace_context
        )

    def check_invocation_allowed(self, running: RunningActor, origin: Entity) -> None:
        """A signed actor is invoked by a provider only if its claims hold that contract (SPEC §3).

        A refused call is a failed call of this actor (its pool's counters): a version that cannot be called
        is unhealthy, and a rollout's health gate must see it."""
        claims = running.compiled.claims
        if claims is not None and origin.contract_id and origin.contract_id not in claims.caps:
            running.pool.count_refused()
            raise CapabilityDenied(
                f"{running.actor_id} does not hold the {origin.contract_id} capability in its claims"
            )
