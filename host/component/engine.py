"""Component actors' engine side: compile once (cached on disk by hash), check, link (SPEC §7).

One ``ComponentRuntime`` per host runtime (``components_of(runtime)``) shares the waPC runtime's
engine and epoch ticker and owns the component ``Linker``: WASI 0.2 (``add_wasip2``; what it may touch
is granted per store, nothing by default), ``lattice:actor/host`` and the standard interfaces
(``host.component.interfaces``), plus whatever other modules register with ``register_interfaces``
(e.g. wasi:http). Compiling an 18 MB componentize-py component takes 8–13 s, so compiled
components (with the block-copy entry ``host.component.binary`` adds) are serialized to
``<cache>/<sha256>.component-<rewrite>.cwasm`` and mapped back from there (~50 ms); callers compile on load
or upload, off the event loop, never on a call.

The check at load names the reason a component cannot run: not a component, an export that is
neither ``lattice:actor/guest@0.1.0`` nor ``wasi:http/incoming-handler@0.2.x``, a ``handle`` of
another type, or an import the host does not provide (or provides with another type).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import wasmtime
from wasmtime import component as cm

from lattice import claims as claims_mod
from lattice.errors import InvalidActor, LatticeError
from lattice.host.component import binary, calls
from lattice.host.limits import LruCache
from lattice.wasm import is_component

log = structlog.get_logger("host.component")

GUEST = "lattice:actor/guest@0.1.0"
HOST = "lattice:actor/host@0.1.0"
HANDLE_TYPE = "(string,list<u8>)->result{ok:list<u8>,err:string}"
FAST_HANDLE_TYPE = "(string,string)->result{ok:string,err:string}"  # see host.component.binary
HTTP_HANDLER = "wasi:http/incoming-handler@0.2."
#: WASI 0.2 packages wasmtime's ``add_wasip2`` defines (grants per store decide what they reach)
WASIP2_PACKAGES = ("wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/", "wasi:filesystem/", "wasi:sockets/")

#: modules that ``register_interfaces`` when imported; every ``ComponentRuntime`` imports them first
INTERFACE_MODULES = ["lattice.host.component.interfaces", "lattice.host.component.wasi_http.caller"]

Definer = Callable[["ComponentRuntime", cm.LinkerInstance], dict[str, calls.HostFunc]]
"""Defines interfaces on the root linker instance; returns ``{"iface#func": HostFunc}`` it defined."""

_DEFINERS: list[tuple[str, Definer]] = []


@dataclass(frozen=True, slots=True)
class Kind:
    """A component kind with its own WASI (e.g. ``http``): how its imports are checked at load and the
    linker an instance is made with (built once per component), instead of the shared one."""

    check_imports: Callable[[ComponentRuntime, cm.Component], None]
    linker: Callable[[ComponentRuntime, cm.Component], cm.Linker]


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, kind: Kind) -> None:
    """Components of kind ``name`` are checked and linked by ``kind`` (call at import time)."""
    _KINDS[name] = kind


def register_interfaces(name: str, definer: Definer) -> None:
    """Add interfaces to every ``ComponentRuntime`` made from now on (call at import time of a module
    listed in ``INTERFACE_MODULES``)."""
    if all(n != name for n, _ in _DEFINERS):
        _DEFINERS.append((name, definer))


@dataclass(frozen=True, slots=True)
class CompiledComponent:
    """A checked, compiled component. ``kind``: ``actor`` (lattice:actor/guest) or ``http``."""

    digest: str
    component: cm.Component
    kind: str
    claims: claims_mod.ActorClaims | None
    actor_id: str
    size: int
    handle: calls.FuncPlan | None
    exports: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    abi = "component"
    uses_wasi = True  # every component instance gets a WASI 0.2 context (granting nothing by default)


class ComponentRuntime:
    """Compiles, caches and links components for one engine. Thread-safe."""

    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None, *, epoch_tick_s: float) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self.epoch_tick_s = epoch_tick_s
        self._compiled: LruCache[CompiledComponent] = LruCache()
        self._lock = threading.Lock()
        self.linker = _kept(cm.Linker(engine))
        self.linker.allow_shadowing = True
        self.linker.add_wasip2()
        self.host_funcs: dict[str, calls.HostFunc] = {}
        for module in INTERFACE_MODULES:  # each registers its interfaces when imported
            importlib.import_module(module)
        with self.linker.root() as root:
            for _, definer in _DEFINERS:
                self.host_funcs.update(definer(self, root))

    # --- compiling ----------------------------------------------------------------------------------

    def compile(self, wasm: bytes) -> CompiledComponent:
        """Check and compile ``wasm`` (or return the cached result); raises ``InvalidActor`` naming why."""
        digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
        cached = self._compiled.get(digest)
        if cached is not None:
            return cached
        if not is_component(wasm):
            raise InvalidActor("not a WebAssembly component (the header's layer is not 1)")
        try:
            actor_claims = claims_mod.extract_claims(wasm)
        except LatticeError as exc:
            raise InvalidActor(f"unreadable claims: {exc}") from exc
        component = self._load(wasm, digest)
        kind, handle, exports, imports = self.check(component)
        actor_id = actor_claims.sub if actor_claims else claims_mod.actor_id_of(wasm)
        compiled = CompiledComponent(
            digest, component, kind, actor_claims, actor_id, len(wasm), handle, exports, imports
        )
        self._compiled.put(digest, compiled)
        return compiled

    def _load(self, wasm: bytes, digest: str) -> cm.Component:
        name = f"{digest[7:]}.component-{binary.REWRITE}.cwasm"
        path = self.cache_dir / name if self.cache_dir else None
        if path is not None and path.exists():
            try:
                return cm.Component.deserialize_file(self.engine, str(path))
            except Exception as exc:  # a stale or foreign cache entry: compile again
                log.warning("cached component unusable; compiling", path=str(path), error=_first_line(exc))
        component = self._compile(wasm)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
                tmp.write_bytes(component.serialize())
                tmp.replace(path)
                # mapped from the file: code pages are shared by every process that loads the same file
                return cm.Component.deserialize_file(self.engine, str(path))
            except OSError as exc:
                log.warning("cannot cache compiled component", path=str(path), error=str(exc))
        return component

    def _compile(self, wasm: bytes) -> cm.Component:
        fast = binary.add_fast_handle(wasm)
        if fast is not None:
            try:
                return cm.Component(self.engine, fast)
            except Exception as exc:  # never the reason to refuse: the component as given decides
                log.info("no fast handle for this component", error=_first_line(exc))
        try:
            return cm.Component(self.engine, wasm)
        except Exception as exc:
            raise InvalidActor(f"invalid WebAssembly component: {_first_line(exc)}") from exc

    def check(self, component: cm.Component) -> tuple[str, calls.FuncPlan | None, tuple[str, ...], tuple[str, ...]]:
        """``(kind, handle plan, export names, import names)``; raises ``InvalidActor`` naming the reason."""
        ctype = component.type
        exports = ctype.exports(self.engine)
        imports = ctype.imports(self.engine)
        handle: calls.FuncPlan | None = None
        fast = exports.pop(binary.FAST_HANDLE, None)
        if GUEST in exports:
            kind = "actor"
            func = _instance_funcs(exports[GUEST], self.engine).get("handle")
            if func is None:
                raise InvalidActor(f"the component exports {GUEST} without handle (SPEC §7)")
            handle = calls.FuncPlan(func)
            if handle.text != HANDLE_TYPE:
                raise InvalidActor(f"{GUEST}#handle must be {HANDLE_TYPE} (SPEC §7), not {handle.text}")
            if fast is not None and isinstance(fast.ty, cm.FuncType):
                handle.fast = calls.FuncPlan(fast.ty)
                if handle.fast.text != FAST_HANDLE_TYPE:
                    handle.fast = None
        elif any(name.startswith(HTTP_HANDLER) for name in exports):
            kind = "http"
        else:
            raise InvalidActor(
                f"not a lattice actor component: it exports neither {GUEST} nor wasi:http/incoming-handler@0.2.x "
                f"(SPEC §7); it exports: {', '.join(sorted(exports)) or 'nothing'}"
            )
        if kind in _KINDS:
            _KINDS[kind].check_imports(self, component)
        else:
            for name, item in imports.items():
                self._check_import(name, item)
        return kind, handle, tuple(sorted(exports)), tuple(sorted(imports))

    def linker_for(self, compiled: CompiledComponent) -> cm.Linker:
        """The linker for instances of ``compiled``: its kind's (made once), else the shared one."""
        kind = _KINDS.get(compiled.kind)
        if kind is None:
            return self.linker
        linker = compiled.extra.get("linker")
        if linker is None:
            with self._lock:
                linker = compiled.extra.get("linker")
                if linker is None:
                    linker = compiled.extra["linker"] = _kept(kind.linker(self, compiled.component))
        return linker  # type: ignore[no-any-return]

    def provides(self, name: str) -> bool:
        """Whether the registered interfaces (not WASI) include ``name``."""
        return any(key.split("#")[0] == name for key in self.host_funcs)

    def define_interfaces(self, root: cm.LinkerInstance) -> None:
        """The registered interfaces (``lattice:actor/host``, wasi:keyvalue, logging, config) on another
        linker, for a kind with its own (e.g. ``http``); their functions read their types on first call."""
        for _, definer in _DEFINERS:
            definer(self, root)

    def check_import(self, name: str, item: Any) -> None:
        """Refuse (``InvalidActor``) an import of a registered interface with another type."""
        self._check_import(name, item)

    def _check_import(self, name: str, item: Any) -> None:
        if name.startswith(WASIP2_PACKAGES):
            return  # wasmtime's WASI 0.2 (semver-compatible versions link; instantiation tells the rest)
        funcs = {key: func for key, func in self.host_funcs.items() if key.split("#")[0] == name}
        if not funcs:
            raise InvalidActor(f"the component imports {name}, which the host does not provide (SPEC §7)")
        for func_name, ftype in _instance_funcs(item, self.engine).items():
            host_func = funcs.get(f"{name}#{func_name}")
            if host_func is None:
                raise InvalidActor(f"the component imports {name}#{func_name}, which the host does not provide")
            host_func.bind(ftype, "the component")


