"""A wasi:http component as a lattice actor: compiled once, instances pooled, ``HttpServer.HandleRequest``.

``WasiHttpPool`` answers the same calls as ``host.runtime.ActorPool`` (``call``, ``call_inline``,
``warm``, ``stats``, ``close``) so the host, the router and the HTTP server provider treat it as any
actor: the provider's ``HttpRequest`` goes in, an ``HttpResponse`` comes out (SPEC §2, §7), the wire
protocol unchanged. Limits as for modules: a deadline per call (epoch interruption), linear memory,
instances and waiting calls. A trap, ``wasi:cli/exit`` or a deadline answers 502 with the reason and
discards the instance; the next request gets a healthy one.

Compiled components are cached by SHA-256 in memory and serialized on disk (componentize-py output
takes seconds to compile, ~50 ms to deserialize).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import wasmtime
from wasmtime.component import Component, Linker

from host.component.wasi_http.serve import Answer, Handler, build_linker, failure
from host.component.wasi_http.state import Grants, InstanceState, LogSink
from host.runtime import ActorLimits, Runtime, WasiGrants
from lattice import claims as claims_mod
from lattice.errors import Busy, InvalidActor, LatticeError, LimitExceeded
from lattice.messages import pack, unpack

log = structlog.get_logger("host.component.wasi_http")
OPERATION = "HttpServer.HandleRequest"
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"  # binary layer 1 (SPEC §7)


def is_component(wasm: bytes) -> bool:
    return wasm[:8] == COMPONENT_HEADER


@dataclass(frozen=True, slots=True)
class CompiledComponent:
    """A validated, compiled wasi:http component; ``digest`` is ``sha256:<hex>``."""

    digest: str
    component: Component
    linker: Linker
    handler: Handler
    claims: claims_mod.ActorClaims | None
    actor_id: str
    size: int


_compiled: dict[str, CompiledComponent] = {}
_compile_lock = threading.Lock()


def compile_component(runtime: Runtime, wasm: bytes) -> CompiledComponent:
    """Compile (or fetch from the caches) a component exporting ``wasi:http/incoming-handler``.

    Raises ``InvalidActor`` naming the reason (invalid, no handler export, an import that is not WASI 0.2).
    """
    digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
    found = _compiled.get(digest)
    if found is not None:
        return found
    engine = runtime.engine
    component = _load(engine, wasm, digest, runtime.cache_dir)
    handler = Handler(component, engine)
    try:
        linker = build_linker(engine, component)
    except LatticeError:
        raise
    except Exception as exc:
        raise InvalidActor(f"cannot link the component: {str(exc).splitlines()[0]}") from exc
    try:
        actor_claims = claims_mod.extract_claims(wasm)
    except LatticeError as exc:
        raise InvalidActor(f"unreadable claims: {exc}") from exc
    actor_id = actor_claims.sub if actor_claims else claims_mod.actor_id_of(wasm)
    compiled = CompiledComponent(digest, component, linker, handler, actor_claims, actor_id, len(wasm))
    with _compile_lock:
        _compiled[digest] = compiled
    return compiled


def _load(engine: wasmtime.Engine, wasm: bytes, digest: str, cache_dir: Path | None) -> Component:
    path = cache_dir / f"{digest[7:]}.component.cwasm" if cache_dir else None
    if path is not None and path.exists():
        try:
            return Component.deserialize(engine, path.read_bytes())
        except Exception as exc:  # stale or foreign: compile again
            log.warning("cached component unreadable, recompiling", path=str(path), error=str(exc))
    try:
        component = Component(engine, wasm)
    except Exception as exc:
        raise InvalidActor(f"invalid WebAssembly component: {str(exc).splitlines()[0]}") from exc
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(component.serialize())
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot cache the compiled component", path=str(path), error=str(exc))
    return component


class _Instance:
    __slots__ = ("func", "state", "store")

    def __init__(self, store: wasmtime.Store, func: Any, state: InstanceState) -> None:
        self.store, self.func, self.state = store, func, state


class WasiHttpPool:
    """The instances of one wasi:http component on one host (the ``ActorPool`` interface)."""

    inline_eligible = False  # every call runs on a worker thread: a handler may block (outgoing HTTP)

    def __init__(
        self,
        runtime: Runtime,
        compiled: CompiledComponent,
        *,
        limits: ActorLimits | None = None,
        wasi: WasiGrants | None = None,
        allowed_hosts: tuple[str, ...] = (),
        log_sink: LogSink | None = None,
        name: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.compiled = compiled
        self.actor_id = compiled.actor_id
        self.name = name or compiled.actor_id
        self.limits = limits or ActorLimits()
        self.wasi = wasi or WasiGrants()
        self.grants = Grants(
            env=dict(self.wasi.env),
            args=self.wasi.args,
            allowed_hosts=allowed_hosts,
            max_body_bytes=self.limits.max_payload_bytes,
        )
        self.log_sink: LogSink = log_sink or (lambda stream, text: None)
        self.api_version = 0
        self.calls = 0
        self.failures = 0
        self._idle: deque[_Instance] = deque()
        self._slots = threading.BoundedSemaphore(self.limits.max_instances)
        self._lock = threading.Lock()
        self._instances = self._in_flight = self._waiting = 0
        self._closed = False
        self._idle.append(self._new_instance())  # fail fast

    def _new_instance(self) -> _Instance:
        store = wasmtime.Store(self.runtime.engine)
        if self.limits.max_memory_bytes > 0:
            store.set_limits(memory_size=self.limits.max_memory_bytes)
        store.set_epoch_deadline(self._ticks())
        try:
            instance = self.compiled.linker.instantiate(store, self.compiled.component)
        except Exception as exc:
            raise InvalidActor(f"cannot instantiate {self.name}: {str(exc).splitlines()[0]}") from exc
        func = self.compiled.handler.func(store, instance)
        with self._lock:
            self._instances += 1
        return _Instance(store, func, InstanceState(self.name, self.grants, self.log_sink))

    def _ticks(self) -> int:
        return max(1, round(self.limits.deadline_s / self.runtime.epoch_tick_s))

    @contextlib.contextmanager
    def _instance(self) -> Iterator[_Instance]:
        with self._lock:
            if self._closed:
                raise Busy(f"actor {self.name} is stopping")
            if self._waiting >= self.limits.max_waiting:
                raise Busy(f"actor {self.name} is busy: {self.limits.max_instances} calls running; retry later")
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.limits.deadline_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise Busy(f"actor {self.name} is busy: no instance free within {self.limits.deadline_s:g} s")
        with self._lock:
            self._in_flight += 1
        try:
            try:
                inst = self._idle.popleft()
            except IndexError:
                inst = self._new_instance()
            yield inst
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def call(self, operation: str, payload: bytes) -> bytes:
        """``HttpServer.HandleRequest`` with an ``HttpRequest``; returns the ``HttpResponse`` (msgpack)."""
        if operation != OPERATION:
            raise InvalidActor(f"{self.name} is a wasi:http component: it answers {OPERATION} only, not {operation}")
        if len(payload) > self.limits.max_payload_bytes:
            raise LimitExceeded(f"payload of {len(payload)} bytes is over {self.name}'s limit")
        request = unpack(payload)
        if not isinstance(request, dict):
            raise InvalidActor(f"{OPERATION} needs an HttpRequest map, got {type(request).__name__}")
        self.calls += 1
        with self._instance() as inst:
            answer = self._serve(inst, request)
            if answer.discard or self._closed:
                self._discard(inst)
            else:
                self._idle.append(inst)
        if answer.error is not None:
            self.failures += 1
            log.warning("wasi:http handler failed", actor_id=self.actor_id, status=answer.status, error=answer.error)
        return pack({"statusCode": answer.status, "header": answer.headers, "body": answer.body})

    def call_inline(self, operation: str, payload: bytes) -> bytes | None:
        return None

    def _serve(self, inst: _Instance, request: dict[str, Any]) -> Answer:
        inst.store.set_epoch_deadline(self._ticks())
        try:
            answer = self.compiled.handler.serve(inst.store, inst.func, inst.state, request)
        except Exception as exc:  # the host's own failure: answer, and do not reuse the instance
            log.exception("serving a wasi:http request failed", actor_id=self.actor_id)
            return failure(502, f"{self.name} could not be served: {exc}", discard=True)
        if answer.discard and "wasm trap: interrupt" in (answer.error or ""):
            return failure(502, f"{self.name} ran past its deadline of {self.limits.deadline_s:g} s", discard=True)
        return answer

    def _discard(self, inst: _Instance) -> None:
        with self._lock:
            self._instances -= 1
        inst.store.close()

    def stats(self) -> dict[str, int]:
        return {
            "instances": self._instances,
            "in_flight": self._in_flight,
            "waiting": self._waiting,
            "calls": self.calls,
            "failures": self.failures,
        }

    def warm(self, count: int) -> None:
        while self._instances < min(count, self.limits.max_instances):
            self._idle.append(self._new_instance())

    def close(self, *, timeout: float = 1.0) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                inst = self._idle.popleft()
            except IndexError:
                break
            self._discard(inst)
