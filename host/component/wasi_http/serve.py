"""Serving one ``HttpServer.HandleRequest`` with a component that exports ``wasi:http/incoming-handler``.

The narrow interface between the lattice and a wasi:http component:

    linker = build_linker(engine, component)     # once per component: the WASI 0.2 surface + traps
    handler = Handler(component)                  # once per component: the ``handle`` export, found
    answer = handler.serve(store, instance, state, request)   # one request, on an instance

``serve`` makes the ``incoming-request`` and ``response-outparam`` host resources, calls ``handle``, and
turns what the handler set into an ``Answer`` (status, headers, body). What goes wrong is answered, not
raised: the handler never set the response, set an error, trapped (``discard``: the instance must go),
or wrote a body over the limit → 502 with the reason in the body.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field
from typing import Any

import wasmtime
from wasmtime import _bindings as _ffi
from wasmtime.component import Component, Instance, Linker

from lattice.errors import DeadlineExceeded, InvalidActor
from lattice.host.component import calls
from lattice.host.component.engine import ComponentRuntime
from lattice.host.component.wasi_http import cabi, outgoing, types, wasi
from lattice.host.component.wasi_http.state import (
    T_INCOMING_REQUEST,
    T_RESPONSE_OUTPARAM,
    IncomingRequest,
    InstanceState,
    Outparam,
    enter,
)
from lattice.host.wapc import NotInline

HANDLER = "wasi:http/incoming-handler@0.2"
# WASI 0.2 packages a component may import: defined here, or trapping if called (``wasi.py``)
WASI_PACKAGES = (
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:http/",
)
_call = _ffi._wasmtime_component_func_call
_val_delete = _ffi._wasmtime_component_val_delete


def handler_export(component: Component, engine: wasmtime.Engine) -> str | None:
    """The ``wasi:http/incoming-handler@0.2.x`` export's name, if the component has one."""
    return next((n for n in component.type.exports(engine) if n.startswith(HANDLER + ".")), None)


def check_imports(runtime: ComponentRuntime, component: Component) -> None:
    """Refuse (``InvalidActor``) a component importing what the host does not give wasi:http components,
    naming the import: WASI 0.2, and the interfaces every component may import (SPEC §7: wasi:keyvalue,
    wasi:logging, wasi:config, ``lattice:actor/host``), checked for their types."""
    for name, item in component.type.imports(runtime.engine).items():
        package, _, version = name.partition("@")
        if package.startswith(WASI_PACKAGES) and version.startswith("0.2."):
            continue
        if runtime.provides(name):
            runtime.check_import(name, item)
            continue
        raise InvalidActor(
            f"the component imports {name}, which the host does not provide to wasi:http components "
            f"(WASI 0.2: {', '.join(p.rstrip('/') for p in WASI_PACKAGES)}; and SPEC §7's interfaces)"
        )


_HANDLER: wasi.Interface = ({}, outgoing.HANDLER_FUNCS)
INTERFACES: dict[str, wasi.Interface] = {
    **wasi.IO,
    **wasi.CLI,
    "wasi:http/types": ({**types.RESOURCES, **outgoing.RESOURCES}, {**types.FUNCS, **outgoing.FUNCS}),
    "wasi:http/outgoing-handler": _HANDLER,
}


def build_linker(runtime: ComponentRuntime, component: Component) -> Linker:
    """A linker with the WASI 0.2 surface ``component`` imports, on the host's one ``wasi:io``, and the
    interfaces every component may import; what the host does not implement traps if called (``wasi.py``)."""
    check_imports(runtime, component)
    imports = component.type.imports(runtime.engine)
    linker = Linker(runtime.engine)
    with linker.root() as root:
        for name in imports:
            found = INTERFACES.get(name.partition("@")[0])
            if found is not None:
                wasi.define_interface(root, name, *found)
        if any(runtime.provides(name) for name in imports):
            runtime.define_interfaces(root)
    linker.define_unknown_imports_as_traps(component)
    return linker


@dataclass(slots=True)
class Answer:
    """What to send back: ``discard`` when the instance trapped and must not serve again."""

    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    discard: bool = False
    error: str | None = None


def failure(status: int, reason: str, *, discard: bool = False) -> Answer:
    return Answer(status, {"content-type": ["text/plain; charset=utf-8"]}, reason.encode() + b"\n", discard, reason)


