"""The ``http`` component kind: how ``ComponentPool`` checks, links and calls wasi:http components.

A call is ``HttpServer.HandleRequest`` with an ``HttpRequest`` (SPEC §2); the answer is an
``HttpResponse``, also when the handler fails (502 with the reason: no response set, an error set, a
trap, a body over the limit). A trap marks the instance broken, so the pool discards it and the next
request gets a fresh one. A deadline raises ``DeadlineExceeded`` (the provider answers 504), and a
handler that would block the event loop in an inline call (outgoing HTTP, a sleeping ``poll``) is
unwound with ``NotInline`` and run again on a worker thread, as waPC host calls are.
"""

from __future__ import annotations

from typing import Any

import structlog

from lattice.errors import ActorError
from lattice.host.component import engine
from lattice.host.component import pool as pool_mod
from lattice.host.component.wasi_http.serve import Handler, build_linker, check_imports, failure
from lattice.host.component.wasi_http.state import Grants, InstanceState
from lattice.messages import pack, unpack

log = structlog.get_logger("host.component.wasi_http")
OPERATION = "HttpServer.HandleRequest"
KIND = "http"


def register() -> None:
    engine.register_kind(KIND, engine.Kind(check_imports=check_imports, linker=build_linker))
    pool_mod.register_caller(KIND, call)


def _handler(pool: pool_mod.ComponentPool) -> Handler:
    compiled = pool.component
    handler = compiled.extra.get("handler")
    if handler is None:
        handler = compiled.extra["handler"] = Handler(compiled.component, pool.components.engine)
    return handler  # type: ignore[no-any-return]


def _state(pool: pool_mod.ComponentPool, inst: pool_mod.ComponentInstance) -> InstanceState:
    state = inst.kind_state
    if state is None:
        grants = Grants(
            env=dict(pool.wasi.env),
            args=pool.wasi.args,
            allowed_hosts=pool.wasi.allowed_hosts,
            max_body_bytes=pool.limits.max_payload_bytes,
        )
        state = inst.kind_state = InstanceState(pool.name, grants, pool.log_sink)
    return state  # type: ignore[no-any-return]


def call(pool: pool_mod.ComponentPool, inst: pool_mod.ComponentInstance, operation: str, payload: bytes) -> bytes:
    """One ``HttpServer.HandleRequest`` on ``inst``; the ``HttpResponse`` (msgpack)."""
    if operation != OPERATION:
        raise ActorError(f"{pool.name} is a wasi:http component: it answers {OPERATION} only, not {operation}")
    request: Any = unpack(payload)
    if not isinstance(request, dict):
        raise ActorError(f"{OPERATION} needs an HttpRequest map, got {type(request).__name__}")
    handler = _handler(pool)
    state = _state(pool, inst)
    state.inline = inst.inline
    answer = handler.serve(inst.store, inst.func(handler.interface, "handle"), state, request)
    if answer.discard:
        inst.broken = True
    if answer.error is not None:
        log.warning("wasi:http handler failed", actor_id=pool.actor_id, status=answer.status, error=answer.error)
    response = pack({"statusCode": answer.status, "header": answer.headers, "body": answer.body})
    if len(response) > pool.limits.max_payload_bytes:  # the body fit, the headers did not
        limit = pool.limits.max_payload_bytes
        reason = f"{pool.name} answered {len(response)} bytes with its headers, over the limit of {limit}"
        failed = failure(502, reason)
        return pack({"statusCode": failed.status, "header": failed.headers, "body": failed.body})
    return response


register()
