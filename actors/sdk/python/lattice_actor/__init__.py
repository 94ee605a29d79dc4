"""lattice_actor: write a lattice actor in Python (a component, built with componentize-py).

The guest side of SPEC §7: an actor exports ``lattice:actor/guest.handle`` and calls out through
``lattice:actor/host.call``; this package turns those two byte-level functions into Python. ::

    from lattice_actor import Guest, HttpRequest, HttpResponse, http, keyvalue, log

    @http
    def handle(request: HttpRequest) -> HttpResponse:
        count = keyvalue.increment(f"counter:{request.path}")
        log.info(f"{request.path} -> {count}")
        return HttpResponse.json({"path": request.path, "count": count})

``Guest`` must be importable from the app module (componentize-py looks it up there); ``@http`` and
``@handler("Service.Method")`` register what it dispatches to. A handler that raises fails the call:
``ActorError("text")`` becomes the call's error text as it is, any other exception
``"<Type>: <message>"``. Host calls that fail raise ``HostCallError`` with the host's text.

Pure Python (componentize-py cannot load C extensions): msgpack runs on its pure-Python fallback, copied
into the component at build time.
"""

from __future__ import annotations

from lattice_actor import keyvalue, log
from lattice_actor.errors import ActorError, HostCallError
from lattice_actor.guest import Guest, handler, http
from lattice_actor.host import call, call_actor
from lattice_actor.http import HttpRequest, HttpResponse

__all__ = [
    "ActorError",
    "Guest",
    "HostCallError",
    "HttpRequest",
    "HttpResponse",
    "call",
    "call_actor",
    "handler",
    "http",
    "keyvalue",
    "log",
]