class Handler:
    """A component's ``handle`` export, found once."""

    def __init__(self, component: Component, engine: wasmtime.Engine) -> None:
        name = handler_export(component, engine)
        if name is None:
            raise InvalidActor(f"the component does not export {HANDLER}.x")
        self.interface = name
        iface = component.get_export_index(name)
        index = component.get_export_index("handle", iface) if iface is not None else None
        if index is None:
            raise InvalidActor(f"the component's {name} has no handle function")
        self._index = index

    def func(self, store: wasmtime.Store, instance: Instance) -> Any:
        func = instance.get_func(store, self._index)
        if func is None:
            raise InvalidActor(f"the component instance has no {self.interface}#handle")
        return func

    def serve(self, store: wasmtime.Store, func: Any, state: InstanceState, request: dict[str, Any]) -> Answer:
        """One request (an ``HttpRequest`` map, SPEC §2) on an instance of this component."""
        previous = enter(state)
        try:
            return self._serve(store, func, state, request)
        finally:
            state.end_call()
            enter(previous)

    def _serve(self, store: wasmtime.Store, func: Any, state: InstanceState, request: dict[str, Any]) -> Answer:
        incoming = incoming_request(request)
        if len(incoming.body) > state.grants.max_body_bytes:
            return failure(413, f"request body over {state.grants.max_body_bytes} bytes")
        outparam = Outparam()
        ctx = store._context()
        args = (cabi.VAL * 2)()
        cabi.put_own(ctx, args[0], T_INCOMING_REQUEST, state.table.add(incoming))
        cabi.put_own(ctx, args[1], T_RESPONSE_OUTPARAM, state.table.add(outparam))
        try:
            error = _call(ctypes.byref(func._func), ctx, args, 2, None, 0)
        finally:
            _val_delete(ctypes.byref(args[0]))
            _val_delete(ctypes.byref(args[1]))
        if error:
            exc = wasmtime.WasmtimeError._from_ptr(error)
            try:
                calls.raise_pending()  # from the shared interfaces' host functions (keyvalue, logging, …)
            except NotInline:
                raise
            except Exception as pending:
                return failure(502, f"{state.name} failed in a host call: {pending}", discard=True)
            if state.not_inline:
                state.not_inline = False
                raise NotInline  # nothing left the instance: the pool runs the call again elsewhere
            if "wasm trap: interrupt" in str(exc):
                raise DeadlineExceeded(f"{state.name} ran past its deadline and was interrupted")
            over = outparam.response is not None and outparam.response.body is not None and outparam.response.body.over
            if over or (wasi.EXIT_OK in str(exc) and outparam.set):  # the answer (or its limit) says it all
                done = answer(outparam, state)
                done.discard = True
                return done
            return trapped(exc, state)
        return answer(outparam, state)


def incoming_request(request: dict[str, Any]) -> IncomingRequest:
    """``HttpRequest`` {method, path, queryString, header, body} → the handler's ``incoming-request``."""
    path = str(request.get("path") or "/")
    query = str(request.get("queryString") or "")
    header = request.get("header") or {}
    headers: list[tuple[str, bytes]] = []
    for name, given in header.items():
        for value in [given] if isinstance(given, (str, bytes)) else given:
            headers.append((str(name), value if isinstance(value, bytes) else str(value).encode("latin-1")))
    authority = next((v.decode("latin-1") for k, v in headers if k.lower() == "host"), None)
    body = request.get("body") or b""
    return IncomingRequest(
        method=str(request.get("method") or "GET"),
        path_with_query=f"{path}?{query}" if query else path,
        headers=headers,
        body=bytes(body),
        authority=authority,
    )


def answer(outparam: Outparam, state: InstanceState) -> Answer:
    """What the handler set, as an ``Answer`` (502 when it set nothing usable)."""
    if not outparam.set:
        return failure(502, f"{state.name} returned without setting a response (response-outparam.set)")
    if outparam.response is None:
        return failure(502, f"{state.name} answered with an error: {outparam.error}")
    response = outparam.response
    body = response.body
    if body is not None and body.over:
        return failure(502, f"{state.name} wrote a response body over the limit of {body.limit} bytes")
    if body is not None and body.dropped:
        return failure(502, f"{state.name} dropped the response body without finishing it")
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.entries:
        headers.setdefault(name.lower(), []).append(value.decode("latin-1"))
    return Answer(response.status, headers, b"".join(body.chunks) if body is not None else b"")


def trapped(exc: Exception, state: InstanceState) -> Answer:
    """A trap (or ``wasi:cli/exit``) in the handler: 502 with the reason; the instance is discarded."""
    return failure(502, f"{state.name} trapped: {trap_reason(exc, state)}", discard=True)


def trap_reason(exc: Exception, state: InstanceState) -> str:
    """The line of a wasmtime error that says why (``wasm trap: …`` or a host function's message), and
    the guest's last line on stderr when it wrote one (an uncaught exception's message)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("wasm trap:")), lines[-1] if lines else repr(exc))
    said = next((m.group(0) for m in reversed(list(_EXCEPTION.finditer(state.stderr_tail)))), None)
    return f"{reason} ({said.strip()[:300]})" if said else reason


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*$", re.M)
