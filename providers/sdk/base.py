"""The provider SDK: one base class for capability providers.

Modelled on wasmCloud's ``provider-sdk``: a provider overrides hooks that default to nothing and
marks the contract operations it serves; the NATS plumbing lives elsewhere, so a provider is a few lines.

    Provider              base class: ``init`` ``on_link_put`` ``on_link_del`` ``health`` ``shutdown``
                          hooks, ``handle`` dispatch to ``@operation`` methods, ``links`` bookkeeping
                          (``put_link``/``del_link``, which hosts call too); a ``CapabilityProvider``
    operation             decorator: the contract operation (``KeyValue.Get``) a method serves
    arg_map … arg_list    argument checks that raise ``InvocationError`` (never ``KeyError``)
    load_provider_class   the bundled provider registered under a name (``lattice.providers`` entry points)

Driving a provider in process (what a host does): ``await provider.init(ctx)``, then
``await provider.put_link(link)`` / ``del_link(link)`` as links come and go, ``await
provider.handle(actor_id, operation, payload)`` per host call, ``await provider.shutdown()`` at the
end; ``lattice.providers.sdk.server.ProviderServer`` serves it to remote actors over NATS. On its own, as
a process: ``lattice.providers.sdk.runner``.

This module does not know any particular provider; providers never import ``host``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import structlog

from lattice.capability import ProviderContext, builtin_provider_id
from lattice.errors import ConfigError, InvocationError, LinkNotFound, ProviderError
from lattice.messages import LinkDefinition, pack, unpack

log = structlog.get_logger("lattice.providers")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_OPERATION_ATTR = "__lattice_operation__"


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


ENTRY_POINT_GROUP = "lattice.providers"


def bundled_names() -> list[str]:
    """The names of the providers registered in the ``lattice.providers`` entry points."""
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_provider_class(name: str) -> type[Provider]:
    """The bundled provider class registered as ``name`` in the ``lattice.providers`` entry points: the one
    lookup of a provider (hosts, ``lattice provider``)."""
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        raise ConfigError(f"unknown provider {name!r}; bundled: {', '.join(sorted(found)) or 'none installed'}")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"entry point {name!r} is not a lattice.providers.sdk.Provider")
    return cls


def provider_class(image_ref: str) -> type[Provider]:
    """The class behind the image reference ``builtin:<name>``; ``ConfigError`` for anything else."""
    if not image_ref.startswith("builtin:"):
        raise ConfigError(f"only bundled providers (builtin:<name>) can run in a host, not {image_ref!r}")
    name = image_ref.removeprefix("builtin:")
    if name not in bundled_names():
        bundled = ", ".join("builtin:" + k for k in bundled_names())
        raise ConfigError(f"unknown provider {image_ref!r}; bundled: {bundled}")
    return load_provider_class(name)
