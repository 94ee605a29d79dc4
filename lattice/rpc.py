"""Invocations over NATS (SPEC §4): signing, sending, verifying and answering them.

Every participant that sends or serves invocations (hosts, providers, the control plane) does it
through an ``Rpc``, so anti-forgery and error mapping are the same everywhere: outbound
``Invocation``s carry ``encoded_claims`` signed with the cluster key; inbound ones are refused unless
signed by a cluster issuer for exactly this origin, target, operation and payload. Payloads (and
results) larger than the NATS max payload travel through the JetStream object store
``LATTICE_PAYLOADS_{lattice}``: the message carries ``msg`` empty and ``content_length`` the real size,
and the receiver fetches (then deletes) the object named after the invocation id — only after the
claims' signature verified and the size is within the receiver's limit.

Beyond SPEC (docs/security.md): an invocation older than ``seal.MAX_AGE_S`` or whose ``jti`` this
receiver already accepted is refused (replay), and every ``InvocationResponse`` carries a seal
(``lattice.seal``) bound to the invocation id and the target's URL, checked by the caller, so a client
that joins an actor's queue group cannot answer in its name. Error texts are cut to ``MAX_ERROR_BYTES``
so that every invocation gets an answer that fits in a NATS message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.js.object_store import ObjectStore

from lattice import claims as claims_mod
from lattice import seal, subjects
from lattice.commands import CommandReply, WakeActor
from lattice.connection import object_store
from lattice.errors import ClaimsError, InvocationError, LimitExceeded, NoResponders, Unreachable, error_of_kind
from lattice.failsafe import logged
from lattice.keys import KeyPair
from lattice.messages import Entity, Invocation, InvocationResponse
from lattice.seal import Sealer
from lattice.settings import Settings

log = structlog.get_logger("lattice.rpc")

ENVELOPE_HEADROOM = 64 * 1024  # the Invocation's other fields and the encoded claims
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024  # what a receiver fetches from the object store at most
MAX_ERROR_BYTES = 16 * 1024  # an error text is cut here: an answer always fits in a NATS message


def bounded_error(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes, saying how much was cut."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + f"… ({len(raw) - limit} more bytes cut)"


def response_context(invocation_id: str, responder: Entity) -> str:
    """What a response's seal is bound to: the invocation it answers and who answers."""
    return f"response {invocation_id} {entity_url(responder)}"


@functools.lru_cache(maxsize=4096)  # a handful of entities, one or two lookups each per call
def entity_url(entity: Entity) -> str:
    """``wasmbus://M…`` for an actor, ``wasmbus://{contract}/{link}/{V…}`` for a provider (SPEC §4)."""
    if entity.contract_id:
        return claims_mod.provider_url(entity.contract_id, entity.link_name, entity.public_key)
    return claims_mod.actor_url(entity.public_key)


@functools.lru_cache(maxsize=4096)
def target_subject(lattice: str, target: Entity) -> str:
    if target.contract_id:
        return subjects.provider_rpc(lattice, target.public_key, target.link_name)
    return subjects.actor_rpc(lattice, target.public_key)


def describe(target: Entity) -> str:
    if target.contract_id:
        return f"{target.contract_id} ({target.link_name}) provider {target.public_key[:12]}…"
    return f"actor {target.public_key}"


class CallTracer(Protocol):
    """How an ``Rpc`` traces the calls it sends: ``lattice.observability.tracing.RPC_TRACER`` (OpenTelemetry,
    W3C trace context), handed in by whoever builds the ``Rpc``. The contract itself knows no tracing library."""

    def client_span(
        self, operation: str, target: str, parent: Mapping[str, str] | None
    ) -> contextlib.AbstractContextManager[object]: ...

    def carrier(self) -> dict[str, str]: ...


class Untraced:
    """No spans: the caller's ``trace_context`` travels on unchanged (the default ``CallTracer``)."""

    def client_span(
        self, operation: str, target: str, parent: Mapping[str, str] | None
    ) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def carrier(self) -> dict[str, str]:
        return {}


