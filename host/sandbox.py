"""Embedding: the host's sandbox as a plugin system for any Python program.

Owns the ``Sandbox`` API (docs/embedding.md): load a Wasm plugin, grant it capabilities explicitly,
call it under limits, synchronously or from asyncio. It is a thin layer over ``host.runtime`` — the
same engine, module cache, waPC ABI, limits and typed errors as the lattice host — and adds only what
an embedding program needs: capability grants by contract ID instead of link definitions, and the
plain-function ABI for modules that are not waPC actors (owned here, run through ``ActorPool.run``).
It must not talk to NATS or read settings.

Plain-function ABI (``abi="function"``), for record transforms and the like:

- the module exports ``memory`` and ``alloc(len: i32) -> i32``; the host calls ``alloc`` exactly once
  per call, first, and copies the input there (0 is a failure unless ``len`` is 0), so a guest may
  reset a per-call arena in ``alloc``;
- each function is ``f(ptr: i32, len: i32) -> i64``; a result ``r >= 0`` packs the output as
  ``(out_ptr << 32) | out_len``; ``r < 0`` fails the call, and ``-r`` packs a UTF-8 error message the
  same way (``out_ptr`` 0, as in ``return -1``: no message). Buffers live below 2 GiB, so the sign is free;
- optional: ``dealloc(ptr: i32, len: i32)``, called for the input and then the output after the host
  copied the output; ``_initialize()`` (a WASI reactor), run once per instance.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import structlog
import wasmtime

from lattice.errors import (
    ActorError,
    ActorTrap,
    Busy,
    CapabilityDenied,
    Closed,
    InvalidActor,
    LimitExceeded,
    NotFound,
)
from lattice.host.abi import signature_is
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, CompiledActor, LogSink, Runtime, WasiGrants

__all__ = ["ActorLimits", "Handler", "Runtime", "Sandbox", "Source", "WasiGrants"]

log = structlog.get_logger("lattice.host.sandbox")

Handler = Callable[[str, bytes], bytes]
"""A capability the program grants: ``(operation, payload) -> result``; raise to fail the host call."""

Source = bytes | bytearray | memoryview | str | os.PathLike[str]
"""A plugin: its Wasm bytes, or the path of a ``.wasm`` file (a ``str`` is a path)."""

_I32, _I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
_U32 = 0xFFFF_FFFF


class _Grants:
    """The contracts a plugin may call, as the runtime's ``HostCall``. Copy-on-write: calls never lock."""

    def __init__(self, name: str, grants: Mapping[str, Handler]) -> None:
        self.name = name
        self.handlers: dict[str, Handler] = dict(grants)
        self.denied = 0

    def __call__(self, binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        handler = self.handlers.get(namespace)
        if handler is None:
            self.denied += 1
            raise CapabilityDenied(
                f"{self.name} may not call {namespace} ({operation}): no grant for this contract; "
                f"the embedding program allows it with sandbox.grant({namespace!r}, handler)"
            )
        return handler(operation, payload)


class _Resources:
    """What a sandbox must release, apart from the sandbox itself so that a finalizer can close it."""

    def __init__(self, pool: ActorPool, runtime: Runtime | None) -> None:
        self.pool = pool
        self.owned_runtime = runtime
        self.executor: ThreadPoolExecutor | None = None

    def close(self) -> None:
        self.pool.close()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        if self.owned_runtime is not None:
            self.owned_runtime.close()


class Sandbox:
    """One Wasm plugin, its grants and its limits; ``call`` it from any thread, ``acall`` from asyncio.

    ``plugin`` is Wasm bytes or a path; it is compiled once per ``runtime`` (cached by SHA-256, on disk
    too with ``Runtime(cache_dir)``). Pass one ``runtime`` to many sandboxes to share the engine, the
    cache and the epoch ticker; without one the sandbox makes its own and closes it on ``close()``.
    ``abi`` is ``"wapc"`` (a waPC actor, SPEC §1) or ``"function"`` (the plain-function ABI above).
    Nothing is granted by default: ``grants``/``grant()`` map contract IDs to handlers, ``wasi`` opens
    directories, environment and arguments (SPEC §1). Raises ``InvalidActor`` for a module that does
    not fit ``abi`` or fails in its start functions.
    """

    def __init__(
        self,
        plugin: Source,
        *,
        abi: Literal["wapc", "function"] = "wapc",
        limits: ActorLimits | None = None,
        wasi: WasiGrants | None = None,
        grants: Mapping[str, Handler] | None = None,
        runtime: Runtime | None = None,
        name: str | None = None,
        log_sink: LogSink | None = None,
    ) -> None:
        wasm, default_name = _read_plugin(plugin)
        owned = None
        if runtime is None:
            runtime = owned = Runtime()
        try:
            compiled = _compile(runtime, wasm, abi, name or default_name)
            self.name = name or default_name or compiled.actor_id
            self.abi = abi
            self.functions = _plain_functions(compiled, self.name) if abi == "function" else frozenset[str]()
            self._grants = _Grants(self.name, grants or {})
            pool = ActorPool(
                runtime,
                compiled,
                limits=limits,
                wasi=wasi,
                host_call=self._grants,
                log_sink=log_sink or _log_sink(self.name),
                name=self.name,
            )
        except BaseException:
            if owned is not None:
                owned.close()
            raise
        self._pool = pool
        self._resources = _Resources(pool, owned)
        self._executor_lock = threading.Lock()
        self._pending = 0
        self._finalizer = weakref.finalize(self, self._resources.close)

    # --- what it is ------------------------------------------------------------------------------

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the module's bytes."""
        return self._pool.compiled.digest

    @property
    def actor_id(self) -> str:
        """The module's id: its claims' subject, or ``MU…`` for an unsigned module (SPEC §3)."""
        return self._pool.actor_id

    @property
    def limits(self) -> ActorLimits:
        return self._pool.limits

    @property
    def wasi(self) -> WasiGrants:
        return self._pool.wasi

    @property
    def granted(self) -> frozenset[str]:
        """The contract IDs granted now."""
        return frozenset(self._grants.handlers)

    # --- grants ----------------------------------------------------------------------------------

    def grant(self, contract_id: str, handler: Handler) -> None:
        """Lets the plugin call ``contract_id``: its ``__host_call``s there reach ``handler``.

        The binding (link name) the guest passes is ignored. An exception from ``handler`` fails that
        host call with its message (the guest sees a host-call error, never a trap).
        """
        self._grants.handlers = {**self._grants.handlers, contract_id: handler}

    def revoke(self, contract_id: str) -> None:
        """Takes a grant back; later host calls to ``contract_id`` fail with ``CapabilityDenied``'s text."""
        self._grants.handlers = {k: v for k, v in self._grants.handlers.items() if k != contract_id}

    # --- calls -----------------------------------------------------------------------------------

    def call(self, operation: str, payload: bytes = b"") -> bytes:
        """Runs ``operation`` (waPC) or the exported function ``operation`` (plain) on ``payload``.

        Thread-safe; up to ``limits.max_instances`` calls run at once on pooled instances. Raises
        ``ActorError`` (the guest failed the call), ``ActorTrap``, ``DeadlineExceeded``,
        ``LimitExceeded`` (memory, payload), ``Busy`` (retry later), ``Closed`` (after ``close()``: do not retry),
        and ``NotFound`` for a function the plugin lacks.
        """
        if not self._finalizer.alive:
            raise Closed(f"{self.name} is closed: it takes no more calls (make a new Sandbox)")
        data = bytes(payload)
        if self.abi == "wapc":
            return self._pool.call(operation, data)
        if operation not in self.functions:
            raise NotFound(
                f"{self.name} has no function {operation}(ptr: i32, len: i32) -> i64; "
                f"it exports {', '.join(sorted(self.functions)) or 'none'}"
            )
        return _call_plain(self._pool, operation, data)

    async def acall(self, operation: str, payload: bytes = b"") -> bytes:
        """``call`` on a bounded worker pool, so that the event loop never waits on Wasm.

        Cancelling the awaiting task does not stop the guest: it runs on until done or its deadline.
        """
        limits = self._pool.limits
        with self._executor_lock:
            if not self._finalizer.alive:
                raise Closed(f"{self.name} is closed: it takes no more calls (make a new Sandbox)")
            if self._pending >= limits.max_instances + limits.max_waiting:
                raise Busy(f"{self.name} is busy: {self._pending} calls pending; retry later or raise max_instances")
            self._pending += 1
            executor = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self.call, operation, payload)
        finally:
            with self._executor_lock:
                self._pending -= 1

    def _executor(self) -> ThreadPoolExecutor:
        if self._resources.executor is None:
            self._resources.executor = ThreadPoolExecutor(
                max_workers=self._pool.limits.max_instances, thread_name_prefix=f"sandbox-{self.name}"
            )
        return self._resources.executor

    # --- lifecycle -------------------------------------------------------------------------------

    def warm(self, instances: int) -> None:
        """Creates idle instances up to ``instances`` (at most ``limits.max_instances``) ahead of calls."""
        self._pool.warm(instances)

    def stats(self) -> dict[str, int]:
        """``instances``, ``in_flight``, ``waiting``, ``calls``, ``failures`` and ``denied`` host calls."""
        return {**self._pool.stats(), "denied": self._grants.denied}

    def close(self) -> None:
        """Refuses new calls and releases the instances (and the runtime, if the sandbox made it)."""
        with self._executor_lock:
            self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox({self.name!r}, abi={self.abi!r}, digest={self.digest[:19]}…)"


