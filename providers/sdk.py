"""The provider SDK: one base class for capability providers, and the NATS plumbing that runs them.

Modelled on wasmCloud's ``provider-sdk``: a provider overrides hooks that default to nothing and
marks the contract operations it serves; everything NATS lives here, so a provider is a few lines.

    Provider              base class: ``init`` ``on_link_put`` ``on_link_del`` ``health`` ``shutdown``
                          hooks, ``handle`` dispatch to ``@operation`` methods, ``links`` bookkeeping
                          (``put_link``/``del_link``, which hosts call too)
    operation             decorator: the contract operation (``KeyValue.Get``) a method serves
    arg_map … arg_list    argument checks that raise ``InvocationError`` (never ``KeyError``)
    settle                a ``flush()`` that really waits for fresh subscriptions (nats-py quirk)
    NoResponders          ``Unreachable`` when nobody serves an actor at all (HTTP 503, not 504)
    NatsProviderContext   ``ProviderContext`` over NATS: ``invoke_actor`` is an ``Invocation`` request
    ProviderServer        serves one provider on NATS given a provider and any context: RPC, health,
                          and (standalone) link learning, shutdown and lifecycle/health events
    ProviderRunner        a standalone provider: connect, context, ``init``, serve, drain on stop
    run_standalone        ``ProviderRunner`` until SIGTERM/SIGINT or a ``shutdown`` request

Driving a provider in process (what a host does): ``await provider.init(ctx)``, then
``await provider.put_link(link)`` / ``del_link(link)`` as links come and go, ``await
provider.handle(actor_id, operation, payload)`` per host call, ``await provider.shutdown()`` at the
end. Optionally ``ProviderServer(provider, ctx, verify=...)`` serves remote actors over NATS too.

This module does not know any particular provider; providers never import ``host``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import signal
from collections.abc import Awaitable, Callable, Collection
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from lattice import claims, events, keys, subjects
from lattice.capability import ENTRY_POINT_GROUP, ProviderContext
from lattice.connection import connect
from lattice.errors import (
    ClaimsError,
    ConfigError,
    InvocationError,
    LatticeError,
    LinkNotFound,
    ProviderError,
    RemoteError,
    Unreachable,
)
from lattice.links import LatticeData
from lattice.messages import Entity, Invocation, InvocationResponse, LinkDefinition, pack, unpack
from lattice.settings import Settings

log = structlog.get_logger("providers")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
LINKDEF_SET_FAILED = "linkdef_set_failed"
_OPERATION_ATTR = "__lattice_operation__"


class NoResponders(Unreachable):
    """Nobody serves the actor at all (no instance anywhere), as opposed to one too slow to answer."""


async def settle(nc: NATS) -> None:
    """Return once the server has processed everything sent on ``nc`` so far (subscriptions included).

    nats-py's ``flush()`` writes its PING straight to the socket, ahead of commands still queued for
    its flusher task, so one flush may come back before a fresh SUB reached the server. By the time
    that first PONG is read the flusher has written the queue, so the second PING follows the SUBs.
    """
    await nc.flush()
    await nc.flush()


def builtin_provider_id(name: str) -> str:
    """The stable ``V…`` id of bundled provider ``name``: manifests and links can name it before it runs."""
    return keys.deterministic_keypair("service", f"builtin:{name}").public_key


def operation(name: str) -> Callable[[F], F]:
    """Mark ``async def method(self, actor_id, args)`` as serving contract operation ``name``.

    ``args`` is the decoded msgpack payload (``None`` for an empty one); the return value is packed.
    """

    def mark(fn: F) -> F:
        setattr(fn, _OPERATION_ATTR, name)
        return fn

    return mark


# --- argument checks: a bad payload is the caller's mistake, reported as such ----------------------


def arg_map(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise InvocationError(f"expected a map, got {type(args).__name__}")
    return args


def arg_str(args: Any, key: str | None = None) -> str:
    """``args`` itself (key ``None``) or ``args[key]`` as a string; bin is decoded as UTF-8."""
    value = args if key is None else arg_map(args).get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if not isinstance(value, str):
        what = "the argument" if key is None else f"{key!r}"
        raise InvocationError(f"{what} must be a string, got {type(value).__name__}")
    return value


def arg_int(args: Any, key: str, lo: int, hi: int, default: int | None = None) -> int:
    value = arg_map(args).get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvocationError(f"{key!r} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvocationError(f"{key!r} must be in [{lo}, {hi}], got {value}")
    return value


def arg_list(args: Any) -> list[str]:
    """A list of strings (``SetUnion [setName]``)."""
    if not isinstance(args, list):
        raise InvocationError(f"expected a list of strings, got {type(args).__name__}")
    return [arg_str(item) for item in args]


# --- the provider base ------------------------------------------------------------------------------


class Provider:
    """A capability provider. Subclasses set ``name``/``contract_id`` and override what they need.

    ``links`` maps actor id → the ``LinkDefinition`` this provider serves it under; the base keeps it
    current before calling ``on_link_put`` and after ``on_link_del``. ``requires_link`` makes
    ``handle`` refuse actors without a link (a keyvalue store needs the link's bucket; a number
    generator does not).
    """

    name: ClassVar[str] = "provider"
    contract_id: ClassVar[str] = ""
    requires_link: ClassVar[bool] = False
    _operations: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                op = getattr(value, _OPERATION_ATTR, None)
                if isinstance(op, str):
                    ops[op] = attr
        cls._operations = ops

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.links: dict[str, LinkDefinition] = {}
        self._ctx: ProviderContext | None = None
        self._link_lock = asyncio.Lock()
        self.log = log.bind(provider=self.name)

    @classmethod
    def builtin_id(cls) -> str:
        """This provider's stable id as a bundled provider (``builtin:<name>``)."""
        return builtin_provider_id(cls.name)

    @property
    def ctx(self) -> ProviderContext:
        if self._ctx is None:
            raise ProviderError(f"{self.name} provider used before init(ctx)")
        return self._ctx

    @ctx.setter
    def ctx(self, ctx: ProviderContext) -> None:
        self._ctx = ctx

    @property
    def link_name(self) -> str:
        return self._ctx.link_name if self._ctx is not None else "default"

    # hooks: override what you need; each defaults to nothing

    async def init(self, ctx: ProviderContext) -> None:
        """Called once before anything else. Overrides must call ``await super().init(ctx)``."""
        self.ctx = ctx
        self.log = log.bind(provider=self.name, provider_id=ctx.provider_id, link_name=ctx.link_name)

    async def on_link_put(self, link: LinkDefinition) -> None:
        """A link to this provider appeared; raise ``ProviderError`` to refuse it (bad values)."""

    async def on_link_del(self, link: LinkDefinition) -> None:
        """A link went away; release what ``on_link_put`` acquired."""

    async def health(self) -> tuple[bool, str]:
        """``(healthy, message)``."""
        return True, "healthy"

    async def shutdown(self) -> None:
        """Release everything; called once at the end."""

    # link bookkeeping: the runner and hosts call these, never the hooks directly

    async def put_link(self, link: LinkDefinition) -> bool:
        """Record ``link`` and call ``on_link_put``; ``False`` if it was already in place.

        A link whose values changed is deleted then put again. A refused link is forgotten and
        the refusal re-raised as ``ProviderError`` naming the link.
        """
        async with self._link_lock:
            current = self.links.get(link.actor_id)
            if current == link:
                return False
            if current is not None:
                await self._del_locked(current)
            self.links[link.actor_id] = link
            try:
                await self.on_link_put(link)
            except Exception as exc:
                self.links.pop(link.actor_id, None)
                if isinstance(exc, ProviderError):
                    raise
                raise ProviderError(f"{self.name}: link {describe_link(link)} refused: {exc}") from exc
            return True

    async def del_link(self, link: LinkDefinition) -> bool:
        """Forget the link of ``link.actor_id`` and call ``on_link_del``; ``False`` if there was none."""
        async with self._link_lock:
            current = self.links.get(link.actor_id)
            if current is None:
                return False
            await self._del_locked(current)
            return True

    async def _del_locked(self, link: LinkDefinition) -> None:
        self.links.pop(link.actor_id, None)
        try:
            await self.on_link_del(link)
        except Exception as exc:
            raise ProviderError(f"{self.name}: removing link {describe_link(link)} failed: {exc}") from exc

    # calls from actors

    async def handle(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        """Serve one call from ``actor_id``; errors name the contract and operation, never crash."""
        where = f"{self.contract_id} {operation}"
        method = self._operations.get(operation)
        if method is None:
            known = ", ".join(sorted(self._operations)) or "none"
            raise InvocationError(f"{self.contract_id} has no operation {operation!r} (known: {known})")
        if self.requires_link and actor_id not in self.links:
            raise LinkNotFound(self.contract_id, self.link_name, actor_id)
        try:
            args = unpack(payload) if payload else None
            result = await getattr(self, method)(actor_id, args)
        except ProviderError as exc:
            raise ProviderError(f"{where}: {exc}") from exc
        except InvocationError as exc:
            raise InvocationError(f"{where}: {exc}") from exc
        except Exception as exc:
            self.log.exception("provider operation crashed", operation=operation, actor_id=actor_id)
            raise ProviderError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        return pack(result)


def describe_link(link: LinkDefinition) -> str:
    return f"{link.actor_id} → {link.contract_id} ({link.link_name})"


# --- ProviderContext over NATS ----------------------------------------------------------------------


class NatsProviderContext:
    """``ProviderContext`` for a provider on its own: actors are reached over NATS (SPEC §4).

    Outbound invocations are signed with ``cluster_key`` when there is one (hosts refuse unsigned).
    """

    def __init__(
        self,
        settings: Settings,
        nc: NATS,
        *,
        provider_id: str,
        contract_id: str,
        link_name: str = "default",
        host_id: str = "",
        js: JetStreamContext | None = None,
        cluster_key: keys.KeyPair | None = None,
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.js = js or nc.jetstream()
        self.provider_id = provider_id
        self.contract_id = contract_id
        self.link_name = link_name
        self.host_id = host_id
        self.cluster_key = cluster_key
        self._log = log.bind(provider_id=provider_id, link_name=link_name)

    def invocation(
        self, actor_id: str, operation: str, payload: bytes, trace_context: dict[str, str] | None = None
    ) -> Invocation:
        """The (signed) ``Invocation`` of ``operation`` on ``actor_id`` from this provider."""
        origin = Entity(self.provider_id, self.contract_id, self.link_name)
        encoded = ""
        if self.cluster_key is not None:
            encoded = claims.sign_invocation(
                self.cluster_key,
                origin_url=claims.provider_url(self.contract_id, self.link_name, self.provider_id),
                target_url=claims.actor_url(actor_id),
                operation=operation,
                msg=payload,
                host_id=self.host_id or self.provider_id,
            )
        return Invocation(
            origin,
            Entity(actor_id),
            operation,
            payload,
            host_id=self.host_id,
            encoded_claims=encoded,
            trace_context=dict(trace_context or {}),
        )

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        timeout = timeout_s or self.settings.rpc_timeout_s
        inv = self.invocation(actor_id, operation, payload, trace_context)
        subject = subjects.actor_rpc(self.settings.lattice, actor_id)
        try:
            reply = await self.nc.request(subject, inv.to_msgpack(), timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise NoResponders(f"no instance of actor {actor_id} runs in lattice {self.settings.lattice}") from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise Unreachable(f"actor {actor_id} did not answer {operation} within {timeout:g} s") from exc
        except nats.errors.Error as exc:
            raise Unreachable(f"cannot reach actor {actor_id}: {exc}") from exc
        response = InvocationResponse.from_msgpack(reply.data)
        if response.error:
            raise RemoteError(response.error)
        return response.msg

    def log(self, event: str, **fields: Any) -> None:
        self._log.info(event, host_id=self.host_id, **fields)


# --- serving a provider on NATS ---------------------------------------------------------------------

Verifier = Callable[[Invocation], None]


def cluster_verifier(issuers: Collection[str], contract_id: str, link_name: str, provider_id: str) -> Verifier:
    """Anti-forgery check (SPEC §4) of invocations addressed to this provider."""
    target_url = claims.provider_url(contract_id, link_name, provider_id)

    def verify(inv: Invocation) -> None:
        if not inv.encoded_claims:
            raise ClaimsError("invocation carries no encoded_claims: refused (SPEC §4 anti-forgery)")
        origin = inv.origin
        origin_url = (
            claims.provider_url(origin.contract_id, origin.link_name, origin.public_key)
            if origin.contract_id
            else claims.actor_url(origin.public_key)
        )
        claims.verify_invocation(
            inv.encoded_claims,
            cluster_issuers=issuers,
            origin_url=origin_url,
            target_url=target_url,
            operation=inv.operation,
            msg=inv.msg,
        )

    return verify


class ProviderServer:
    """Serve ``provider`` on NATS for ``ctx.provider_id``/``ctx.link_name`` in ``ctx.settings.lattice``.

    Always: the provider RPC subject (queue group = provider id; every ``Invocation`` answered, errors
    included) and health requests. ``verify`` refuses forged invocations (raise to refuse).
    ``learn_links``: load links from ``LATTICEDATA`` and follow it plus the ``linkdefs.put|del``
    subjects (a host feeds its providers links itself, so it leaves this off). ``on_shutdown``:
    also answer ``shutdown`` requests and call it. ``health_interval_s``: publish
    ``health_check_passed|failed`` events that often.
    """

    def __init__(
        self,
        provider: Provider,
        ctx: ProviderContext,
        *,
        verify: Verifier | None = None,
        learn_links: bool = False,
        on_shutdown: Callable[[], None] | None = None,
        health_interval_s: float | None = None,
        drain_timeout_s: float = 5.0,
    ) -> None:
        self.provider = provider
        self.ctx = ctx
        self.verify = verify
        self.learn_links = learn_links
        self.on_shutdown = on_shutdown
        self.health_interval_s = health_interval_s
        self.drain_timeout_s = drain_timeout_s
        self.lattice = ctx.settings.lattice
        self.provider_id = ctx.provider_id
        self.link_name = ctx.link_name
        self.contract_id = provider.contract_id
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
            self.data = LatticeData(self.ctx.js, lat)
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
            with contextlib.suppress(Exception):
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
        await asyncio.gather(*self._background, *self._inflight, return_exceptions=True)

    async def publish_event(self, name: str, data: dict[str, Any]) -> None:
        body = {"public_key": self.provider_id, "link_name": self.link_name, "contract_id": self.contract_id}
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
        try:
            inv = Invocation.from_msgpack(msg.data)
        except InvocationError as exc:
            await self._reply(msg, InvocationResponse("", error=f"{self.contract_id}: {exc}"))
            return
        try:
            if self.verify is not None:
                self.verify(inv)
            result = await self.provider.handle(inv.origin.public_key, inv.operation, inv.msg)
            if len(result) > self.ctx.nc.max_payload:
                raise ProviderError(f"{self.contract_id} {inv.operation}: result of {len(result)} bytes is too large")
            response = InvocationResponse(inv.id, msg=result)
        except LatticeError as exc:
            response = InvocationResponse(inv.id, error=str(exc))
        except Exception as exc:  # a provider bug still gets an answer
            self._log.exception("invocation crashed", operation=inv.operation)
            response = InvocationResponse(inv.id, error=f"{self.contract_id} {inv.operation} failed: {exc}")
        await self._reply(msg, response)

    async def _reply(self, msg: Msg, response: InvocationResponse) -> None:
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(response.to_msgpack())

    async def _check_health(self) -> tuple[bool, str]:
        try:
            return await self.provider.health()
        except Exception as exc:
            return False, f"health check failed: {exc}"

    async def _serve_health(self, msg: Msg) -> None:
        healthy, message = await self._check_health()
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(pack({"healthy": healthy, "message": message}))

    async def _health_loop(self, interval: float) -> None:
        while True:
            healthy, message = await self._check_health()
            name = events.HEALTH_CHECK_PASSED if healthy else events.HEALTH_CHECK_FAILED
            await self.publish_event(name, {"message": message})
            await asyncio.sleep(interval)

    async def _on_shutdown(self, msg: Msg) -> None:
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(pack({"accepted": True}))
        if self.on_shutdown is not None:
            self.on_shutdown()

    async def _serve_linkdef(self, msg: Msg) -> None:
        action = subjects.last_segment(msg.subject)
        try:
            link = LinkDefinition.from_obj(unpack(msg.data))
            error = await self._on_link(action, link)
        except InvocationError as exc:
            error = f"malformed link definition: {exc}"
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(pack({"accepted": error is None, "error": error or ""}))

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
                LINKDEF_SET_FAILED, {"actor_id": link.actor_id, "link": link.to_dict(), "error": str(exc)}
            )
            return str(exc)
        return None


# --- a provider on its own --------------------------------------------------------------------------


class ProviderRunner:
    """A standalone provider process: ``async with ProviderRunner(p, settings) as r: await r.wait()``.

    Connects, builds a ``NatsProviderContext``, calls ``init``, learns links, serves; on exit stops
    serving, lets in-flight calls finish, calls ``shutdown``, publishes ``provider_stopped``, drains.
    """

    def __init__(
        self,
        provider: Provider,
        settings: Settings,
        *,
        link_name: str = "default",
        provider_id: str | None = None,
        health_interval_s: float = 5.0,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.link_name = link_name
        self.provider_id = provider_id or provider.builtin_id()
        self.health_interval_s = health_interval_s
        self.stopping = asyncio.Event()
        self.nc: NATS | None = None
        self.server: ProviderServer | None = None

    def stop(self) -> None:
        """Ask ``wait()`` to return (signal handlers and ``shutdown`` requests call this)."""
        self.stopping.set()

    async def wait(self) -> None:
        await self.stopping.wait()

    async def __aenter__(self) -> ProviderRunner:
        s = self.settings
        self.nc = await connect(s, f"provider-{self.provider.name}-{self.link_name}", on_reconnect=self._reconnected)
        try:
            cluster_key = keys.from_seed(s.cluster_seed) if s.cluster_seed else None
            ctx = NatsProviderContext(
                s,
                self.nc,
                provider_id=self.provider_id,
                contract_id=self.provider.contract_id,
                link_name=self.link_name,
                cluster_key=cluster_key,
            )
            issuers = set(s.cluster_issuers) | ({cluster_key.public_key} if cluster_key else set())
            verify = (
                cluster_verifier(issuers, self.provider.contract_id, self.link_name, self.provider_id)
                if issuers
                else None
            )
            await self.provider.init(ctx)
            self.server = ProviderServer(
                self.provider,
                ctx,
                verify=verify,
                learn_links=True,
                on_shutdown=self.stop,
                health_interval_s=self.health_interval_s,
            )
            await self.server.start()
            await self.server.publish_event(events.PROVIDER_STARTED, {"name": self.provider.name})
        except BaseException:
            await self._close()
            raise
        return self

    async def _reconnected(self) -> None:
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
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        self.nc = None


async def run_standalone(
    provider: Provider,
    settings: Settings,
    *,
    link_name: str = "default",
    provider_id: str | None = None,
    health_interval_s: float = 5.0,
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


def load_provider_class(name: str) -> type[Provider]:
    """The bundled provider class registered as ``name`` in the ``lattice.providers`` entry points."""
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        raise ConfigError(f"unknown provider {name!r}; bundled: {', '.join(sorted(found)) or 'none installed'}")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"entry point {name!r} is not a providers.sdk.Provider")
    return cls