#: How long a call to an actor scaled to zero waits for an instance, and how many wait at once.
DEFAULT_HOLD_S = 10.0
MAX_HELD_CALLS = 1000


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
        js_replicas: int = 1,
        tracer: CallTracer | None = None,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        self.nc = nc
        self.tracer: CallTracer = tracer or Untraced()
        self.js_replicas = js_replicas
        self.lattice = lattice
        self.cluster_key = cluster_key
        self.cluster_issuers = frozenset({cluster_key.public_key, *cluster_issuers})
        self.sealer = Sealer(cluster_key, self.cluster_issuers)
        self.sender_id = sender_id
        self.timeout_s = timeout_s
        self._inline_limit: int | None = None
        self._store: ObjectStore | None = None
        self.hold_s = hold_s
        self._held_now = 0

    @classmethod
    def from_settings(
        cls, nc: NATS, settings: Settings, *, cluster_key: KeyPair, sender_id: str, tracer: CallTracer | None = None
    ) -> Rpc:
        """The ``Rpc`` of a participant configured by ``settings`` (lattice, issuers, timeout, replicas)."""
        return cls(
            nc,
            lattice=settings.lattice,
            cluster_key=cluster_key,
            cluster_issuers=settings.cluster_issuers,
            sender_id=sender_id,
            timeout_s=settings.rpc_timeout_s,
            js_replicas=settings.js_replicas,
            tracer=tracer,
            hold_s=settings.hold_s,
        )

    def sign(self, inv: Invocation) -> Invocation:
        """``inv`` from this participant: ``encoded_claims`` signed with the cluster key (SPEC §4), and the
        ``claims_mac`` by which a receiver holding the same seed checks them without Ed25519."""
        encoded = claims_mod.sign_invocation(
            self.cluster_key,
            origin_url=entity_url(inv.origin),
            target_url=entity_url(inv.target),
            operation=inv.operation,
            msg=inv.msg,
            host_id=self.sender_id,
        )
        return replace(inv, host_id=self.sender_id, encoded_claims=encoded, claims_mac=self.sealer.vouch(encoded))

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
        timeout, or NATS failed) and ``RemoteError`` (the target answered with an error). The hop is a
        client span, a child of ``trace_context`` (else of the current span), whose context travels on.
        """
        with self.tracer.client_span(operation, target.public_key, trace_context):
            carried = self.tracer.carrier() or dict(trace_context or {})
            timeout = timeout_s or self.timeout_s
            try:
                return await self._invoke(origin, target, operation, payload, timeout, carried)
            except NoResponders:
                if target.contract_id or self.hold_s <= 0:
                    raise
                if not await self._wake(target.public_key):
                    # not elastic: once more, for an instance that stopped as the call reached it (its host
                    # answers no_responders) while others still serve
                    return await self._invoke(origin, target, operation, payload, timeout, carried)
                return await self._held(origin, target, operation, payload, timeout, carried)

    async def _wake(self, actor_id: str) -> bool:
        """Ask the leading control plane to start ``actor_id`` (scaled to zero); whether it will."""
        body = json.dumps(WakeActor(actor_id).to_body()).encode()
        try:
            reply = await seal.request(self.nc, self.sealer, subjects.ctl_wake(self.lattice), body, timeout=2)
            return CommandReply.from_dict(json.loads(reply.data)).accepted
        except (nats.errors.Error, TimeoutError, ValueError, ClaimsError):
            return False  # no control plane, or one that does not know the actor: nothing to wait for

    async def _held(
        self, origin: Entity, target: Entity, operation: str, payload: bytes, per_try_s: float, carried: dict[str, str]
    ) -> bytes:
        """The call to an actor being started from zero, held (not refused) until an instance answers, for
        at most ``hold_s`` and ``MAX_HELD_CALLS`` calls at once per participant (SPEC §5 elastic scaling)."""
        if self._held_now >= MAX_HELD_CALLS:
            raise NoResponders(f"nobody serves {describe(target)} yet and {MAX_HELD_CALLS} calls are already held")
        self._held_now += 1
        loop = asyncio.get_running_loop()
        give_up, rewake, delay = loop.time() + self.hold_s, loop.time() + 2.0, 0.01
        try:
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
                try:
                    return await self._invoke(origin, target, operation, payload, per_try_s, carried)
                except NoResponders:
                    if loop.time() >= give_up:
                        raise NoResponders(
                            f"nobody serves {describe(target)}: held {self.hold_s:g} s while it was started"
                        ) from None
                    if loop.time() >= rewake:
                        rewake = loop.time() + 2.0
                        await self._wake(target.public_key)
        finally:
            self._held_now -= 1

    async def _invoke(
        self, origin: Entity, target: Entity, operation: str, payload: bytes, timeout_s: float, carried: dict[str, str]
    ) -> bytes:
        timeout = timeout_s
        subject = target_subject(self.lattice, target)  # InvalidName before anything is signed or sent
        deadline_ms = int((time.time() + timeout) * 1000)  # the receiver drops it once we stop waiting
        inv = self.sign(Invocation(origin, target, operation, payload, trace_context=carried, deadline_ms=deadline_ms))
        if len(payload) > self.inline_limit:
            await self._stash(inv.id, payload)
            inv = replace(inv, msg=b"", content_length=len(payload))
        try:
            reply = await self.nc.request(subject, inv.to_msgpack(), timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise NoResponders(f"nobody serves {describe(target)}: is it running?") from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise Unreachable(f"{describe(target)} did not answer {operation} within {timeout:g} s") from exc
        except nats.errors.Error as exc:
            raise Unreachable(f"cannot reach {describe(target)}: {exc}") from exc
        try:
            self.sealer.check_headers(
                reply.headers, response_context(inv.id, target), reply.data, what=f"the answer of {describe(target)}"
            )
        except ClaimsError as exc:
            log.warning("forged invocation response dropped", target=target.public_key, error=str(exc))
            raise
        response = InvocationResponse.from_msgpack(reply.data)
        if response.error:
            raise error_of_kind(response.error_kind, response.error)
        if response.content_length > len(response.msg):
            return await self._unstash(f"{inv.id}.reply", response.content_length)
        return response.msg

    async def receive(self, data: bytes, *, target: Entity, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> Invocation:
        """``Invocation.from_msgpack`` then ``admit``. Raises ``InvocationError``/``ClaimsError``."""
        return await self.admit(Invocation.from_msgpack(data), target=target, max_bytes=max_bytes)

    async def admit(self, inv: Invocation, *, target: Entity, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> Invocation:
        """Verify a decoded invocation, in this order: claims signature, issuer, URLs and age; size
        (``LimitExceeded`` over ``max_bytes``); only then fetch a payload that came through the object
        store; payload hash; ``jti`` not seen before. Returns it with its payload, and with its
        ``claims_mac`` only if that verified (answer it with ``mac=bool(inv.claims_mac)``)."""
        if inv.content_length <= len(inv.msg):
            return self.admit_now(inv, target=target, max_bytes=max_bytes)
        claims, vouched = self._check_envelope(inv, target, max_bytes)
        inv = replace(inv, msg=await self._unstash(inv.id, inv.content_length))
        return self._check_payload(inv, target, claims, vouched)

    def admit_now(self, inv: Invocation, *, target: Entity, max_bytes: int = DEFAULT_MAX_PAYLOAD) -> Invocation:
        """``admit`` of an invocation whose payload came inline: nothing to fetch, so nothing to await (the
        host serves such calls in its subscription's callback). ``InvocationError`` for one that did not."""
        if inv.content_length > len(inv.msg):
            raise InvocationError(f"invocation {inv.id}'s payload is in the object store: admit it with admit()")
        claims, vouched = self._check_envelope(inv, target, max_bytes)
        return self._check_payload(inv, target, claims, vouched)

    def _check_envelope(self, inv: Invocation, target: Entity, max_bytes: int) -> tuple[dict[str, Any], bool]:
        vouched = self.vouched(inv)
        claims = self._verify_claims(inv, entity_url(inv.origin), entity_url(target), msg=None, vouched=vouched)
        if max(inv.content_length, len(inv.msg)) > max_bytes:
            raise LimitExceeded(
                f"invocation payload of {max(inv.content_length, len(inv.msg))} bytes is over the limit of {max_bytes}"
            )
        return claims, vouched

    def _check_payload(self, inv: Invocation, target: Entity, claims: dict[str, Any], vouched: bool) -> Invocation:
        urls = {"origin_url": entity_url(inv.origin), "target_url": entity_url(target)}
        claims_mod.check_invocation_hash(claims, **urls, operation=inv.operation, msg=inv.msg)
        self.sealer.guard.first_use(str(claims.get("jti") or inv.id), "invocation")
        return inv if vouched or not inv.claims_mac else replace(inv, claims_mac=b"")

    @property
    def inline_limit(self) -> int:
        """Payloads above this many bytes go through the object store (NATS max payload less headroom)."""
        if self._inline_limit is not None:
            return self._inline_limit
        return max(self.nc.max_payload - ENVELOPE_HEADROOM, 0)

    @inline_limit.setter
    def inline_limit(self, value: int) -> None:
        self._inline_limit = value

    async def _payloads(self) -> ObjectStore:
        if self._store is None:
            self._store = await object_store(
                self.nc.jetstream(), subjects.payloads_bucket(self.lattice), replicas=self.js_replicas
            )
        return self._store

    async def _stash(self, name: str, data: bytes) -> None:
        try:
            await (await self._payloads()).put(name, data)
        except Exception as exc:
            raise Unreachable(f"cannot store a {len(data)}-byte payload in the object store: {exc}") from exc

    async def _unstash(self, name: str, size: int) -> bytes:
        store = await self._payloads()
        try:
            result = await store.get(name)
        except Exception as exc:
            raise InvocationError(f"payload {name} ({size} bytes) is missing from the object store: {exc}") from exc
        with logged(log, "fetched payload not deleted from the object store", level="info", name=name):
            await store.delete(name)
        data = bytes(result.data or b"")
        if len(data) != size:
            raise InvocationError(f"payload {name} has {len(data)} bytes, expected {size}")
        return data

    def verify(self, inv: Invocation, *, target: Entity | None = None) -> None:
        """Anti-forgery (SPEC §4): raises ``ClaimsError`` for a forged or replayed invocation.

        ``target`` is who received it (default: whom it names); claims signed for anyone else are
        refused, so an invocation cannot be replayed to another actor or provider.
        """
        urls = (entity_url(inv.origin), entity_url(target or inv.target))
        self._verify_claims(inv, *urls, msg=inv.msg, vouched=self.vouched(inv))

    def _verify_claims(
        self, inv: Invocation, origin_url: str, target_url: str, *, msg: bytes | None, vouched: bool
    ) -> dict[str, Any]:
        if not inv.encoded_claims:
            raise ClaimsError("invocation carries no encoded_claims: refused (SPEC §4 anti-forgery)")
        claims = claims_mod.verify_invocation(
            inv.encoded_claims,
            cluster_issuers=self.cluster_issuers,
            origin_url=origin_url,
            target_url=target_url,
            operation=inv.operation,
            msg=msg,
            vouched_by=self.cluster_key.public_key if vouched else None,
        )
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise ClaimsError("invocation claims carry no iat: refused (replay protection)")
        self.sealer.guard.check_time(float(issued), "invocation")
        return claims

    def vouched(self, inv: Invocation) -> bool:
        """Whether ``inv`` came with a valid ``claims_mac``: its sender holds this participant's cluster seed
        (so the claims need no Ed25519 check, and the answer may carry an ``m1`` seal)."""
        return bool(inv.claims_mac) and self.sealer.vouched(inv.encoded_claims, inv.claims_mac)

    async def answer(
        self, reply: str, invocation_id: str, result: bytes | Exception, *, responder: Entity, mac: bool = False
    ) -> None:
        """Send the sealed ``InvocationResponse`` for one invocation (every invocation gets one);
        ``responder`` is the target that was invoked (the caller checks the seal against it). ``mac``: an
        ``m1`` seal, for a caller that proved it holds this cluster seed (``vouched``)."""
        if not reply:
            return
        if isinstance(result, Exception):
            text = bounded_error(str(result) or type(result).__name__)
            response = InvocationResponse(invocation_id, error=text, error_kind=getattr(result, "kind", None))
        elif len(result) > self.inline_limit:
            try:
                await self._stash(f"{invocation_id}.reply", result)
                response = InvocationResponse(invocation_id, content_length=len(result))
            except Unreachable as exc:
                response = InvocationResponse(invocation_id, error=str(exc), error_kind=exc.kind)
        else:
            response = InvocationResponse(invocation_id, msg=result)
        body = response.to_msgpack()
        try:
            headers = self.sealer.headers(response_context(invocation_id, responder), body, mac=mac)
            await self.nc.publish(reply, body, headers=headers)
        except nats.errors.Error as exc:
            log.warning("could not answer invocation", invocation_id=invocation_id, error=str(exc))