def _read_plugin(plugin: Source) -> tuple[bytes, str | None]:
    if isinstance(plugin, bytes | bytearray | memoryview):
        return bytes(plugin), None
    path = Path(plugin)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise InvalidActor(f"cannot read plugin {path}: {exc.strerror or exc}") from exc


def _compile(runtime: Runtime, wasm: bytes, abi: Literal["wapc", "function"], name: str | None) -> CompiledActor:
    try:
        return runtime.compile(wasm, abi=abi)
    except InvalidActor as exc:
        hint = (
            "; for a module of plain functions use Sandbox(..., abi='function')" if "__guest_call" in str(exc) else ""
        )
        raise InvalidActor(f"{name or 'plugin'}: {exc}{hint}") from exc


def _plain_functions(compiled: CompiledActor, name: str) -> frozenset[str]:
    """The exports callable as plain functions; checks ``alloc`` (and ``dealloc``) on the way."""
    functions, problem = _plain_exports(compiled.digest, compiled.module)
    if problem:
        raise InvalidActor(f"{name}: {problem}")
    return functions


@functools.lru_cache(maxsize=64)  # reading export types costs more than a call: once per module
def _plain_exports(digest: str, module: wasmtime.Module) -> tuple[frozenset[str], str | None]:
    types = {e.name: e.type for e in module.exports}
    if not signature_is(types.get("alloc"), [_I32], [_I32]):
        return frozenset(), "not a plain-function module: it does not export alloc(len: i32) -> i32"
    if "dealloc" in types and not signature_is(types["dealloc"], [_I32, _I32], []):
        return frozenset(), "dealloc must be dealloc(ptr: i32, len: i32)"
    return frozenset(n for n, t in types.items() if signature_is(t, [_I32, _I32], [_I64])), None


