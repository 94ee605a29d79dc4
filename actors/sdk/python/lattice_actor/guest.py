"""Calls into the actor: ``Guest.handle`` (the export ``lattice:actor/guest.handle``) and its handler table.

``@handler("Service.Method")`` registers a function taking the payload's bytes and returning bytes;
``@http`` registers ``HttpServer.HandleRequest`` with typed ``HttpRequest`` → ``HttpResponse`` (or str,
bytes, a JSON value). Exceptions become the call's error (``err``), never a trap: ``ActorError`` as its
text, ``MemoryError`` as out of memory (the host names the limit), anything else as ``"<Type>: <message>"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lattice_actor.errors import ActorError, describe
from lattice_actor.host import Err
from lattice_actor.http import HttpRequest, HttpResponse

Handler = Callable[[bytes], bytes]
HTTP_OPERATION = "HttpServer.HandleRequest"

_handlers: dict[str, Handler] = {}


def handler(operation: str) -> Callable[[Handler], Handler]:
    """Registers ``fn(payload: bytes) -> bytes`` for ``operation`` (``Service.Method``)."""

    def register(fn: Handler) -> Handler:
        _handlers[operation] = fn
        return fn

    return register


def http(fn: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Registers ``fn(request) -> HttpResponse | str | bytes | dict | list`` for HTTP requests."""

    def handle_request(payload: bytes) -> bytes:
        return HttpResponse.of(fn(HttpRequest.decode(payload))).encode()

    _handlers[HTTP_OPERATION] = handle_request
    return fn


def dispatch(operation: str, payload: bytes) -> bytes:
    """Runs the handler of ``operation``; raises ActorError for a failed call (pure: testable on CPython)."""
    fn = _handlers.get(operation)
    if fn is None:
        raise ActorError(f"actor has no handler for operation {operation}")
    try:
        return bytes(fn(bytes(payload)))
    except ActorError:
        raise
    except MemoryError as exc:
        raise ActorError(describe(exc)) from None  # nothing more is allocated on the way out than needed
    except Exception as exc:
        raise ActorError(f"{type(exc).__name__}: {exc}") from exc


class Guest:
    """The export componentize-py binds to ``lattice:actor/guest``; import it into the app module."""

    def handle(self, operation: str, payload: bytes) -> bytes:
        try:
            return dispatch(operation, payload)
        except ActorError as exc:
            raise Err(str(exc)) from None
