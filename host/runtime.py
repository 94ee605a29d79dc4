"""The engine and the module cache: one wasmtime engine with epoch interruption, compiled modules cached by
SHA-256 (in memory and serialized on disk), one shared ``Linker`` carrying the waPC ABI (``host.wapc``) and WASI,
and the per-actor limits and WASI grants (SPEC §1).

Costs paid for here, measured on this machine: compiling a small module 1.4–2 ms, deserializing ~40 µs. It knows
nothing of NATS. Instances and calls are ``host.pool``'s; the raw wasmtime calls ``host.wasmtime_shim``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
import wasmtime

from lattice import claims as claims_mod
from lattice.errors import InvalidActor, LatticeError
from lattice.failsafe import logged
from lattice.host import abi as abi_mod
from lattice.host import wapc
from lattice.host.limits import LruCache
from lattice.host.spares import SpareMaker

log = structlog.get_logger("lattice.host.runtime")

# SPEC §1 order; a WASI reactor (`-mexec-model=reactor`) needs `_initialize` first, as WASI prescribes.
START_FUNCTIONS = ("_initialize", "_start", "wapc_init", "start")
FUNCTION_START_FUNCTIONS = ("_initialize",)  # a WASI reactor's initializer; plain-function modules only
EPOCH_TICK_S = 0.005
PAGE = 65536

Abi = Literal["wapc", "function"]
"""``wapc``: a waPC actor (SPEC §1). ``function``: a plain-function module (docs/embedding.md)."""

HostCall = Callable[[str, str, str, bytes], bytes]
"""``(binding, namespace, operation, payload) -> result``; raises ``LatticeError`` to fail the call."""

LogSink = Callable[[str, str], None]
"""``(stream, text)``: a guest's ``__console_log`` line (stream ``console``) or WASI stdout/stderr."""


@dataclass(frozen=True, slots=True)
class ActorLimits:
    """Per-actor limits (SPEC-silent defaults chosen for a shared host).

    ``deadline_s`` per call (epoch interruption), ``max_memory_bytes`` of linear memory per instance (``None``:
    the kind's default, 64 MiB for a module, 128 MiB per memory for a component, ``host.limits``; 0: none),
    ``max_instances`` running at once, ``max_waiting`` calls queued behind them before ``Busy``,
    ``max_payload_bytes`` per request and response.
    """

    deadline_s: float = 10.0
    max_memory_bytes: int | None = None
    max_instances: int = 16
    max_waiting: int = 1024
    max_payload_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WasiGrants:
    """What a WASI actor may touch (SPEC §1): guest path → host path, env, args; for wasi:http components
    the hosts outgoing HTTP may reach (``allowed_hosts``). Nothing by default."""

    dirs: dict[str, str] = field(default_factory=dict)
    readonly: bool = False
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledActor:
    """A validated, compiled module ready to instantiate. ``digest`` is ``sha256:<hex>``."""

    digest: str
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    uses_wasi: bool
    claims: claims_mod.ActorClaims | None
    actor_id: str
    size: int
    abi: Abi = "wapc"


class Runtime:
    """One wasmtime engine with epoch interruption, a module cache and the shared ``Linker``.

    ``cache_dir`` holds serialized compiled modules (``<sha256>.cwasm``); ``None`` keeps them in memory
    only. ``close()`` stops the epoch ticker. Thread-safe.
    """

    def __init__(self, cache_dir: Path | None = None, *, epoch_tick_s: float = EPOCH_TICK_S) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.epoch_tick_s = epoch_tick_s
        self.cache_dir = cache_dir / f"wasmtime-{wasmtime.__name__}-50" if cache_dir else None
        self._modules: LruCache[CompiledActor] = LruCache()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        wapc.define(self.linker)
        self.linker.define_wasi()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="epoch-ticker", daemon=True)
        self._ticker.start()
        self.spares = SpareMaker()

    def _tick(self) -> None:
        while not self._stop.wait(self.epoch_tick_s):
            self.engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()
        self.spares.close()

    def compile(self, wasm: bytes, *, abi: Abi = "wapc") -> CompiledActor:
        """Validate and compile ``wasm`` (or return the cached result for the same bytes and ABI).

        Raises ``InvalidActor`` naming the reason: not Wasm, no ``__guest_call``/``memory`` export (for
        ``abi="function"``: no ``memory``/``alloc`` export), an import the host does not provide, or a
        signature mismatch.
        """
        digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
        key = digest if abi == "wapc" else f"{abi}:{digest}"
        cached = self._modules.get(key)
        if cached is not None:
            return cached
        module = self._load_module(wasm, digest)
        compiled = self._check(wasm, digest, module, abi)
        self._modules.put(key, compiled)
        return compiled

    def _load_module(self, wasm: bytes, digest: str) -> wasmtime.Module:
        path = self.cache_dir / f"{digest[7:]}.cwasm" if self.cache_dir else None
        if path is not None and path.exists():
            with logged(log, "cached module unusable; compiling again", level="info", path=str(path)):
                return wasmtime.Module.deserialize(self.engine, path.read_bytes())
        if not wasm.startswith(b"\0asm"):
            raise InvalidActor("not a WebAssembly module (bad magic number)")
        try:
            module = wasmtime.Module(self.engine, wasm)
        except Exception as exc:
            raise InvalidActor(f"invalid WebAssembly module: {first_line(exc)}") from exc
        if path is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(module.serialize())
                tmp.replace(path)
        return module

    def _check(self, wasm: bytes, digest: str, module: wasmtime.Module, abi: Abi) -> CompiledActor:
        if abi == "wapc":
            uses_wasi = abi_mod.check_wapc(module)
        elif not isinstance({e.name: e.type for e in module.exports}.get("memory"), wasmtime.MemoryType):
            raise InvalidActor("not a plain-function module: it does not export its memory")
        else:
            uses_wasi = abi_mod.check_imports(module)
        try:
            pre = self.linker.instantiate_pre(module)
        except Exception as exc:
            raise InvalidActor(f"the actor's imports do not match the waPC ABI: {first_line(exc)}") from exc
        try:
            actor_claims = claims_mod.extract_claims(wasm)
        except LatticeError as exc:
            raise InvalidActor(f"unreadable claims: {exc}") from exc
        actor_id = actor_claims.sub if actor_claims else claims_mod.actor_id_of(wasm)
        return CompiledActor(digest, module, pre, uses_wasi, actor_claims, actor_id, len(wasm), abi)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
