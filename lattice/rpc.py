"""Invocations over NATS (SPEC §4): signing, sending, verifying and answering them.

Every participant that sends or serves invocations (hosts, providers, the control plane) does it
through an ``Rpc``, so anti-forgery and error mapping are the same everywhere: outbound
``Invocation``s carry ``encoded_claims`` signed with the cluster key; inbound ones are refused unless
signed by a cluster issuer for exactly this origin, target, operation and payload.
"""

from __future__ import annotations

import nats.errors
import structlog
from nats.aio.client import Client as NATS

from lattice import claims as claims_mod
from lattice import subjects
from lattice.errors import ClaimsError, NoResponders, RemoteError, Unreachable
from lattice.keys import KeyPair
from lattice.messages import Entity, Invocation, InvocationResponse

log = structlog.get_logger("lattice.rpc")


def entity_url(entity: Entity) -> str:
    """``wasmbus://M…`` for an actor, ``wasmbus://{contract}/{link}/{V…}`` for a provider (SPEC §4)."""
    if entity.contract_id:
        return claims_mod.provider_url(entity.contract_id, entity.link_name, entity.public_key)
    return claims_mod.actor_url(entity.public_key)


def target_subject(lattice: str, target: Entity) -> str:
    if target.contract_id:
        return subjects.provider_rpc(lattice, target.public_key, target.link_name)
    return subjects.actor_rpc(lattice, target.public_key)


def describe(target: Entity) -> str:
    if target.contract_id:
        return f"{target.contract_id} ({target.link_name}) provider {target.public_key[:12]}…"
    return f"actor {target.public_key}"


class Rpc:
    """Signed invocations for one participant. ``sender_id`` goes in ``host_id``; times in seconds."""

    def __init__(
        self,
        nc: NATS,
        *,
        lattice: str,
        cluster_key: KeyPair,
        cluster_issuers: frozenset[str] = frozenset(),
        sender_id: str,
        timeout_s: float = 2.0,
    ) -> None:
        self.nc = nc
        self.lattice = lattice
        self.cluster_key = cluster_key
        self.cluster_issuers = frozenset({cluster_key.public_key, *cluster_issuers})
        self.sender_id = sender_id
        self.timeout_s = timeout_s

    def sign(self, inv: Invocation) -> Invocation:
        encoded = claims_mod.sign_invocation(
            self.cluster_key,
            origin_url=entity_url(inv.origin),
            target_url=entity_url(inv.target),
            operation=inv.operation,
            msg=inv.msg,
            host_id=self.sender_id,
        )
        return Invocation(
            inv.origin,
            inv.target,
            inv.operation,
            inv.msg,
            host_id=self.sender_id,
            encoded_claims=encoded,
            id=inv.id,
            trace_context=inv.trace_context,
        )

    async def invoke(
        self,
        origin: Entity,
        target: Entity,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        """Send a signed ``Invocation`` to ``target`` and return the answer's ``msg``.

        Raises ``NoResponders`` (nobody serves the target), ``Unreachable`` (no answer within the
        timeout, or NATS failed) and ``RemoteError`` (the target answered with an error).
        """
        timeout = timeout_s or self.timeout_s
        inv = self.sign(Invocation(origin, target, operation, payload, trace_context=trace_context or {}))
        try:
            reply = await self.nc.request(target_subject(self.lattice, target), inv.to_msgpack(), timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise NoResponders(f"nobody serves {describe(target)}: is it running?") from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise Unreachable(f"{describe(target)} did not answer {operation} within {timeout:g} s") from exc
        except nats.errors.Error as exc:
            raise Unreachable(f"cannot reach {describe(target)}: {exc}") from exc
        response = InvocationResponse.from_msgpack(reply.data)
        if response.error:
            raise RemoteError(response.error)
        return response.msg

    def verify(self, inv: Invocation, *, target: Entity | None = None) -> None:
        """Anti-forgery (SPEC §4): raises ``ClaimsError`` for a forged or replayed invocation.

        ``target`` is who received it (default: whom it names); claims signed for anyone else are
        refused, so an invocation cannot be replayed to another actor or provider.
        """
        if not inv.encoded_claims:
            raise ClaimsError("invocation carries no encoded_claims: refused (SPEC §4 anti-forgery)")
        claims_mod.verify_invocation(
            inv.encoded_claims,
            cluster_issuers=self.cluster_issuers,
            origin_url=entity_url(inv.origin),
            target_url=entity_url(target or inv.target),
            operation=inv.operation,
            msg=inv.msg,
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