def _call_plain(pool: ActorPool, function: str, payload: bytes) -> bytes:
    """One call of the plain-function ABI (module docstring) on a pooled instance."""
    limits, name = pool.limits, pool.name
    if len(payload) > limits.max_payload_bytes:
        raise LimitExceeded(f"payload of {len(payload)} bytes is over {name}'s limit of {limits.max_payload_bytes}")

    def run(store: wasmtime.Store, memory: wasmtime.Memory, exports: Any) -> bytes:
        ptr = exports["alloc"](store, len(payload)) & _U32
        if payload and ptr == 0:
            raise LimitExceeded(f"{name} could not allocate {len(payload)} bytes for the input of {function}")
        _check_bounds(store, memory, ptr, len(payload), name, "alloc")
        memory.write(store, payload, ptr)
        result: int = exports[function](store, ptr, len(payload))
        packed = -result if result < 0 else result
        out_ptr, out_len = packed >> 32, packed & _U32
        if result < 0 and out_ptr == 0:  # `return -1`: a failure without a message
            raise ActorError(f"{name}: {function} failed without an error message (result {result})")
        if out_len > limits.max_payload_bytes:
            raise LimitExceeded(
                f"{name}'s {function} returned {out_len} bytes, over the limit of {limits.max_payload_bytes}"
            )
        _check_bounds(store, memory, out_ptr, out_len, name, function)
        out = bytes(memory.read(store, out_ptr, out_ptr + out_len)) if out_len else b""
        dealloc = exports.get("dealloc")
        if isinstance(dealloc, wasmtime.Func):
            dealloc(store, ptr, len(payload))
            dealloc(store, out_ptr, out_len)
        if result < 0:
            message = out.decode("utf-8", "replace") or f"{function} failed without an error message"
            raise ActorError(f"{name}: {message}")
        return out

    return pool.run(function, run)


def _check_bounds(store: wasmtime.Store, memory: wasmtime.Memory, ptr: int, length: int, name: str, what: str) -> None:
    if ptr + length > memory.data_len(store):
        raise ActorTrap(f"{name}'s {what} returned a buffer outside its memory ({ptr}+{length})")


def _log_sink(name: str) -> LogSink:
    def sink(stream: str, text: str) -> None:
        log.info("plugin output", plugin=name, stream=stream, text=text.rstrip("\n"))

    return sink