_LINKERS: weakref.WeakSet[cm.Linker] = weakref.WeakSet()


def _kept(linker: cm.Linker) -> cm.Linker:
    """A component linker left to the OS at exit (see ``_leave_linkers``)."""
    _LINKERS.add(linker)
    return linker


@atexit.register
def _leave_linkers() -> None:
    """Deleting a component linker runs its host functions' and resources' finalizers, Python callbacks;
    while Python shuts down those may be gone, and wasmtime then calls freed memory (a segfault at exit).
    Linkers still alive at exit are therefore not deleted: the process ending frees them."""
    for linker in list(_LINKERS):
        linker._Managed__ptr = None  # type: ignore[attr-defined]  # wasmtime-py's Managed: close() is a no-op


def _instance_funcs(item: Any, engine: wasmtime.Engine) -> dict[str, cm.FuncType]:
    ty = item.ty
    if not isinstance(ty, cm.ComponentInstanceType):
        return {}
    return {name: sub.ty for name, sub in ty.exports(engine).items() if isinstance(sub.ty, cm.FuncType)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_RUNTIMES: weakref.WeakKeyDictionary[Any, ComponentRuntime] = weakref.WeakKeyDictionary()
_RUNTIMES_LOCK = threading.Lock()


def components_of(runtime: Any) -> ComponentRuntime:
    """The ``ComponentRuntime`` sharing ``runtime``'s engine, cache directory and epoch ticker."""
    with _RUNTIMES_LOCK:
        found = _RUNTIMES.get(runtime)
        if found is None:
            found = _RUNTIMES[runtime] = ComponentRuntime(
                runtime.engine, runtime.cache_dir, epoch_tick_s=runtime.epoch_tick_s
            )
        return found
