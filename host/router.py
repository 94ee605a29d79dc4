"""Where a call goes: host calls from actors and invocations to actors, local first, NATS otherwise.

A host call (``__host_call``) arrives on the worker thread running the caller's instance:
- contract namespace → the link (actor, contract, link name) → a provider running in this host is
  called directly (no NATS, no extra msgpack round trip); otherwise the NATS hop to the provider;
- actor id or call alias → a local instance of the target, called on the same thread; otherwise the
  NATS hop to the target's queue group.
Outbound invocations carry ``encoded_claims`` signed with the cluster key (SPEC §4); inbound ones are
checked by ``verify_inbound``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import nats.errors
import structlog
from nats.aio.client import Client as NATS

from lattice import claims as claims_mod
from lattice import subjects
from lattice.errors import (
    CapabilityDenied,
    ClaimsError,
    InvocationError,
    LinkNotFound,
    RemoteError,
    Unreachable,
)
from lattice.keys import KeyPair
from lattice.links import LatticeData
from lattice.messages import Entity, Invocation, InvocationResponse
from lattice.settings import Settings

if TYPE_CHECKING:
    from host.actors import RunningActor
    from host.providers import LocalProvider

log = structlog.get_logger("host.router")
T = TypeVar("T")


def is_contract(namespace: str) -> bool:
    """Contract IDs hold a ``:`` (``wasmcloud:keyvalue``); actor ids and call aliases do not."""
    return ":" in namespace


def entity_url(entity: Entity) -> str:
    if entity.contract_id:
        return claims_mod.provider_url(entity.contract_id, entity.link_name, entity.public_key)
    return claims_mod.actor_url(entity.public_key)


class Router:
    """Routes calls for one host. ``actors``/``providers`` are the host's live registries."""

    def __init__(
        self,
        *,
        settings: Settings,
        host_id: str,
        nc: NATS,
        data: LatticeData,
        actors: dict[str, RunningActor],
        providers: dict[tuple[str, str], LocalProvider],
        cluster_key: KeyPair,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.settings = settings
        self.host_id = host_id
        self.nc = nc
        self.data = data
        self.actors = actors
        self.providers = providers
        self.cluster_key = cluster_key
        self.cluster_issuers = {cluster_key.public_key, *settings.cluster_issuers}
        self.loop = loop
        self.executor = executor
        self.timeout_s = settings.rpc_timeout_s

    # --- from the guest's worker thread ----------------------------------------------------------

    def host_call(self, caller: str, binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        """Serve ``__host_call`` for actor ``caller``; raises ``InvocationError`` subclasses."""
        origin = Entity(caller)
        if is_contract(namespace):
            link_name = binding or "default"
            self._check_capability(caller, namespace)
            link = self.data.link_for(caller, namespace, link_name)
            if link is None:
                raise LinkNotFound(namespace, link_name, caller)
            local = self.providers.get((link.provider_id, link_name))
            if local is not None:
                return self._wait(local.provider.handle(caller, operation, payload))
            target = Entity(link.provider_id, namespace, link_name)
            subject = subjects.provider_rpc(self.settings.lattice, link.provider_id, link_name)
            return self._wait(self.invoke_remote(subject, origin, target, operation, payload))
        target_id = self.data.resolve_actor(namespace) or self._local_alias(namespace)
        if target_id is None:
            raise Unreachable(f"no actor is known by {namespace!r}: start it, or check its call alias")
        running = self.actors.get(target_id)
        if running is not None:
            return running.pool.call(operation, payload)
        subject = subjects.actor_rpc(self.settings.lattice, target_id)
        return self._wait(self.invoke_remote(subject, origin, Entity(target_id), operation, payload))

    def _local_alias(self, name: str) -> str | None:
        for actor_id, running in self.actors.items():
            claims = running.compiled.claims
            if claims is not None and claims.call_alias == name:
                return actor_id
        return None

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

    # --- on the event loop -----------------------------------------------------------------------

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
            return await self.loop.run_in_executor(self.executor, running.pool.call, operation, payload)
        subject = subjects.actor_rpc(self.settings.lattice, actor_id)
        return await self.invoke_remote(
            subject, origin, Entity(actor_id), operation, payload, timeout_s=timeout_s, trace_context=trace_context
        )

    async def invoke_remote(
        self,
        subject: str,
        origin: Entity,
        target: Entity,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        """The NATS hop: a signed ``Invocation`` request, its ``InvocationResponse`` decoded."""
        timeout = timeout_s or self.timeout_s
        inv = self.sign(
            Invocation(origin, target, operation, payload, host_id=self.host_id, trace_context=trace_context or {})
        )
        try:
            reply = await self.nc.request(subject, inv.to_msgpack(), timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise Unreachable(f"nobody serves {_describe(target)}: is it running?") from exc
        except (nats.errors.TimeoutError, asyncio.TimeoutError) as exc:
            raise Unreachable(f"{_describe(target)} did not answer {operation} within {timeout:g} s") from exc
        except nats.errors.Error as exc:
            raise Unreachable(f"cannot reach {_describe(target)}: {exc}") from exc
        response = InvocationResponse.from_msgpack(reply.data)
        if response.error:
            raise RemoteError(response.error)
        return response.msg

    def sign(self, inv: Invocation) -> Invocation:
        encoded = claims_mod.sign_invocation(
            self.cluster_key,
            origin_url=entity_url(inv.origin),
            target_url=entity_url(inv.target),
            operation=inv.operation,
            msg=inv.msg,
            host_id=self.host_id,
        )
        return Invocation(
            inv.origin,
            inv.target,
            inv.operation,
            inv.msg,
            host_id=inv.host_id,
            encoded_claims=encoded,
            id=inv.id,
            trace_context=inv.trace_context,
        )

    def verify_inbound(self, inv: Invocation) -> None:
        """Anti-forgery (SPEC §4): raises ``ClaimsError`` for a forged or replayed invocation."""
        if not inv.encoded_claims:
            raise ClaimsError("invocation carries no encoded_claims: refused (SPEC §4 anti-forgery)")
        claims_mod.verify_invocation(
            inv.encoded_claims,
            cluster_issuers=self.cluster_issuers,
            origin_url=entity_url(inv.origin),
            target_url=entity_url(inv.target),
            operation=inv.operation,
            msg=inv.msg,
        )

    def check_invocation_allowed(self, running: RunningActor, origin: Entity) -> None:
        """A signed actor is invoked by a provider only if its claims hold that contract (SPEC §3)."""
        claims = running.compiled.claims
        if claims is not None and origin.contract_id and origin.contract_id not in claims.caps:
            raise CapabilityDenied(
                f"{running.actor_id} does not hold the {origin.contract_id} capability in its claims"
            )

    async def answer(self, reply: str, invocation_id: str, result: bytes | Exception) -> None:
        """Send the ``InvocationResponse`` for one invocation (every invocation gets one)."""
        if not reply:
            return
        if isinstance(result, Exception):
            response = InvocationResponse(invocation_id, error=str(result) or type(result).__name__)
        else:
            response = InvocationResponse(invocation_id, msg=result)
        try:
            await self.nc.publish(reply, response.to_msgpack())
        except nats.errors.Error as exc:
            log.warning("could not answer invocation", invocation_id=invocation_id, error=str(exc))


def _describe(target: Entity) -> str:
    if target.contract_id:
        return f"{target.contract_id} ({target.link_name}) provider {target.public_key[:12]}…"
    return f"actor {target.public_key}"


__all__ = ["InvocationError", "Router", "entity_url", "is_contract"]
